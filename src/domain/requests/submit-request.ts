/**
 * Submitting a service request: the one place a new request is written. `submitServiceRequest`
 * writes the request with its named steps (writeRequest), then opens its work orders, all in
 * the caller's transaction — a new field at creation (a due date, a channel, a duplicate link)
 * is one more column or step here.
 */
import { type SQL, sql } from 'drizzle-orm'
import { type Db, preparedRows, queryRows } from '../../db/database.js'
import { invalid } from '../errors.js'
import type { StoredService } from '../catalog/catalog.js'
import type { Jurisdiction } from '../jurisdictions.js'
import { routedDepartments } from '../departments/routing.js'
import { openWorkOrders } from '../work-orders/open-work-orders.js'
import type { Reporter, Submission } from './submission.js'
import { newToken, TOKEN_PENDING_CHANNEL, tokenInsert } from './tokens.js'

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
  if (!row?.inside) throw invalid('lat/long: the location is outside the jurisdiction')
}

/**
 * Writes a new request: the request row, its reporter (apart from every public column), its
 * first history entry, its token (batch and blackbox services), and one work order per routed
 * department with its `work_order.created` event. `tx` must be a transaction: the work orders
 * are a second statement, and the two stand or fall together. The token acceptor and the
 * dispatchers are woken by NOTIFYs the steps send (tokens.ts, src/outbox), delivered at commit.
 */
export async function submitServiceRequest(tx: Db, input: NewRequest): Promise<CreatedRequest> {
  const token = input.service.type === 'realtime' ? null : newToken()
  const request = await writeRequest(tx, input, token)
  await openWorkOrders(tx, request.id, request.departmentIds)
  return {
    serviceRequestId: request.publicId,
    serviceNotice: request.serviceNotice,
    accountId: input.submission.reporter.accountId ?? null,
    ...(token ? { token } : {}),
  }
}

/**
 * The request and what belongs to it alone, in one statement of named steps (data-modifying
 * CTEs): routing, the request row, the reporter, the first history entry, the token. A new
 * field at creation is a column in requestRow or one more step here.
 *
 * One statement, not one per step: a statement is a round trip, and a POST that sent five of
 * them in its transaction ran at 0.82× of this form (POST requests.json, bench:compare against
 * 0ece0db, 32 connections, session 8: medians 910 and 1,070 req/s). Invariant: each step reads
 * only `new_request` and `routed`, never rows another step of this statement writes (a CTE cannot
 * see them). The work orders stay a statement of their own, for that reason: their events read
 * the request and reporter rows written here.
 */
async function writeRequest(tx: Db, input: NewRequest, token: string | null) {
  const { submission } = input
  // ST_MakePoint is strict: no lat/long gives a null point, so one statement text serves both cases.
  const point = sql`ST_SetSRID(ST_MakePoint(${submission.long ?? null}::float8, ${submission.lat ?? null}::float8), 4326)::geography`
  const [row] = await preparedRows<{ id: number | string; public_id: string; service_notice: string | null; department_ids: (number | string)[] | null }>(
    tx,
    sql`with routed as (${routedDepartments(input.service.id, point)}),
          new_request as (${requestRow(input, point)}),
          reporter as (${reporterRow(submission.reporter)}),
          first_entry as (${firstHistoryEntry()}),
          issued as (${tokenInsert(token, sql`new_request`)})
        select r.id, r.public_id, r.service_notice,
               (select array_agg(id order by id) from routed) as department_ids,
               (select pg_notify(${TOKEN_PENDING_CHANNEL}, '') from issued)
        from new_request r`,
  )
  return {
    id: Number(row!.id),
    publicId: row!.public_id,
    serviceNotice: row!.service_notice,
    departmentIds: (row!.department_ids ?? []).map(Number),
  }
}

/** The request row; `agency_responsible` names the routed departments, as Open311 shows them. */
function requestRow({ jurisdiction, service, submission, apiKeyId, channel }: NewRequest, point: SQL): SQL {
  return sql`insert into service_requests (jurisdiction_id, service_id, description, address, address_id, zipcode, location,
                                  media_urls, attributes, channel, submitted_by_key_id, agency_responsible)
    values (${jurisdiction.id}, ${service.id}::bigint, ${submission.description ?? null}::text, ${submission.addressString ?? null}::text,
            ${submission.addressId ?? null}::text, ${submission.zipcode ?? null}::text, ${point},
            ${sql.param(submission.mediaUrls)}::text[], ${JSON.stringify(submission.attributes)}::jsonb, ${channel}::text,
            ${apiKeyId ?? null}::bigint, (select string_agg(name, ', ' order by id) from routed))
    returning id, public_id, service_notice`
}

/** The reporter's personal data, when any was given. */
function reporterRow(reporter: Reporter): SQL {
  return sql`insert into request_reporters (request_id, email, first_name, last_name, phone, device_id, account_id)
    select id, ${reporter.email ?? null}::text, ${reporter.firstName ?? null}::text, ${reporter.lastName ?? null}::text,
           ${reporter.phone ?? null}::text, ${reporter.deviceId ?? null}::text, ${reporter.accountId ?? null}::text
    from new_request where ${Object.keys(reporter).length > 0}::boolean`
}

/** The first entry of the request's history. */
function firstHistoryEntry(): SQL {
  return sql`insert into request_updates (request_id, status, detailed_status, description, source)
    select id, 'open', 'submitted', 'Request received', 'citizen' from new_request`
}
