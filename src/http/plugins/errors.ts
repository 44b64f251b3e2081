/**
 * Every error leaves in the Open311 envelope — a list of {code, description} — in the format
 * the URL asked for: validation failures, auth, unknown routes, URLs the router refuses, body
 * limits, rate limits, an unreachable database, shutdown and crashes alike. Never HTML, never
 * plain text, never Fastify's own JSON shape. 5xx bodies never carry internals. A GeoReport
 * refusal (4xx under /open311/v2) is described in the request's language when the message
 * table knows it (src/open311/error-messages.ts), with Content-Language then.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { DatabaseOutages } from '../../db/outages.js'
import { DomainError, type DomainErrorKind } from '../../domain/errors.js'
import { Open311Error, type Open311ErrorItem, renderErrors } from '../../open311/errors.js'
import { translateErrorDescription } from '../../open311/error-messages.js'
import { errorLocale } from '../locale.js'
import { logController } from '../logging.js'
import { CONTENT_TYPES, formatOfUrl } from '../../open311/spark.js'
import { toFieldPath } from '../../shared/field-path.js'

export function sendErrors(request: FastifyRequest, reply: FastifyReply, statusCode: number, errors: Open311ErrorItem[]) {
  const format = formatOfUrl(request.url)
  // Answered before its body was read to the end (over the limit, a refused upload): close the
  // connection rather than drain the rest, or leave the next request on it waiting behind it.
  if (request.raw.complete === false) reply.header('connection', 'close')
  reply.code(statusCode).type(CONTENT_TYPES[format])
  return reply.send(renderErrors(format, errors))
}

const GEOREPORT_PREFIX = '/open311/v2/'

/**
 * A refusal (4xx), in the request's language on the GeoReport surface when every description
 * can be said in it; in English otherwise (and then without Content-Language), as everywhere else.
 */
async function sendRefusal(request: FastifyRequest, reply: FastifyReply, statusCode: number, errors: Open311ErrorItem[]) {
  if (!request.url.startsWith(GEOREPORT_PREFIX)) return sendErrors(request, reply, statusCode, errors)
  let locale: string | undefined
  try {
    locale = await errorLocale(request, request.server.db)
  } catch {
    // The jurisdictions cannot be read (an outage on its way): the English refusal still goes out.
  }
  const translated = locale === undefined ? [] : errors.map((e) => translateErrorDescription(e.description, locale))
  if (locale !== undefined && translated.every((d) => d !== undefined)) {
    reply.header('content-language', locale)
    errors = errors.map((e, i) => ({ ...e, description: translated[i]! }))
  } else {
    reply.removeHeader('content-language')
  }
  const vary = reply.getHeader('vary')
  if (!/accept-language/i.test(String(vary ?? ''))) reply.header('vary', vary ? `${String(vary)}, accept-language` : 'accept-language')
  return sendErrors(request, reply, statusCode, errors)
}

/** 404 for a URL no route takes; `hint` says what the client may have meant (prefixes set their own handler). */
export function sendNotFound(request: FastifyRequest, reply: FastifyReply, hint?: string) {
  const description = `no resource at ${request.method} ${request.url.split('?', 1)[0]}${hint ? `; ${hint}` : ''}`
  return sendRefusal(request, reply, 404, [{ code: 404, description }])
}

/** Seconds a client should wait before retrying after a 503 (an outage, or this instance shutting down). */
const RETRY_AFTER_SECONDS = 5

export function sendUnavailable(request: FastifyRequest, reply: FastifyReply, description: string) {
  reply.header('retry-after', String(RETRY_AFTER_SECONDS))
  return sendErrors(request, reply, 503, [{ code: 503, description }])
}

const ROUTER_REFUSALS: Record<string, string> = {
  FST_ERR_BAD_URL: 'the URL path is not valid: percent-encoding must spell UTF-8',
  FST_ERR_MAX_PARAM_LENGTH: 'a segment of the URL path is too long',
}

/**
 * What the router refuses before any route or hook runs (a path that does not decode, an
 * over-long path parameter): the envelope, with the status Fastify chose (400, 414).
 */
export const frameworkErrors: NonNullable<FastifyServerOptions['frameworkErrors']> = (error, request, reply) => {
  const status = error.statusCode ?? 400
  reply.header('x-request-id', request.id)
  void sendErrors(request, reply, status, [{ code: status, description: ROUTER_REFUSALS[error.code] ?? 'the request cannot be routed' }])
  // Fastify logs no completion for what its router refuses: write the request's one line here.
  logController.requestCompleted(null, request, reply)
}

function describeValidation(error: FastifyError): { status: number; description: string } {
  const first = error.validation?.[0]
  const params = first?.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: string[] } | undefined
  const field = toFieldPath(first?.instancePath ?? '', params?.missingProperty ?? params?.additionalProperty)
  // An unknown format suffix is an unknown resource, not a bad parameter.
  if (error.validationContext === 'params' && field === 'format') {
    const formats = params?.allowedValues ?? ['json', 'xml']
    return { status: 404, description: `unknown format: use ${formats.map((f) => `.${f}`).join(' or ')}` }
  }
  const what = params?.missingProperty
    ? 'is required'
    : params?.additionalProperty
      ? 'is not a known field'
      : (first?.message ?? 'is invalid')
  return { status: 400, description: field ? `${field}: ${what}` : `${error.validationContext ?? 'request'} ${what}` }
}

/** The HTTP status of each kind of domain refusal. */
const STATUS_OF_KIND: Record<DomainErrorKind, number> = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409, unavailable: 503 }

/** `outages` is read when a request fails, never at start (OpenAPI generation builds the app without a database). */
async function errorsPlugin(app: FastifyInstance, { outages }: { outages: () => DatabaseOutages }) {
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (error instanceof Open311Error) {
      return error.statusCode < 500 ? sendRefusal(request, reply, error.statusCode, error.errors) : sendErrors(request, reply, error.statusCode, error.errors)
    }
    if (error instanceof DomainError) {
      if (error.kind === 'unavailable') return sendUnavailable(request, reply, error.message)
      const status = STATUS_OF_KIND[error.kind]
      return sendRefusal(request, reply, status, error.problems.map((p) => ({ code: p.code ?? status, description: p.description })))
    }
    // Logged once per outage by the tracker, not once per request.
    if (outages().noteFailure(error)) {
      return sendUnavailable(request, reply, 'the service is temporarily unavailable (database unreachable); retry later')
    }
    if (error.validation) {
      const { status, description } = describeValidation(error)
      return sendRefusal(request, reply, status, [{ code: status, description }])
    }
    const status = error.statusCode ?? 500
    if (status >= 400 && status < 500) {
      return sendRefusal(request, reply, status, [{ code: status, description: error.message }])
    }
    request.log.error({ err: error }, 'request failed')
    return sendErrors(request, reply, 500, [
      { code: 500, description: `internal server error; quote request id ${request.id} when reporting it` },
    ])
  })

  app.setNotFoundHandler((request, reply) => sendNotFound(request, reply))
}

export default fp(errorsPlugin, { name: 'errors' })
