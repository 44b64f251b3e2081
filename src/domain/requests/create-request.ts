/**
 * Creating a service request: the request, its reporter's personal data (apart), its first
 * history entry, its work orders (one per routed department, with their outbox events) and,
 * for batch/blackbox services, its token — all in one transaction.
 */
import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { type Db, preparedStatement, queryRows } from '../../db/database.js'
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
 * outside a transaction. Its text is built once (see preparedStatement); a request only
 * supplies the values. Callers that write more (an idempotency key) wrap it in their transaction.
 */
export async function insertServiceRequest(db: Db, input: NewRequest): Promise<CreatedRequest> {
  const values = newRequestValues(input)
  const [row] = await insertNewRequest(db, values)
  return {
    serviceRequestId: row!.public_id,
    serviceNotice: row!.service_notice,
    accountId: input.submission.reporter.accountId ?? null,
    ...(values.token ? { token: values.token } : {}),
  }
}

const value = (name: keyof ReturnType<typeof newRequestValues>) => sql.placeholder(name)

// ST_MakePoint is strict: no lat/long gives a null location, so one text serves both cases.
const location = sql`ST_SetSRID(ST_MakePoint(${value('long')}::float8, ${value('lat')}::float8), 4326)::geography`

/** The statement insertServiceRequest runs; exported so the benchmark can time the very same write without our stack. */
export const NEW_REQUEST_STATEMENT = sql`with routed as (${routedDepartments(value('serviceId'), location)}),
    sr as (
      insert into service_requests (jurisdiction_id, service_id, description, address, address_id, zipcode, location,
                                    media_urls, attributes, channel, submitted_by_key_id, agency_responsible)
      values (${value('jurisdictionId')}, ${value('serviceId')}::bigint, ${value('description')}::text, ${value('address')}::text,
              ${value('addressId')}::text, ${value('zipcode')}::text, ${location},
              ${value('mediaUrls')}::text[], ${value('attributes')}::jsonb, ${value('channel')}::text,
              ${value('apiKeyId')}::bigint, (select string_agg(name, ', ' order by id) from routed))
      returning *),
    rr as (
      insert into request_reporters (request_id, email, first_name, last_name, phone, device_id, account_id)
      select id, ${value('email')}::text, ${value('firstName')}::text, ${value('lastName')}::text, ${value('phone')}::text,
             ${value('deviceId')}::text, ${value('accountId')}::text
      from sr where ${value('hasReporter')}::boolean
      returning *),
    first_update as (
      insert into request_updates (request_id, status, detailed_status, description, source)
      select id, 'open', 'submitted', 'Request received', 'citizen' from sr),
    token as (
      insert into request_tokens (token, request_id) select ${value('token')}::text, id from sr where ${value('token')}::text is not null
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
    from sr`

const insertNewRequest = preparedStatement<{ public_id: string; service_notice: string | null }>(NEW_REQUEST_STATEMENT)

/** The values NEW_REQUEST_STATEMENT takes for a new request (a fresh token for batch and blackbox services). */
export function newRequestValues({ jurisdiction, service, submission, apiKeyId, channel }: NewRequest) {
  const { reporter } = submission
  return {
    jurisdictionId: jurisdiction.id,
    serviceId: service.id,
    description: submission.description ?? null,
    address: submission.addressString ?? null,
    addressId: submission.addressId ?? null,
    zipcode: submission.zipcode ?? null,
    lat: submission.lat ?? null,
    long: submission.long ?? null,
    mediaUrls: submission.mediaUrls,
    attributes: JSON.stringify(submission.attributes),
    channel,
    apiKeyId: apiKeyId ?? null,
    hasReporter: Object.keys(reporter).length > 0,
    email: reporter.email ?? null,
    firstName: reporter.firstName ?? null,
    lastName: reporter.lastName ?? null,
    phone: reporter.phone ?? null,
    deviceId: reporter.deviceId ?? null,
    accountId: reporter.accountId ?? null,
    token: service.type === 'realtime' ? null : randomBytes(16).toString('base64url'),
  }
}
