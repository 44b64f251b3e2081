/**
 * Every error leaves in the Open311 envelope — a list of {code, description} — in the format
 * the URL asked for: validation failures, auth, unknown routes, body limits, rate limits and
 * crashes alike. Never HTML, never plain text. 5xx bodies never carry internals.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { CatalogError } from '../../domain/catalog/validate-catalog.js'
import { DomainError, type DomainErrorKind } from '../../domain/errors.js'
import { Open311Error, type Open311ErrorItem, renderErrors } from '../../open311/errors.js'
import { CONTENT_TYPES, formatOfUrl } from '../../open311/spark.js'
import { toFieldPath } from '../../shared/field-path.js'

export function sendErrors(request: FastifyRequest, reply: FastifyReply, statusCode: number, errors: Open311ErrorItem[]) {
  const format = formatOfUrl(request.url)
  reply.code(statusCode).type(CONTENT_TYPES[format])
  return reply.send(renderErrors(format, errors))
}

function describeValidation(error: FastifyError): { status: number; description: string } {
  const first = error.validation?.[0]
  const params = first?.params as { missingProperty?: string; additionalProperty?: string } | undefined
  const field = toFieldPath(first?.instancePath ?? '', params?.missingProperty ?? params?.additionalProperty)
  // An unknown format suffix is an unknown resource, not a bad parameter.
  if (error.validationContext === 'params' && field === 'format') {
    return { status: 404, description: 'unknown format: use .json or .xml' }
  }
  const what = params?.missingProperty
    ? 'is required'
    : params?.additionalProperty
      ? 'is not a known field'
      : (first?.message ?? 'is invalid')
  return { status: 400, description: field ? `${field}: ${what}` : `${error.validationContext ?? 'request'} ${what}` }
}

/** The HTTP status of each kind of domain refusal. */
const STATUS_OF_KIND: Record<DomainErrorKind, number> = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409 }

async function errorsPlugin(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof Open311Error) return sendErrors(request, reply, error.statusCode, error.errors)
    if (error instanceof DomainError) {
      const status = STATUS_OF_KIND[error.kind]
      return sendErrors(request, reply, status, error.problems.map((p) => ({ code: p.code ?? status, description: p.description })))
    }
    if (error instanceof CatalogError) return sendErrors(request, reply, 400, [{ code: 400, description: error.message }])
    if (error.validation) {
      const { status, description } = describeValidation(error)
      return sendErrors(request, reply, status, [{ code: status, description }])
    }
    const status = error.statusCode ?? 500
    if (status >= 400 && status < 500) {
      return sendErrors(request, reply, status, [{ code: status, description: error.message }])
    }
    request.log.error({ err: error }, 'request failed')
    return sendErrors(request, reply, 500, [
      { code: 500, description: `internal server error; quote request id ${request.id} when reporting it` },
    ])
  })

  app.setNotFoundHandler((request, reply) =>
    sendErrors(request, reply, 404, [{ code: 404, description: `no resource at ${request.method} ${request.url.split('?', 1)[0]}` }]),
  )
}

export default fp(errorsPlugin, { name: 'errors' })
