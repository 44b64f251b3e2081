/**
 * Log options shared by the server and the tests. Logs never carry secrets or personal data:
 * Fastify logs `req.url` with its query string, so the URL itself is scrubbed, not just
 * structured fields.
 */
import { randomUUID } from 'node:crypto'
import { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions, LogController } from 'fastify'
import type { Bindings, LogFn, Logger, LoggerOptions } from 'pino'
import { serializeError } from '../shared/log-errors.js'

/** Query and body parameters whose values must never reach a log line. */
export const SENSITIVE_PARAMS = [
  'api_key',
  'email',
  'phone',
  'first_name',
  'last_name',
  'device_id',
  'account_id',
  'token',
  'secret',
  'password',
] as const

const SENSITIVE = new Set<string>(SENSITIVE_PARAMS)

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll('+', ' ')).toLowerCase()
  } catch {
    return name.toLowerCase()
  }
}

/** Masks sensitive query values, however their names are percent-encoded (`api%5Fkey`). */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?')
  if (queryStart < 0) return url
  const query = url
    .slice(queryStart + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      return SENSITIVE.has(decodedName(name)) ? `${name}=[REDACTED]` : pair
    })
  return `${url.slice(0, queryStart)}?${query.join('&')}`
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        ...SENSITIVE_PARAMS.flatMap((name) => [name, `*.${name}`, `*.*.${name}`]),
      ],
      censor: '[REDACTED]',
    },
    serializers: {
      req(request: { id: string; method: string; url: string; ip?: string }) {
        return { id: request.id, method: request.method, url: redactUrl(request.url), remoteAddress: request.ip }
      },
      res(reply: { statusCode: number }) {
        return { statusCode: reply.statusCode }
      },
      // Structural, not by field names: no statement, parameter or database message reaches a log.
      err: serializeError,
    },
  }
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/** Accepts a caller's X-Request-Id when it is safe to log, so ids follow a request across proxies. */
export const requestIdOptions: Pick<FastifyServerOptions, 'genReqId' | 'requestIdHeader'> = {
  requestIdHeader: false,
  genReqId(req) {
    const header = req.headers['x-request-id']
    return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID()
  },
}

type ChildOptions = Parameters<FastifyBaseLogger['child']>[1]
type LogArgs = Parameters<LogFn>

/**
 * Fastify gives every request a pino child logger bound to its request id. Building that child
 * cost ~4 µs of the ~22 µs a cached catalog answer takes (server CPU per request, measured with
 * scratch tooling described in docs/benchmarks.md), and most requests never write a line at
 * the configured level. This child is built on its first enabled log call, with the same
 * bindings, so every line still carries its reqId.
 */
class LazyRequestLogger {
  #child: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
  ) {}

  private get real(): FastifyBaseLogger {
    this.#child ??= this.parent.child(this.bindings)
    return this.#child
  }

  get level(): string {
    return this.#child?.level ?? this.parent.level
  }

  set level(level: string) {
    this.real.level = level
  }

  /** pino answers without building anything; a logger without isLevelEnabled is asked by calling it. */
  isLevelEnabled(level: string): boolean {
    return isLevelEnabled(this.#child ?? this.parent, level)
  }

  fatal(...args: LogArgs) {
    if (this.isLevelEnabled('fatal')) this.real.fatal(...args)
  }
  error(...args: LogArgs) {
    if (this.isLevelEnabled('error')) this.real.error(...args)
  }
  warn(...args: LogArgs) {
    if (this.isLevelEnabled('warn')) this.real.warn(...args)
  }
  info(...args: LogArgs) {
    if (this.isLevelEnabled('info')) this.real.info(...args)
  }
  debug(...args: LogArgs) {
    if (this.isLevelEnabled('debug')) this.real.debug(...args)
  }
  trace(...args: LogArgs) {
    if (this.isLevelEnabled('trace')) this.real.trace(...args)
  }
  silent() {}

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.real.child(bindings, options)
  }
}

function isLevelEnabled(logger: FastifyBaseLogger, level: string): boolean {
  return (logger as Partial<Pick<Logger, 'isLevelEnabled'>>).isLevelEnabled?.(level) ?? true
}

/**
 * Fastify's "incoming request" and "request completed" lines are info lines, but Fastify builds
 * their arguments (an object, a clock read) before the logger can drop them: ~1 µs per request
 * at level warn. They are skipped outright when the request's logger would drop them; a
 * response stream's error is still logged at its own level.
 */
class LevelAwareLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>) {
    if (isLevelEnabled(request.log, 'info')) super.incomingRequest(request, reply, metadata)
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>) {
    if (error || isLevelEnabled(request.log, 'info')) super.requestCompleted(error, request, reply, metadata)
  }
}

/**
 * Fastify takes `disableRequestLogging` and `requestIdLogLabel` from this controller, not from
 * its own options, once a controller is given: pass them here if they are ever needed.
 */
export const logController = new LevelAwareLogController()

/** Request loggers built on first use; a route with its own level or serializers gets a real child at once. */
export const childLoggerFactory: FastifyServerOptions['childLoggerFactory'] = (logger, bindings, options) =>
  options.level || options.serializers ? logger.child(bindings, options) : (new LazyRequestLogger(logger, bindings) as unknown as FastifyBaseLogger)
