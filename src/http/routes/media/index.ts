/**
 * Photos uploaded with requests, under /media/v1: `{id}/full.jpg` (at most 2048 px a side) and
 * `{id}/thumb.jpg` (320 px). The URL of `full` is what the request's media_url holds. Public
 * photos are public like the request's other fields (any origin, shared caches for a minute);
 * what the public may not see is a 404, the same as an id that does not exist.
 */
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import { findShownPhoto } from '../../../domain/media/media-store.js'
import { PHOTO_VARIANTS, type PhotoVariant, VARIANT_MAX_PX } from '../../../domain/media/photos.js'
import { notFound } from '../../../open311/errors.js'
import { photoReaderOf } from '../../auth.js'
import { matchesIfNoneMatch } from '../../if-none-match.js'
import { errorResponses } from '../../schemas/errors.js'

export const MEDIA_PREFIX = '/media/v1'

/** The public URL of a photo's variant. */
export const photoUrl = (publicBaseUrl: string, publicId: string, variant: PhotoVariant) =>
  `${publicBaseUrl}${MEDIA_PREFIX}/${publicId}/${variant}.jpg`

/**
 * How long a shared cache or a browser may reuse a public photo without asking: withdrawing a
 * request from public view (or making its service sensitive) takes at most this long to reach
 * those copies. The server itself answers 404 at once, and a copy that asks again gets a 304
 * while it may still be shown.
 */
export const PUBLIC_PHOTO_MAX_AGE_SECONDS = 60

export default async function mediaRoutes(app: FastifyInstance) {
  await app.register(cors, { origin: '*', methods: ['GET', 'HEAD'], exposedHeaders: 'etag' })

  app.get<{ Params: { media_id: string; variant: PhotoVariant } }>(
    '/:media_id/:variant.jpg',
    {
      schema: {
        tags: ['Media'],
        summary: 'A photo uploaded with a request',
        description:
          `JPEG, without any metadata (EXIF, GPS, camera data are removed at upload). \`full\`: at most ${VARIANT_MAX_PX.full} px ` +
          `a side; \`thumb\`: at most ${VARIANT_MAX_PX.thumb} px. A request's \`media_url\` is its first photo's \`full\` URL. ` +
          'Photos of requests the public does not see (withdrawn from public view, of a sensitive service, a batch request not yet ' +
          'accepted) are 404, unless the call carries Authorization: Bearer with an admin key, or the key of a department that has ' +
          'a work order for the request. ETag and If-None-Match are supported.',
        params: {
          type: 'object',
          required: ['media_id', 'variant'],
          properties: {
            media_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$', description: 'The id in the media_url' },
            variant: { type: 'string', enum: [...PHOTO_VARIANTS] },
          },
        },
        response: {
          200: { description: 'The photo', content: { 'image/jpeg': { schema: { type: 'string', format: 'binary' } } } },
          304: { description: 'Not modified', type: 'null' },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { media_id: publicId, variant } = request.params
      // A photo's bytes never change: its id and variant are its validator.
      const etag = `"${publicId}.${variant}"`
      const reader = await photoReaderOf(request, reply)
      const notModified = matchesIfNoneMatch(request.headers['if-none-match'], etag)
      const photo = await findShownPhoto(app.db, { publicId, variant, reader, withBytes: !notModified })
      if (!photo) throw notFound(`no photo ${publicId}/${variant}.jpg`)
      reply.header('etag', etag).header('vary', 'authorization').header('x-content-type-options', 'nosniff')
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', `public, max-age=${PUBLIC_PHOTO_MAX_AGE_SECONDS}`)
      if (notModified) return reply.code(304).send()
      reply.type('image/jpeg')
      return reply.send(photo.bytes ?? undefined)
    },
  )
}
