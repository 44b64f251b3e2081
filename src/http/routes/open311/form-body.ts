/**
 * Open311 POST bodies: urlencoded (repeated keys become arrays) or multipart. Both end up as
 * flat `FormFields`, and an empty value is removed so it counts as absent (Open311 §1.5).
 */
import formbody from '@fastify/formbody'
import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { badRequest, Open311Error } from '../../../open311/errors.js'

interface MultipartPart {
  type: 'field' | 'file'
  fieldname: string
  value?: unknown
}

/**
 * For the whole Open311 scope: urlencoded bodies (a JSON or text body is refused with 415, not
 * half-understood), and empty query values dropped, so `status=` means no status filter.
 * Callback-style hook: GETs pay no promise for it.
 */
export async function registerFormParsing(app: FastifyInstance) {
  app.removeContentTypeParser(['application/json', 'text/plain'])
  await app.register(formbody)
  app.addHook('preValidation', (request, _reply, done) => {
    removeEmpty(request.query)
    done()
  })
}

/**
 * For the routes that take forms (the POSTs): multipart as well, flattened to `FormFields`, and
 * empty body values dropped. @fastify/multipart hooks every request of its scope (three async
 * hooks), which is why it is not registered for the GETs.
 */
export async function registerFormBodies(app: FastifyInstance) {
  const bodyLimit = app.config.bodyLimitBytes
  await app.register(multipart, {
    attachFieldsToBody: true,
    limits: { fields: 500, fieldSize: bodyLimit, files: 5, fileSize: bodyLimit, parts: 505 },
    // Refuse a file part at once instead of buffering it.
    onFile: async (part) => {
      part.file.resume()
      throw badRequest(`${part.fieldname}: file uploads are not accepted; host the photo and send its address as media_url`)
    },
  })
  // The multipart parser reads the raw stream and has no overall size limit of its own: hold
  // a declared length to the body limit (a chunked upload stays bounded by the per-field limits).
  app.addHook('onRequest', (request, _reply, done) => {
    const isMultipart = request.headers['content-type']?.toLowerCase().startsWith('multipart/')
    if (isMultipart && Number(request.headers['content-length'] ?? 0) > bodyLimit) {
      done(new Open311Error(413, 'request body is too large'))
      return
    }
    done()
  })
  app.addHook('preValidation', (request, _reply, done) => {
    try {
      if (request.isMultipart()) request.body = flattenMultipart(request)
      removeEmpty(request.body)
    } catch (err) {
      done(err as Error)
      return
    }
    done()
  })
}

function flattenMultipart(request: FastifyRequest): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = {}
  for (const [name, entry] of Object.entries((request.body ?? {}) as Record<string, MultipartPart | MultipartPart[]>)) {
    const parts = Array.isArray(entry) ? entry : [entry]
    if (parts.some((p) => p.type === 'file')) {
      throw badRequest(`${name}: file uploads are not accepted; host the photo and send its address as media_url`)
    }
    const values = parts.map((p) => String(p.value ?? ''))
    fields[name] = values.length === 1 ? values[0]! : values
  }
  return fields
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
