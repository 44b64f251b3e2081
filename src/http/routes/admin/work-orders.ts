import type { FastifyInstance } from 'fastify'
import { callerJurisdiction } from '../../auth.js'
import { workOrderPublicId } from '../../../domain/work-orders/events.js'
import { findWorkOrders } from '../../../domain/work-orders/find-work-orders.js'
import { listWorkOrders, type WorkOrder } from '../../../domain/work-orders/work-orders.js'
import { adminErrors } from '../../schemas/admin.js'
import { jurisdictionQuery } from '../../schemas/open311.js'

const nullableDateTime = (description: string) => ({ type: ['string', 'null'], format: 'date-time', description }) as const

const workOrderView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    department_id: { type: 'integer' },
    state: { type: 'string' },
    external_ref: { type: ['string', 'null'] },
    external_status_code: { type: ['string', 'null'] },
    reason: { type: ['string', 'null'] },
    expected_at: nullableDateTime('The date the department gave, if any'),
    due_at: nullableDateTime('The service-level due date (docs/service-levels.md); null: no deadline'),
    overdue_at: nullableDateTime('When it was found past due, or completed late: a breach, never cleared'),
  },
} as const

const viewOf = (w: WorkOrder) => ({
  id: workOrderPublicId(w.id),
  department_id: w.departmentId,
  state: w.state,
  external_ref: w.externalRef,
  external_status_code: w.externalStatusCode,
  reason: w.reason,
  expected_at: w.expectedAt?.toISOString() ?? null,
  due_at: w.dueAt?.toISOString() ?? null,
  overdue_at: w.overdueAt?.toISOString() ?? null,
})

/** Work orders as operators see them: per request, and across the jurisdiction (the overdue list). */
export default async function adminWorkOrderRoutes(app: FastifyInstance) {
  app.get<{ Params: { id: string }; Querystring: { jurisdiction_id?: string } }>(
    '/requests/:id/work-orders',
    {
      config: { adminRead: true },
      schema: {
        tags: ['Admin'],
        summary: 'A request’s work orders',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        querystring: jurisdictionQuery,
        response: { 200: { type: 'array', items: workOrderView }, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      return (await listWorkOrders(app.db, jurisdiction.id, request.params.id)).map(viewOf)
    },
  )

  app.get<{ Querystring: { jurisdiction_id?: string; overdue?: boolean; department?: string; after?: string; limit: number } }>(
    '/work-orders',
    {
      config: { adminRead: true },
      schema: {
        tags: ['Admin'],
        summary: 'Work orders across the jurisdiction, in id order (overdue=true: open and past their due date)',
        description: 'Paged by id: pass the last id of a page as `after` for the next.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            jurisdiction_id: { type: 'string' },
            overdue: { type: 'boolean' },
            department: { type: 'string', maxLength: 64, description: 'A department code' },
            after: { type: 'string', pattern: '^WO-[0-9]{1,15}$' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'array',
            items: { ...workOrderView, properties: { ...workOrderView.properties, service_request_id: { type: 'string' }, department: { type: 'string' } } },
          },
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const { overdue, department, after, limit } = request.query
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const rows = await findWorkOrders(app.db, jurisdiction.id, {
        limit,
        ...(overdue !== undefined ? { overdue } : {}),
        ...(department !== undefined ? { departmentCode: department } : {}),
        ...(after !== undefined ? { afterId: Number(after.slice(3)) } : {}),
      })
      return rows.map((r) => ({ ...viewOf(r.workOrder), service_request_id: r.serviceRequestId, department: r.department }))
    },
  )
}
