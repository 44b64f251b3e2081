/**
 * Log options shared by the server and the tests. Logs never carry secrets or personal data:
 * Fastify logs `req.url` with its query string, so the URL itself is scrubbed, not just
 * structured fields.
 */
import { randomUUID } from 'node:crypto'
import { type FastifyReply, type FastifyRequest, type FastifyServerOptions, LogController } from 'fastify'
import { pino, type Logger, type LoggerOptions } from 'pino'
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

const CENSOR = '[REDACTED]'

/** How far below a log line's top level a sensitive field is still found (`a.b.email`). */
const CENSORED_DEPTH = 2

/**
 * `value` with every field named in SENSITIVE_PARAMS, at the top or up to CENSORED_DEPTH
 * levels below, replaced by the censor; the caller's objects are never changed (only what
 * holds such a field is copied). Byte buffers are not walked.
 *
 * Kept fast path: it replaces pino's wildcard redact paths (`*.email`, `*.*.email` for each
 * name), which its redactor (@pinojs/redact 0.4) ran on every field of every line, parsing its
 * 20 paths each time — 13% of the server's CPU serving services.json. See docs/benchmarks.md
 * ("Request logging"). Invariant: every line goes through it (loggerOptions' `formatters.log`)
 * and so do the facts logAction binds, so a sensitive field is censored wherever it is logged.
 */
export function censorSensitive<T>(value: T, depth = CENSORED_DEPTH): T {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value
  const object = value as Record<string, unknown>
  let copy: Record<string, unknown> | undefined
  for (const key of Object.keys(object)) {
    const field = object[key]
    let censored = field
    if (SENSITIVE.has(key)) censored = field === undefined ? field : CENSOR
    else if (depth > 0 && field !== null && typeof field === 'object') censored = censorSensitive(field, depth - 1)
    if (censored !== field) {
      copy ??= (Array.isArray(object) ? [...object] : { ...object }) as Record<string, unknown>
      copy[key] = censored
    }
  }
  return (copy ?? value) as T
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    // Headers that carry keys, and the sensitive names at the top of a line or of a child
    // logger's bindings (pino checks these paths only where the key is present: no wildcard).
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', ...SENSITIVE_PARAMS],
      censor: CENSOR,
    },
    // And below the top of a line (logAction censors the facts it binds itself: pino hands
    // a child's bindings to no formatter).
    formatters: { log: (object) => censorSensitive(object) },
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

/**
 * One line per request at info, written when it completes: method, URL (redacted), route,
 * status, time and the request id (bound on the request's logger). Fastify's default writes
 * two lines per request (incoming, completed); operators keep info logs on, so the default is
 * what must be cheap. A response stream's error and Fastify's own error lines keep their
 * levels, and never use an error's message as the log message (a database error's message is
 * its statement and parameters).
 */
class OneLinePerRequest extends LogController {
  override incomingRequest() {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>) {
    if (error) {
      super.requestCompleted(error, request, reply, metadata)
      return
    }
    request.log.info(
      {
        method: request.method,
        url: redactUrl(request.url),
        route: request.routeOptions.url ?? null,
        statusCode: reply.statusCode,
        responseTime: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request completed',
    )
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply) {
    if (reply.statusCode >= 500) reply.log.error({ req: request, res: reply, err: error }, 'request failed')
    else reply.log.info({ res: reply, err: error }, 'request refused')
  }
}

/**
 * Names what a request did (`api key created`, `service request submitted`) and its facts on
 * the request's one info line, instead of a line of its own: later lines of the request, its
 * completion line included, carry them. Facts are ids and codes, never personal data.
 */
export function logAction(request: FastifyRequest, action: string, facts: Record<string, unknown> = {}): void {
  request.log = request.log.child(censorSensitive({ action, ...facts }))
}

/**
 * Fastify takes `disableRequestLogging` and `requestIdLogLabel` from this controller, not from
 * its own options, once a controller is given: pass them here if they are ever needed.
 */
export const logController = new OneLinePerRequest()

/**
 * The server's logger: JSON lines written asynchronously (pino's sonic-boom destination), so a
 * request never waits on stdout. `flush` writes out what is buffered; the server calls it on
 * shutdown and on a crash, before the process exits.
 */
export function createLogger(level: string): { logger: Logger; flush: () => void } {
  const destination = pino.destination({ dest: 1, sync: false })
  return {
    logger: pino(loggerOptions(level), destination),
    flush: () => {
      try {
        destination.flushSync()
      } catch {
        // Nothing buffered yet (the destination is not open), or stdout is gone.
      }
    },
  }
}
