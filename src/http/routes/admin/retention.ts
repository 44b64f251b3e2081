import type { FastifyInstance } from 'fastify'
import { anonymiseReporter, anonymiseRequest } from '../../../domain/retention/anonymise.js'
import { JURISDICTION_STEPS, previewRetention, RETENTION_STEPS } from '../../../domain/retention/retention.js'
import { auditActorOf, callerJurisdiction } from '../../auth.js'
import { logAction } from '../../logging.js'
import { adminErrors } from '../../schemas/admin.js'
import { jurisdictionQuery } from '../../schemas/open311.js'

const anonymisedRequest = {
  type: 'object',
  properties: {
    service_request_id: { type: 'string' },
    anonymised: { type: 'boolean', description: 'false: it had been anonymised before, nothing was left to remove' },
    cleared_fields: { type: 'array', items: { type: 'string' }, description: 'Reporter fields that held a value (never the values)' },
    outbox_payloads: { type: 'integer', description: 'Outbound events the reporter\'s contact was removed from' },
    idempotency_records: { type: 'integer', description: 'Idempotency-Key records deleted' },
  },
  examples: [{ service_request_id: '100234', anonymised: true, cleared_fields: ['email', 'phone'], outbox_payloads: 1, idempotency_records: 1 }],
} as const

const answer = (r: { service_request_id: string; anonymised: boolean; cleared_fields: string[]; outbox_payloads: number; idempotency_records: number }) => ({
  service_request_id: r.service_request_id,
  anonymised: r.anonymised,
  cleared_fields: r.cleared_fields,
  outbox_payloads: r.outbox_payloads,
  idempotency_records: r.idempotency_records,
})

/** The right to erasure (docs/retention.md): the reporter's personal data, every copy; the request stays. */
export default async function adminRetentionRoutes(app: FastifyInstance) {
  app.get<{ Querystring: { jurisdiction_id?: string } }>(
    '/retention',
    {
      schema: {
        tags: ['Admin'],
        summary: 'The retention policy and periods, and what the next run would do',
        description:
          'The jurisdiction\'s `anonymise_after_days` (set in the catalog file, `jurisdiction.retention`), the server\'s periods ' +
          '(`RETENTION_*`), and the counts of a dry run (`npm run cli -- retention run --dry-run`): this jurisdiction\'s requests due for anonymising and ' +
          'its departments\' delivered events and inbound event ids past their periods; the server\'s own rows (idempotency records, rate-limit counters) ' +
          'for a key of every jurisdiction (null for a key of some: they are no city\'s).',
        querystring: jurisdictionQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              jurisdiction_id: { type: 'string' },
              anonymise_after_days: { type: ['integer', 'null'], description: 'null: reporters\' data is kept until erased on demand' },
              periods: {
                type: 'object',
                properties: {
                  delivered_outbox_days: { type: 'integer' },
                  inbound_events_days: { type: 'integer' },
                  idempotency_hours: { type: 'integer' },
                  rate_limit_hours: { type: 'integer' },
                },
              },
              due: {
                type: 'object',
                properties: Object.fromEntries(RETENTION_STEPS.map((s) => [s, { type: (JURISDICTION_STEPS as readonly string[]).includes(s) ? 'integer' : ['integer', 'null'] }])),
              },
            },
          },
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const periods = app.config.retention
      return {
        jurisdiction_id: jurisdiction.id,
        anonymise_after_days: jurisdiction.anonymiseAfterDays,
        periods: {
          delivered_outbox_days: periods.deliveredOutboxDays,
          inbound_events_days: periods.inboundEventsDays,
          idempotency_hours: periods.idempotencyHours,
          rate_limit_hours: periods.rateLimitHours,
        },
        due: await previewRetention(app.db, { jurisdictionId: jurisdiction.id, periods, serverRows: request.apiKey!.jurisdiction_ids === null }),
      }
    },
  )

  app.post<{ Params: { id: string }; Querystring: { jurisdiction_id?: string } }>(
    '/requests/:id/anonymise',
    {
      schema: {
        tags: ['Admin'],
        summary: "Anonymise one request's reporter (name, email, phone, device and account ids, and their copies)",
        description:
          'Clears the reporter\'s personal data, removes it from the outbound events (delivered or not) and deletes the Idempotency-Key records ' +
          'of the request; the request, its public history and the reports are unchanged. Recorded in the audit trail. Idempotent.',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        querystring: jurisdictionQuery,
        response: { 200: anonymisedRequest, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const result = await anonymiseRequest(app.db, jurisdiction.id, request.params.id, auditActorOf(request))
      logAction(request, 'request anonymised', { serviceRequestId: result.service_request_id })
      return answer(result)
    },
  )

  app.post<{ Body: { email: string }; Querystring: { jurisdiction_id?: string } }>(
    '/reporters/anonymise',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Anonymise a reporter: every request of the jurisdiction they reported with this email',
        description:
          'The email is matched without regard to case or surrounding spaces. Afterwards nothing links the reporter to the requests, ' +
          'so the same call again finds none. Each request is anonymised as by `POST /admin/v1/requests/{id}/anonymise`.',
        querystring: jurisdictionQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['email'],
          properties: { email: { type: 'string', minLength: 3, maxLength: 320 } },
        },
        response: {
          200: {
            type: 'object',
            properties: { requests: { type: 'array', items: anonymisedRequest } },
          },
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const results = await anonymiseReporter(app.db, jurisdiction.id, request.body.email, auditActorOf(request))
      // The count only: the email is personal data and never logged.
      logAction(request, 'reporter anonymised', { requests: results.length })
      return { requests: results.map(answer) }
    },
  )
}
