/**
 * Log options shared by the server and the tests. Logs never carry secrets or personal data:
 * Fastify logs `req.url` with its query string, so the URL itself is scrubbed, not just
 * structured fields.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyServerOptions } from 'fastify'
import { type LoggerOptions, stdSerializers } from 'pino'

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
      err: stdSerializers.err,
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
