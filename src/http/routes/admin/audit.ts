import type { FastifyInstance } from 'fastify'
import { jurisdictionFilterOf } from '../../../domain/api-keys/key-jurisdictions.js'
import { AUDIT_COLUMNS, AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, type AuditEventView, findAuditEvents } from '../../../domain/audit/audit-log.js'
import { AUDIT_ACTOR_KINDS } from '../../../db/schema.js'
import { publicUrlWith } from '../../public-url.js'
import { sendReportCsv } from '../../report-csv.js'
import { adminErrors } from '../../schemas/admin.js'

interface AuditQuerystring {
  actor?: string
  request?: string
  entity_type?: string
  entity_id?: string
  jurisdiction_id?: string
  from?: string
  to?: string
  limit: number
  cursor?: string
}

const change = {
  type: 'object',
  required: ['before', 'after'],
  properties: { before: {}, after: {} },
  description: 'A field’s value before and after; personal data and secrets are "[masked]" (null: unset)',
} as const

const auditEvent = {
  type: 'object',
  required: AUDIT_COLUMNS,
  properties: {
    id: { type: 'integer' },
    occurred_at: { type: 'string', format: 'date-time', description: 'When the change’s transaction began' },
    actor_kind: { type: 'string', enum: AUDIT_ACTOR_KINDS },
    actor_key_id: { type: ['integer', 'null'], description: 'The API key’s id (GET /admin/v1/keys) when actor_kind is key' },
    actor_department_id: { type: ['integer', 'null'], description: 'The department’s id when actor_kind is department (its code is actor_name; codes repeat across jurisdictions, ids do not)' },
    actor_name: { type: 'string', description: 'The key’s name then; the department’s code; cli; or the server’s part that made the change' },
    action: { type: 'string', description: 'The entity and what was done to it, e.g. department.updated, api_key.revoked, service.routes_set' },
    entity_type: { type: 'string' },
    entity_id: { type: 'string' },
    service_request_id: { type: ['string', 'null'] },
    jurisdiction_id: { type: ['string', 'null'] },
    changes: { type: 'object', additionalProperties: change },
  },
} as const

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    actor: {
      type: 'string',
      pattern: '^([1-9][0-9]{0,17}|cli|system|department(:[^\\s]{1,64})?)$',
      description: 'Only changes by this API key (its id), by departments (`department`) or one (`department:CODE`), by the CLI (`cli`), or by the server (`system`)',
    },
    request: { type: 'string', maxLength: 64, description: 'Only changes about this service request (service_request_id)' },
    entity_type: { type: 'string', maxLength: 64, description: 'Only changes to this kind of thing: department, api_key, service, jurisdiction, response_template' },
    entity_id: { type: 'string', maxLength: 200, description: 'With entity_type: only this one (a department or service code, a key id, …)' },
    jurisdiction_id: { type: 'string', maxLength: 200 },
    from: { type: 'string', format: 'date-time', description: 'Changes at or after this time' },
    to: { type: 'string', format: 'date-time', description: 'Changes before this time' },
    limit: { type: 'integer', minimum: 1, maximum: AUDIT_PAGE_MAX, default: AUDIT_PAGE_DEFAULT },
    cursor: { type: 'string', maxLength: 200, description: 'The next page, from the previous answer (next_cursor, or the Link header)' },
  },
} as const

/** A row of the CSV: the JSON entry's values as text (times as ISO 8601, changes as their JSON). */
const csvRow = (e: AuditEventView) => ({ ...e, occurred_at: e.occurred_at.toISOString(), changes: JSON.stringify(e.changes) })

/** The audit trail, `GET /admin/v1/audit.{json,csv}` (docs/audit.md): newest first, paged by cursor. */
export default async function adminAuditRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: 'json' | 'csv' }; Querystring: AuditQuerystring }>(
    '/audit.:format',
    {
      config: { adminRead: true },
      schema: {
        tags: ['Admin'],
        summary: 'The audit trail: who changed what, when, and each changed field before and after',
        description:
          'Newest first. One page per call (`limit`); the next is `next_cursor` (JSON) and `Link: <…>; rel="next"` (both formats). ' +
          'The CSV has the same entries and columns, `changes` as JSON text. What is recorded: docs/audit.md.',
        params: { type: 'object', required: ['format'], properties: { format: { type: 'string', enum: ['json', 'csv'] } } },
        querystring,
        response: {
          200: {
            description: 'A page of entries',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['events', 'next_cursor'],
                  properties: { events: { type: 'array', items: auditEvent }, next_cursor: { type: ['string', 'null'] } },
                },
              },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          ...adminErrors,
        },
      },
    },
    async (request, reply) => {
      const q = request.query
      const page = await findAuditEvents(
        app.db,
        {
          ...(q.actor !== undefined ? { actor: q.actor } : {}),
          ...(q.request !== undefined ? { request: q.request } : {}),
          ...(q.entity_type !== undefined ? { entityType: q.entity_type } : {}),
          ...(q.entity_id !== undefined ? { entityId: q.entity_id } : {}),
          // A city's key reads its jurisdictions' entries only, whatever it asks for.
          jurisdictionIds: jurisdictionFilterOf(request.apiKey!, q.jurisdiction_id),
          ...(q.from !== undefined ? { from: new Date(q.from) } : {}),
          ...(q.to !== undefined ? { to: new Date(q.to) } : {}),
        },
        { limit: q.limit, ...(q.cursor !== undefined ? { cursor: q.cursor } : {}) },
      )
      if (page.nextCursor) reply.header('link', `<${publicUrlWith(request, { cursor: page.nextCursor })}>; rel="next"`)
      // The trail says who did what: no shared cache may keep it.
      reply.header('cache-control', 'private, no-store')
      if (request.params.format === 'csv') return sendReportCsv(reply, { columns: [...AUDIT_COLUMNS], rows: page.events.map(csvRow) }, 'audit')
      return { events: page.events, next_cursor: page.nextCursor }
    },
  )
}
