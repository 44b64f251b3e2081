/**
 * Open311 POST bodies: urlencoded (repeated keys become arrays) or multipart. Both end up as
 * flat `FormFields`, and an empty value is removed so it counts as absent (Open311 §1.5).
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import { parseFormEncoded } from '../../form-encoding.js'
import { bodyTooLarge, multipartBodyParser } from '../../multipart-body.js'

/**
 * For the whole Open311 scope: urlencoded bodies (a JSON or text body is refused with 415, not
 * half-understood), and empty query values dropped, so `status=` means no status filter.
 */
export async function registerFormParsing(app: FastifyInstance) {
  app.removeContentTypeParser(['application/json', 'text/plain'])
  await app.register(formbody, { parser: parseFormEncoded })
  app.addHook('preValidation', async (request) => {
    removeEmpty(request.query)
  })
}

/** For the routes that take forms (the POSTs): multipart as well, and empty body values dropped. */
export async function registerFormBodies(app: FastifyInstance) {
  const bodyLimit = app.config.bodyLimitBytes
  app.addContentTypeParser('multipart/form-data', multipartBodyParser(bodyLimit))
  // A declared length over the limit is refused before a byte of the body is read.
  app.addHook('onRequest', async (request) => {
    const isMultipart = request.headers['content-type']?.toLowerCase().startsWith('multipart/')
    if (isMultipart && Number(request.headers['content-length'] ?? 0) > bodyLimit) throw bodyTooLarge()
  })
  app.addHook('preValidation', async (request) => {
    removeEmpty(request.body)
  })
}

function removeEmpty(container: unknown) {
  if (!container || typeof container !== 'object') return
  const record = container as Record<string, unknown>
  for (const key in record) {
    const value = record[key]
    if (value === '') delete record[key]
    else if (Array.isArray(value)) {
      const kept = value.filter((v) => v !== '')
      if (kept.length === 0) delete record[key]
      else record[key] = kept.length === 1 ? kept[0] : kept
    }
  }
}
