import type { FastifyInstance } from 'fastify'
import { ReportNotAppliedError, reportRequestUpdate, UnknownStatusError } from '../../../domain/departments/inbound.js'
import { DESCRIPTION_MAX, type FormFields, isHttpUrl } from '../../../domain/requests/submission.js'
import { addRequestNote } from '../../../domain/work-orders/request-notes.js'
import { parseW3c, precisionOfW3c } from '../../../open311/datetime.js'
import { type Open311ErrorItem, Open311Error } from '../../../open311/errors.js'
import type { Format } from '../../../open311/spark.js'
import { auditActorOf, callerJurisdiction, requireDepartmentOrClientKey } from '../../auth.js'
import { sendOpen311 } from '../../reply.js'
import { bodyErrorResponses, errorResponse, errorResponses } from '../../schemas/errors.js'
import { FORM_CONTENT_TYPES, formatParams, formField } from '../../schemas/open311.js'
import { CLIENT_SECURITY } from '../../schemas/security.js'
import { firstValue } from './post-request.js'


/** mySociety's POST Service Request Update, as the door for departments that speak Open311. */
export default async function postUpdateRoutes(app: FastifyInstance) {
  app.post<{ Params: { format: Format }; Body: FormFields }>(
    '/servicerequestupdates.:format',
    {
      preValidation: requireDepartmentOrClientKey,
      schema: {
        tags: ['Open311'],
        summary: 'POST Service Request Update (mySociety extension)',
        description:
          'With a department api_key: the department reports progress on a request it holds a work order for; status is mapped ' +
          'through its status_map (external_status_code first when given); another department’s request: 403. ' +
          'With a client api_key: a citizen’s comment (description, media_url) is added and the departments are told; ' +
          'a client cannot change the status. Idempotent on update_id: a repeat answers the first update_id. ' +
          'A form, `application/x-www-form-urlencoded` or `multipart/form-data`; the key as for POST requests.',
        consumes: FORM_CONTENT_TYPES,
        security: CLIENT_SECURITY,
        'x-xml-root': 'service_request_updates',
        params: formatParams,
        body: {
          type: 'object',
          required: ['service_request_id', 'update_id', 'status', 'updated_datetime'],
          properties: {
            api_key: formField('The department’s api_key (or Authorization: Bearer)'),
            jurisdiction_id: formField('Optional'),
            service_request_id: formField('The request', '100042'),
            update_id: formField('The department’s own id for this update', 'FMS-881'),
            status: formField('mySociety status word (OPEN, IN_PROGRESS, FIXED, …) or a code from the status_map', 'IN_PROGRESS'),
            external_status_code: formField('The department’s fine-grained code; mapped in preference to status'),
            updated_datetime: formField('W3C datetime of the change', '2026-05-02T08:15:00-05:00'),
            description: formField('Public text of the update (may be empty)', 'Crew scheduled for Monday'),
            media_url: formField('Optional'),
            reassign_to: formField('For INTERNAL_REFERRAL / reassigned: the department code the work moves to'),
          },
        },
        response: {
          200: {
            type: 'array',
            description: 'Our id of the update (the first one for a repeated update_id)',
            items: { type: 'object', properties: { update_id: { type: 'string' } }, examples: [{ update_id: '5013' }] },
          },
          ...errorResponses,
          403: errorResponse(403, 'No valid key, or a department key for a request it holds no work order for'),
          409: errorResponse(
            409,
            'A department update that cannot be applied (stale, final, backwards); nothing was recorded',
            'update FMS-881 not applied (final): work order WO-42 is already completed; it cannot change',
          ),
          ...bodyErrorResponses('application/x-www-form-urlencoded or multipart/form-data'),
        },
      },
    },
    async (request, reply) => {
      const department = request.department
      const body = request.body
      const problems: Open311ErrorItem[] = []
      const one = (name: string) => {
        const value = firstValue(body[name])
        if (Array.isArray(body[name]) && (body[name] as string[]).length > 1) problems.push({ code: 400, description: `${name}: only one value is allowed` })
        return value
      }
      const updatedText = one('updated_datetime')!
      const occurredAt = parseW3c(updatedText, 'UTC')
      if (!occurredAt) problems.push({ code: 400, description: 'updated_datetime: must be a W3C datetime' })
      const externalUpdateId = one('update_id')!
      if (externalUpdateId.length > 200) problems.push({ code: 400, description: 'update_id: at most 200 characters' })
      if (occurredAt && occurredAt.getTime() > Date.now() + 5 * 60_000) {
        problems.push({ code: 400, description: 'updated_datetime: lies in the future' })
      }
      if (problems.length > 0) throw new Open311Error(400, problems)
      const description = one('description')
      const code = one('external_status_code') ?? one('status')!
      if (!department) {
        const mediaUrls = ([] as string[]).concat(body.media_url ?? [])
        if (!mediaUrls.every(isHttpUrl)) throw new Open311Error(400, 'media_url: must be an http or https URL')
        if (!description && mediaUrls.length === 0) throw new Open311Error(400, 'description: a comment needs text or a media_url')
        const jurisdiction = await callerJurisdiction(request, one('jurisdiction_id'))
        const result = await app.db.transaction((tx) =>
          addRequestNote(tx, auditActorOf(request), jurisdiction.id, one('service_request_id')!, {
            source: 'citizen',
            description: (description ?? '').slice(0, DESCRIPTION_MAX),
            isPublic: true,
            mediaUrls,
            externalUpdateId: `client:${request.apiKey!.id}:${externalUpdateId}`,
          }),
        )
        if (result.replayed) reply.header('idempotent-replayed', 'true')
        return sendOpen311(reply, request.params.format, 'service_request_updates', [{ update_id: result.updateId }])
      }
      try {
        const result = await app.db.transaction((tx) =>
          reportRequestUpdate(tx, department, one('service_request_id')!, {
            code,
            occurredAt: occurredAt!,
            occurredPrecisionMs: precisionOfW3c(updatedText),
            externalUpdateId,
            ...(description ? { publicNote: description, reason: description } : {}),
            ...(one('reassign_to') ? { reassignTo: one('reassign_to')! } : {}),
          }),
        )
        if (result.replayed) reply.header('idempotent-replayed', 'true')
        return sendOpen311(reply, request.params.format, 'service_request_updates', [{ update_id: result.updateId }])
      } catch (err) {
        if (err instanceof UnknownStatusError) {
          request.log.warn({ department: err.department, statusCode: err.code }, 'unknown department status code refused')
        } else if (err instanceof ReportNotAppliedError) {
          request.log.warn({ department: department.code, reason: err.reason }, 'department update not applied; answered 409')
        }
        throw err
      }
    },
  )
}
