/**
 * Open311 POST bodies: urlencoded (repeated keys become arrays) or multipart. Both end up as
 * flat `FormFields`, and an empty value is removed so it counts as absent (Open311 §1.5).
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { mayUploadPhotos } from '../../auth.js'
import { parseFormEncoded } from '../../form-encoding.js'
import { bodyTooLarge, type MultipartLimits, multipartBodyParser, wholeBodyLimit } from '../../multipart-body.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes photos as `media` file parts of a multipart body (POST requests). */
    photoUploads?: boolean
  }
}

/** The form field photos come in, as GeoReport clients that upload them name it. */
export const PHOTO_FIELD = 'media'

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

/**
 * For the routes that take forms (the POSTs): multipart as well, and empty body values dropped.
 * A route with `photoUploads` takes up to MEDIA_MAX_FILES photos of MEDIA_MAX_BYTES each on top
 * of BODY_LIMIT_BYTES; every other keeps BODY_LIMIT_BYTES for the whole body.
 */
export async function registerFormBodies(app: FastifyInstance) {
  const bodyLimit = app.config.bodyLimitBytes
  const { maxBytes, maxFiles } = app.config.media
  const limitsOf = (request: FastifyRequest): MultipartLimits =>
    request.routeOptions.config.photoUploads && maxFiles > 0
      ? { textLimit: bodyLimit, files: { field: PHOTO_FIELD, maxBytes, maxFiles, admit: (fields) => mayUploadPhotos(request, fields) } }
      : { textLimit: bodyLimit }
  app.addContentTypeParser('multipart/form-data', multipartBodyParser(limitsOf))
  // A declared length over the limit is refused before a byte of the body is read.
  app.addHook('onRequest', async (request) => {
    const isMultipart = request.headers['content-type']?.toLowerCase().startsWith('multipart/')
    if (isMultipart && Number(request.headers['content-length'] ?? 0) > wholeBodyLimit(limitsOf(request))) throw bodyTooLarge()
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
