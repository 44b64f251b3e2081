/**
 * The signed inbound door for departments: POST /departments/v1/{department}/events, Standard
 * Webhooks-signed with the department's secret. Verification runs on the raw bytes before
 * anything else; a replayed webhook-id is acknowledged and changes nothing.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Department, findDepartment, liveSecrets } from '../../../domain/departments/departments.js'
import { assertNotFuture, firstDelivery, reportDuplicate, reportWorkOrderStatus, UnknownStatusError } from '../../../domain/departments/inbound.js'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { verify, WebhookVerificationError } from '../../../integrations/webhooks/standard-webhooks.js'
import { badRequest, Open311Error } from '../../../open311/errors.js'
import { parseW3c, precisionOfW3c } from '../../../open311/datetime.js'
import { bodyErrorResponses, errorResponsesFor } from '../../schemas/errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: string
    department?: Department
    webhookTimestamp?: number
    webhookId?: string
  }
}

interface InboundEvent {
  type: 'work_order.status_changed' | 'service_request.duplicate_of'
  data: {
    work_order_id?: string
    status?: string
    external_ref?: string
    expected_datetime?: string
    public_note?: string
    template?: string
    internal_note?: string
    reason?: string
    reassign_to?: string
    occurred_at?: string
    service_request_id?: string
    parent_service_request_id?: string
  }
}

const inboundEventSchema = {
  type: 'object',
  required: ['type', 'data'],
  properties: {
    type: { type: 'string', enum: ['work_order.status_changed', 'service_request.duplicate_of'] },
    data: {
      type: 'object',
      additionalProperties: false,
      properties: {
        work_order_id: { type: 'string', description: 'Our work order id, e.g. WO-42 (status_changed)' },
        status: { type: 'string', maxLength: 100, description: 'The department’s own status code, mapped by its status_map' },
        external_ref: { type: 'string', maxLength: 200 },
        expected_datetime: { type: 'string', description: 'W3C datetime, for scheduled work' },
        public_note: { type: 'string', maxLength: 4000, description: 'Shown to the public as the status note' },
        template: {
          type: 'string',
          maxLength: 64,
          description: 'Instead of public_note: the code of a pre-approved answer (GET /admin/v1/templates); its text becomes the public note',
        },
        internal_note: { type: 'string', maxLength: 4000, description: 'Kept in the history, never public' },
        reason: { type: 'string', maxLength: 1000, description: 'Required for rejected' },
        reassign_to: { type: 'string', description: 'Department code, for reassigned' },
        occurred_at: { type: 'string', description: 'When it happened (W3C); default: webhook-timestamp' },
        service_request_id: { type: 'string', description: 'duplicate_of: the duplicate' },
        parent_service_request_id: { type: 'string', description: 'duplicate_of: the original' },
      },
    },
  },
} as const

const answerSchema = {
  type: 'object',
  properties: {
    received: { type: 'boolean' },
    duplicate: { type: 'boolean', description: 'This webhook-id was already applied; nothing changed' },
    applied: { type: 'boolean' },
    reason: { type: 'string', description: 'Why it was not applied: stale (older than the last report), final, backwards' },
    update_id: { type: ['string', 'null'] },
  },
} as const

export default async function departmentInboundRoutes(app: FastifyInstance) {
  // Signatures cover the raw bytes: keep them as they arrived.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string
    try {
      done(null, JSON.parse(body as string))
    } catch {
      done(badRequest('body: not valid JSON'), undefined)
    }
  })

  async function authenticate(request: FastifyRequest<{ Params: { department: string }; Querystring: { jurisdiction_id?: string } }>) {
    const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
    const department = await findDepartment(app.db, jurisdiction.id, request.params.department)
    const secrets = await liveSecrets(app.db, app.webhooks.secretBox, department.id, new Date())
    try {
      const { id, timestamp } = verify(secrets, request.headers, request.rawBody ?? '')
      request.department = department
      request.webhookId = id
      request.webhookTimestamp = timestamp
    } catch (err) {
      if (err instanceof WebhookVerificationError) {
        request.log.warn({ department: department.code, problem: err.message }, 'inbound webhook refused')
        throw new Open311Error(401, `signature verification failed: ${err.message}`)
      }
      throw err
    }
  }

  app.post<{ Params: { department: string }; Querystring: { jurisdiction_id?: string }; Body: InboundEvent }>(
    '/:department/events',
    {
      preValidation: authenticate,
      schema: {
        tags: ['Departments'],
        summary: 'A department reports progress (Standard Webhooks-signed)',
        description:
          'Sign with the department’s whsec_ secret (webhook-id, webhook-timestamp within 5 minutes, webhook-signature). ' +
          'A webhook-id already applied is acknowledged with duplicate: true. See docs/department-integration.md.',
        params: { type: 'object', required: ['department'], properties: { department: { type: 'string', maxLength: 64 } } },
        querystring: { type: 'object', properties: { jurisdiction_id: { type: 'string' } } },
        // Documentation: the signature is checked (401) before any schema runs.
        headers: {
          type: 'object',
          properties: {
            'webhook-id': { type: 'string', description: 'Unique per event; a repeat is acknowledged and changes nothing' },
            'webhook-timestamp': { type: 'string', description: 'Unix seconds; at most 5 minutes from our clock' },
            'webhook-signature': { type: 'string', description: '`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the whsec_ secret' },
          },
        },
        body: inboundEventSchema,
        response: { 200: answerSchema, ...errorResponsesFor(400, 401, 403, 404, 500, 503), ...bodyErrorResponses('application/json') },
      },
    },
    async (request) => {
      const department = request.department!
      const { type, data } = request.body
      try {
        return await app.db.transaction(async (tx) => {
          if (!(await firstDelivery(tx, department, request.webhookId!))) return { received: true, duplicate: true }
          if (type === 'service_request.duplicate_of') {
            if (!data.service_request_id || !data.parent_service_request_id) {
              throw badRequest('data: service_request_id and parent_service_request_id are required')
            }
            const updateId = await reportDuplicate(tx, department, data.service_request_id, data.parent_service_request_id)
            return { received: true, applied: true, update_id: updateId }
          }
          if (!data.work_order_id || !data.status) throw badRequest('data: work_order_id and status are required')
          // Default: the signed webhook-timestamp (to the second), as the department guide promises.
          const occurredAt = data.occurred_at ? parseW3c(data.occurred_at, 'UTC') : new Date(request.webhookTimestamp! * 1000)
          if (!occurredAt) throw badRequest('data.occurred_at: must be a W3C datetime')
          const occurredPrecisionMs = data.occurred_at ? precisionOfW3c(data.occurred_at) : 1000
          assertNotFuture(occurredAt, 'data.occurred_at')
          const expectedAt = data.expected_datetime ? parseW3c(data.expected_datetime, 'UTC') : undefined
          if (expectedAt === null) throw badRequest('data.expected_datetime: must be a W3C datetime')
          const outcome = await reportWorkOrderStatus(tx, department, data.work_order_id, {
            code: data.status,
            occurredAt,
            occurredPrecisionMs,
            ...(expectedAt ? { expectedAt } : {}),
            ...(data.external_ref ? { externalRef: data.external_ref } : {}),
            ...(data.public_note ? { publicNote: data.public_note } : {}),
            ...(data.template ? { template: data.template } : {}),
            ...(data.internal_note ? { internalNote: data.internal_note } : {}),
            ...(data.reason ? { reason: data.reason } : {}),
            ...(data.reassign_to ? { reassignTo: data.reassign_to } : {}),
          })
          return outcome.applied
            ? { received: true, applied: true, update_id: outcome.updateId }
            : { received: true, applied: false, reason: outcome.reason, update_id: outcome.updateId }
        })
      } catch (err) {
        if (err instanceof UnknownStatusError) {
          request.log.warn({ department: err.department, statusCode: err.code }, 'unknown department status code refused')
        }
        throw err
      }
    },
  )
}
