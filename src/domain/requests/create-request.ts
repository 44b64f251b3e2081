/**
 * Creating a service request: the request, its reporter's personal data (apart), its first
 * history entry, its work orders (one per routed department, with their outbox events) and,
 * for batch/blackbox services, its token — all in one transaction.
 */
import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { type Db, preparedRows, queryRows } from '../../db/database.js'
import { badRequest } from '../../open311/errors.js'
import type { StoredService } from '../catalog/catalog.js'
import type { Jurisdiction } from '../jurisdictions.js'
import { routedDepartments } from '../departments/departments.js'
import { OUTBOX_CHANNEL, OUTBOX_COLUMNS, outboxRow } from '../work-orders/events.js'
import type { Submission } from './submission.js'

/** NOTIFY channel that wakes the token acceptor. */
export const TOKEN_PENDING_CHANNEL = 'open311_token_pending'

export interface CreatedRequest {
  serviceRequestId: string
  token?: string
  serviceNotice: string | null
  accountId: string | null
}

export interface NewRequest {
  jurisdiction: Jurisdiction
  service: StoredService
  submission: Submission
  apiKeyId?: number
  channel: string
}

/** Refuses a point outside the jurisdiction's boundary, when it has one. */
export async function assertInsideJurisdiction(db: Db, jurisdiction: Jurisdiction, submission: Submission) {
  if (!jurisdiction.boundary || submission.lat === undefined || submission.long === undefined) return
  const [row] = await queryRows<{ inside: boolean }>(
    db,
    sql`select ST_Covers(boundary, ST_SetSRID(ST_MakePoint(${submission.long}, ${submission.lat}), 4326)::geography) as inside
        from jurisdictions where id = ${jurisdiction.id}`,
  )
  if (!row?.inside) throw badRequest('lat/long: the location is outside the jurisdiction')
}

/**
 * One statement writes the request, its reporter, its first history entry, its token, its
 * work orders (routing included) and their outbox events: one round trip, and atomic even
 * outside a transaction. Callers that write more (an idempotency key) wrap it in theirs.
 */
export async function insertServiceRequest(db: Db, input: NewRequest): Promise<CreatedRequest> {
  const { submission, service } = input
  const { reporter } = submission
  const location =
    submission.lat !== undefined && submission.long !== undefined
      ? sql`ST_SetSRID(ST_MakePoint(${submission.long}, ${submission.lat}), 4326)::geography`
      : sql`null::geography`
  const token = service.type === 'realtime' ? null : randomBytes(16).toString('base64url')
  const [row] = await preparedRows<{ public_id: string; service_notice: string | null }>(
    db,
    sql`with routed as (${routedDepartments(service.id, location)}),
        sr as (
          insert into service_requests (jurisdiction_id, service_id, description, address, address_id, zipcode, location,
                                        media_urls, attributes, channel, submitted_by_key_id, agency_responsible)
          values (${input.jurisdiction.id}, ${service.id}, ${submission.description ?? null}, ${submission.addressString ?? null},
                  ${submission.addressId ?? null}, ${submission.zipcode ?? null}, ${location},
                  ${sql.param(submission.mediaUrls)}::text[], ${JSON.stringify(submission.attributes)}::jsonb, ${input.channel},
                  ${input.apiKeyId ?? null}::bigint, (select string_agg(name, ', ' order by id) from routed))
          returning *),
        rr as (
          insert into request_reporters (request_id, email, first_name, last_name, phone, device_id, account_id)
          select id, ${reporter.email ?? null}, ${reporter.firstName ?? null}, ${reporter.lastName ?? null}, ${reporter.phone ?? null},
                 ${reporter.deviceId ?? null}, ${reporter.accountId ?? null}
          from sr where ${Object.keys(reporter).length > 0}
          returning *),
        first_update as (
          insert into request_updates (request_id, status, detailed_status, description, source)
          select id, 'open', 'submitted', 'Request received', 'citizen' from sr),
        token as (
          insert into request_tokens (token, request_id) select ${token}::text, id from sr where ${token}::text is not null
          returning token),
        w as (
          insert into work_orders (request_id, department_id) select sr.id, routed.id from sr, routed order by routed.id
          returning *),
        event as (
          insert into outbox ${OUTBOX_COLUMNS}
          select ${outboxRow('work_order.created')}
          from w join departments d on d.id = w.department_id
          cross join sr join services s on s.id = sr.service_id
          left join rr on true
          order by w.id
          returning 1)
        select sr.public_id, sr.service_notice,
               (select pg_notify(${OUTBOX_CHANNEL}, '') where exists (select 1 from event)),
               (select pg_notify(${TOKEN_PENDING_CHANNEL}, '') from token)
        from sr`,
  )
  return {
    serviceRequestId: row!.public_id,
    serviceNotice: row!.service_notice,
    accountId: reporter.accountId ?? null,
    ...(token ? { token } : {}),
  }
}
