import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { activeService } from '../../../domain/catalog/catalog-cache.js'
import { preparePhotos } from '../../../domain/media/photos.js'
import { REQUEST_CHANNELS, requestChannel } from '../../../domain/requests/channels.js'
import { assertInsideJurisdiction, submitServiceRequest } from '../../../domain/requests/submit-request.js'
import { IDEMPOTENCY_KEY_PATTERN, runIdempotent } from '../../../domain/requests/idempotency.js'
import { type FormFields, validateSubmission } from '../../../domain/requests/submission.js'
import { badRequest, notFound } from '../../../open311/errors.js'
import { toPossibleDuplicate } from '../../../open311/request-representation.js'
import type { Format } from '../../../open311/spark.js'
import { auditActorOf, callerJurisdiction, requireClientKey } from '../../auth.js'
import { sendOpen311 } from '../../reply.js'
import { bodyErrorResponses, errorResponse, errorResponses } from '../../schemas/errors.js'
import { attributeFields, FORM_CONTENT_TYPES, formatParams, formField, postRequestAnswer } from '../../schemas/open311.js'
import { CLIENT_SECURITY } from '../../schemas/security.js'
import { logAction } from '../../logging.js'
import { photoUrl } from '../media/index.js'
import { PHOTO_FIELD } from './form-body.js'

export default async function postRequestRoutes(app: FastifyInstance) {
  app.post<{ Params: { format: Format }; Body: FormFields; Querystring: { extensions?: boolean } }>(
    '/requests.:format',
    {
      config: { photoUploads: true },
      onRequest: app.postRateLimits.byIp,
      preValidation: requireClientKey,
      preHandler: app.postRateLimits.byApiKey,
      schema: {
        tags: ['Open311'],
        summary: 'POST Service Request',
        description:
          'A form: `application/x-www-form-urlencoded` or `multipart/form-data`. ' +
          'The API key as `Authorization: Bearer`, the `api_key` field or the `api_key` query parameter. ' +
          'Attributes as `attribute[code]=v`, `attribute[code][]=v` or a repeated `attribute[code]` (see the service definition). ' +
          'A retry with the same `Idempotency-Key` header gets the first answer (with `Idempotent-Replayed: true`). ' +
          'Photos: multipart only, as `media` file parts (at most MEDIA_MAX_FILES, default 3, of MEDIA_MAX_BYTES each, default 10 MB: ' +
          '413 above); JPEG, PNG, WebP or AVIF, checked by decoding; kept only re-encoded as JPEG without any metadata (no EXIF, no GPS), ' +
          'served at `GET /media/v1/{id}/full.jpg` (and `thumb.jpg`), which becomes the first media_url. ' +
          'A file that is not such an image is a 400 and nothing is created. ' +
          'Services with a duplicate policy (docs/service-levels.md, "Duplicates at intake") look for open requests nearby: ' +
          '`service_notice` names the likely original, and with `extensions=true` the answer lists `possible_duplicates`.',
        consumes: FORM_CONTENT_TYPES,
        security: CLIENT_SECURITY,
        'x-xml-root': 'service_requests',
        params: formatParams,
        querystring: {
          type: 'object',
          properties: {
            extensions: { type: 'boolean', description: 'Extension: add possible_duplicates (services with a duplicate policy)' },
          },
        },
        headers: {
          type: 'object',
          properties: { 'idempotency-key': { type: 'string', description: 'Optional; 1–255 printable ASCII characters' } },
        },
        body: {
          type: 'object',
          required: ['service_code'],
          properties: {
            api_key: formField('Client API key (or Authorization: Bearer)'),
            jurisdiction_id: formField('Required only when this server serves several jurisdictions'),
            service_code: formField('From GET services (the example: a demo city service without required attributes)', 'sidewalk-damage'),
            channel: formField(
              `How the report came in: ${REQUEST_CHANNELS.join(', ')}. Only from a key with requests:set-channel or admin (else 403); ` +
                'without it, the key’s default channel',
            ),
            lat: formField('WGS84 latitude; with long', '41.8781'),
            long: formField('WGS84 longitude; with lat', '-87.6298'),
            address_string: formField('Free-text location', '121 N LaSalle St'),
            address_id: formField('Id in the city’s address repository'),
            zipcode: formField('Postal code', '60602'),
            email: formField('Reporter email (never published)', 'resident@example.org'),
            device_id: formField('Reporter device (never published)'),
            account_id: formField('Reporter account (never published)'),
            first_name: formField('Reporter (never published)', 'Ana'),
            last_name: formField('Reporter (never published)', 'Reyes'),
            phone: formField('Reporter (never published)'),
            description: formField('At most 4000 characters', 'Raised slab by the library entrance, a trip hazard'),
            media_url: formField('http(s) URL of a photo; may repeat'),
            [PHOTO_FIELD]: formField('Photo file part(s) (multipart only): JPEG, PNG, WebP or AVIF; may repeat'),
          },
          patternProperties: attributeFields,
        },
        response: {
          200: { type: 'array', items: postRequestAnswer, description: 'The new request’s id, or a token for batch and blackbox services' },
          ...errorResponses,
          403: errorResponse(403, 'No API key, or one that is not valid, revoked or without the requests:write scope'),
          ...bodyErrorResponses('application/x-www-form-urlencoded or multipart/form-data'),
          429: errorResponse(429),
        },
      },
    },
    async (request, reply) => {
      const body = request.body
      const channel = requestChannel(body, request.apiKey!)
      const jurisdiction = await callerJurisdiction(request, firstValue(body.jurisdiction_id))
      const serviceCode = firstValue(body.service_code)!
      const service = await activeService(app.db, jurisdiction, serviceCode)
      if (!service) throw notFound(`service_code "${serviceCode}" does not exist`)
      const validated = validateSubmission(body, service, jurisdiction.timeZone)
      await assertInsideJurisdiction(app.db, jurisdiction, validated)
      // Decoded only once the rest of the report is valid: a refused report costs no image work.
      const uploads = request.uploads?.map((upload) => upload.bytes) ?? []
      const photos = await preparePhotos(PHOTO_FIELD, uploads)
      const photoUrls = photos.map((photo) => photoUrl(app.config.publicBaseUrl, photo.publicId, 'full'))
      const submission = { ...validated, mediaUrls: [...photoUrls, ...validated.mediaUrls] }

      const idempotencyKey = request.headers['idempotency-key']
      if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey))) {
        throw badRequest('Idempotency-Key: must be 1–255 printable ASCII characters')
      }
      const { api_key: _key, ...fields } = body
      // The photos are part of what a retry must repeat: the same key with other photos is refused.
      const content = uploads.length > 0 ? { ...fields, [PHOTO_FIELD]: uploads.map((bytes) => createHash('sha256').update(bytes).digest('hex')) } : fields
      const result = await runIdempotent<PostAnswer[]>(
        app.db,
        idempotencyKey ? { apiKeyId: request.apiKey!.id, key: idempotencyKey, request: content } : undefined,
        async (db) => {
          const created = await submitServiceRequest(db, { jurisdiction, service, submission, photos, apiKeyId: request.apiKey!.id, actor: auditActorOf(request), channel })
          const answer = created.token
            ? { token: created.token, service_notice: created.serviceNotice, account_id: created.accountId }
            : { service_request_id: created.serviceRequestId, service_notice: created.serviceNotice, account_id: created.accountId }
          // Kept whether or not this POST asked for extensions: a retry gets the same answer either way.
          const found = created.possibleDuplicates.map((d) => toPossibleDuplicate(d, jurisdiction.timeZone))
          return { status: 200, body: [{ ...answer, ...(found.length > 0 ? { possible_duplicates: found } : {}) } as PostAnswer] }
        },
      )
      if (result.replayed) reply.header('idempotent-replayed', 'true')
      // Stored answers come back with their keys in the database's order; restore the spec's.
      const extensions = request.query.extensions === true
      const answers = result.body.map((answer) => postAnswer(answer, extensions))
      const duplicates = result.body[0]?.possible_duplicates?.length ?? 0
      logAction(request, 'service request submitted', { serviceCode, photos: photos.length, replayed: result.replayed, ...(duplicates ? { possibleDuplicates: duplicates } : {}) })
      reply.code(result.status)
      return sendOpen311(reply, request.params.format, 'service_requests', answers)
    },
  )
}

interface PostAnswer {
  service_request_id?: string
  token?: string
  service_notice: string | null
  account_id: string | null
  possible_duplicates?: { service_request_id: string; distance_m: number | null; requested_datetime: string }[]
}

/**
 * The spec's element order: the id (or token), then service_notice and account_id; with
 * extensions, possible_duplicates last (an empty list when the search found none, or did not run).
 */
function postAnswer(answer: PostAnswer, extensions: boolean): PostAnswer {
  return {
    ...(answer.service_request_id !== undefined ? { service_request_id: answer.service_request_id } : {}),
    ...(answer.token !== undefined ? { token: answer.token } : {}),
    service_notice: answer.service_notice,
    account_id: answer.account_id,
    ...(extensions ? { possible_duplicates: (answer.possible_duplicates ?? []).map(possibleDuplicate) } : {}),
  }
}

/** A stored answer's keys come back in the database's order: the documented one is restored. */
const possibleDuplicate = (d: NonNullable<PostAnswer['possible_duplicates']>[number]) => ({
  service_request_id: d.service_request_id,
  distance_m: d.distance_m,
  requested_datetime: d.requested_datetime,
})

export const firstValue = (field: string | string[] | undefined) => (Array.isArray(field) ? field[0] : field)
