import type { FastifyInstance } from 'fastify'
import { acknowledgeAlert, listAlerts, listDeliveries, replayDeliveries } from '../../../domain/departments/deliveries.js'
import { setPublicView } from '../../../domain/requests/public-view.js'
import { closeRequestByOperator } from '../../../domain/work-orders/close-request.js'
import { markDuplicate, unlinkDuplicate } from '../../../domain/work-orders/duplicates.js'
import { addRequestNote } from '../../../domain/work-orders/request-notes.js'
import { jurisdictionFilterOf } from '../../../domain/api-keys/key-jurisdictions.js'
import { notFound } from '../../../open311/errors.js'
import { adminErrors } from '../../schemas/admin.js'
import { errorResponse } from '../../schemas/errors.js'
import { jurisdictionQuery } from '../../schemas/open311.js'
import { auditActorOf, callerJurisdiction } from '../../auth.js'
import { logAction } from '../../logging.js'

const requestParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const
const conflictErrors = { ...adminErrors, 409: errorResponse(409) }

export default async function adminOperationRoutes(app: FastifyInstance) {
  app.get<{ Querystring: { jurisdiction_id?: string; state?: string; limit?: number } }>(
    '/deliveries',
    {
      config: { adminRead: true },
      schema: {
        tags: ['Admin'],
        summary: 'Outbound deliveries, newest first (state=failed: the dead letters)',
        querystring: {
          type: 'object',
          properties: {
            jurisdiction_id: { type: 'string' },
            state: { type: 'string', enum: ['pending', 'delivered', 'failed', 'cancelled'] },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                event_id: { type: 'string' },
                event_type: { type: 'string' },
                department: { type: 'string' },
                work_order_id: { type: ['integer', 'null'] },
                state: { type: 'string' },
                attempts: { type: 'integer' },
                next_attempt_at: { type: 'string' },
                last_status: { type: ['integer', 'null'] },
                last_error: { type: ['string', 'null'] },
                created_at: { type: 'string' },
                delivered_at: { type: ['string', 'null'] },
                failed_at: { type: ['string', 'null'] },
              },
            },
          },
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      return listDeliveries(app.db, jurisdiction.id, { ...(request.query.state ? { state: request.query.state } : {}), limit: request.query.limit ?? 100 })
    },
  )

  const replayAnswer = { type: 'object', properties: { replayed: { type: 'array', items: { type: 'string' } } } } as const

  app.post<{ Params: { event_id: string }; Querystring: { jurisdiction_id?: string } }>(
    '/deliveries/:event_id/replay',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Replay one dead-lettered delivery',
        params: { type: 'object', required: ['event_id'], properties: { event_id: { type: 'string' } } },
        querystring: jurisdictionQuery,
        response: { 200: replayAnswer, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const replayed = await replayDeliveries(app.db, auditActorOf(request), jurisdiction.id, { eventId: request.params.event_id })
      if (replayed.length === 0) throw notFound(`no failed delivery ${request.params.event_id}`)
      return { replayed }
    },
  )

  app.post<{ Body: { failed_since: string }; Querystring: { jurisdiction_id?: string } }>(
    '/deliveries/replay',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Replay every delivery dead-lettered since a time',
        querystring: jurisdictionQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['failed_since'],
          properties: { failed_since: { type: 'string', format: 'date-time' } },
        },
        response: { 200: replayAnswer, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      return { replayed: await replayDeliveries(app.db, auditActorOf(request), jurisdiction.id, { failedSince: new Date(request.body.failed_since) }) }
    },
  )

  app.get<{ Querystring: { jurisdiction_id?: string } }>(
    '/alerts',
    {
      config: { adminRead: true },
      schema: {
        tags: ['Admin'],
        summary: 'Unacknowledged operator alerts (disabled endpoints, dead letters, overdue work)',
        description: 'Of every jurisdiction the key acts in, or of the one `jurisdiction_id` names.',
        querystring: { type: 'object', properties: { jurisdiction_id: { type: 'string' } } },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'integer' },
                kind: { type: 'string' },
                jurisdiction_id: { type: ['string', 'null'], description: 'The jurisdiction of the department the alert is about' },
                message: { type: 'string' },
                createdAt: { type: 'string' },
              },
            },
          },
          ...adminErrors,
        },
      },
    },
    async (request) => listAlerts(app.db, { jurisdictionIds: jurisdictionFilterOf(request.apiKey!, request.query.jurisdiction_id) }),
  )

  app.post<{ Params: { id: number } }>(
    '/alerts/:id/acknowledge',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Acknowledge an alert',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } },
        response: { 200: { type: 'object', properties: { id: { type: 'integer' } } }, ...adminErrors },
      },
    },
    async (request) => {
      const alert = await acknowledgeAlert(app.db, auditActorOf(request), request.params.id, request.apiKey!.jurisdiction_ids)
      if (!alert) throw notFound(`no open alert ${request.params.id}`)
      return { id: alert.id }
    },
  )

  app.post<{ Params: { id: string }; Body: { reason: string; force?: boolean }; Querystring: { jurisdiction_id?: string } }>(
    '/requests/:id/close',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Close a request (409 while work orders are open, unless forced with a reason)',
        params: requestParams,
        querystring: jurisdictionQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['reason'],
          properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 }, force: { type: 'boolean', default: false } },
        },
        response: {
          200: { type: 'object', properties: { update_id: { type: 'string' }, cancelled_work_orders: { type: 'array', items: { type: 'string' } } } },
          ...conflictErrors,
        },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const result = await app.db.transaction((tx) =>
        closeRequestByOperator(tx, auditActorOf(request), jurisdiction.id, request.params.id, { reason: request.body.reason, force: request.body.force ?? false }),
      )
      logAction(request, 'request closed by operator', { serviceRequestId: request.params.id, forced: result.cancelled.length > 0 })
      return { update_id: result.updateId, cancelled_work_orders: result.cancelled }
    },
  )

  app.post<{ Params: { id: string }; Body: { parent_service_request_id: string }; Querystring: { jurisdiction_id?: string } }>(
    '/requests/:id/duplicate',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Mark a request as a duplicate of another (it closes when the original closes)',
        params: requestParams,
        querystring: jurisdictionQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['parent_service_request_id'],
          properties: { parent_service_request_id: { type: 'string', maxLength: 64 } },
        },
        response: { 200: { type: 'object', properties: { update_id: { type: 'string' } } }, ...conflictErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const updateId = await app.db.transaction((tx) =>
        markDuplicate(tx, auditActorOf(request), jurisdiction.id, request.params.id, request.body.parent_service_request_id, 'operator'),
      )
      return { update_id: updateId }
    },
  )

  app.delete<{ Params: { id: string }; Querystring: { jurisdiction_id?: string } }>(
    '/requests/:id/duplicate',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Undo a duplicate link (made at intake or by an operator): the request gets work orders as if just submitted',
        description:
          'Clears the link, sets the detailed status back to `submitted` and routes the request now: one work order per department, ' +
          'due from now, each announced with `work_order.created`. 409 (nothing changed) for a closed request or one that is not a duplicate.',
        params: requestParams,
        querystring: jurisdictionQuery,
        response: {
          200: {
            type: 'object',
            properties: { update_id: { type: 'string' }, work_orders: { type: 'array', items: { type: 'string' }, description: 'The work orders opened (WO-…)' } },
          },
          ...conflictErrors,
        },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const result = await app.db.transaction((tx) => unlinkDuplicate(tx, auditActorOf(request), jurisdiction.id, request.params.id))
      logAction(request, 'duplicate link undone by operator', { serviceRequestId: request.params.id, workOrders: result.workOrders.length })
      return { update_id: result.updateId, work_orders: result.workOrders }
    },
  )

  app.post<{ Params: { id: string }; Body: { public: boolean; reason: string }; Querystring: { jurisdiction_id?: string } }>(
    '/requests/:id/public-view',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Take a request out of public view, or put it back (open-data harvesters learn of it from the removed feed)',
        params: requestParams,
        querystring: jurisdictionQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['public', 'reason'],
          properties: { public: { type: 'boolean' }, reason: { type: 'string', minLength: 1, maxLength: 2000 } },
        },
        response: { 200: { type: 'object', properties: { public: { type: 'boolean' }, changed: { type: 'boolean' } } }, ...conflictErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const { changed } = await app.db.transaction((tx) =>
        setPublicView(tx, auditActorOf(request), jurisdiction.id, request.params.id, { isPublic: request.body.public, reason: request.body.reason }),
      )
      logAction(request, 'request public view set by operator', { serviceRequestId: request.params.id, public: request.body.public, changed })
      return { public: request.body.public, changed }
    },
  )

  app.post<{ Params: { id: string }; Body: { description?: string; template?: string; public?: boolean }; Querystring: { jurisdiction_id?: string } }>(
    '/requests/:id/notes',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Add a 311 note to a request; departments with open work orders get service_request.updated',
        params: requestParams,
        querystring: jurisdictionQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          oneOf: [{ required: ['description'] }, { required: ['template'] }],
          properties: {
            description: { type: 'string', minLength: 1, maxLength: 4000 },
            template: { type: 'string', maxLength: 64, description: 'Instead of description: a pre-approved answer\'s code; the note is then public' },
            public: { type: 'boolean', default: false },
          },
        },
        response: { 200: { type: 'object', properties: { update_id: { type: 'string' } } }, ...conflictErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const { updateId } = await app.db.transaction((tx) =>
        addRequestNote(tx, auditActorOf(request), jurisdiction.id, request.params.id, {
          source: 'operator',
          ...(request.body.description !== undefined ? { description: request.body.description } : {}),
          ...(request.body.template !== undefined ? { template: request.body.template } : {}),
          isPublic: request.body.public ?? false,
        }),
      )
      return { update_id: updateId }
    },
  )
}
