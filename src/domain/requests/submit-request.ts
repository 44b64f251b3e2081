/**
 * Submitting a service request: the one place a new request is written. `submitServiceRequest`
 * runs its steps in order, each a statement of its own, all in the caller's transaction — a
 * new field at creation (a due date, a channel, a duplicate link) is one more step here.
 */
import { sql } from 'drizzle-orm'
import { type Db, preparedRows, queryRows } from '../../db/database.js'
import { invalid } from '../errors.js'
import type { StoredService } from '../catalog/catalog.js'
import type { Jurisdiction } from '../jurisdictions.js'
import { type RoutedDepartment, routeRequest } from '../departments/routing.js'
import { openWorkOrders } from '../work-orders/open-work-orders.js'
import type { Reporter, Submission } from './submission.js'
import { issueToken } from './tokens.js'

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
 * department with its `work_order.created` event. `tx` must be a transaction: the steps are
 * separate statements and stand or fall together. The token acceptor and the dispatchers are
 * woken by NOTIFYs their steps send (tokens.ts, src/outbox), delivered at commit.
 */
export async function submitServiceRequest(tx: Db, input: NewRequest): Promise<CreatedRequest> {
  const { submission, service } = input
  const departments = await routeRequest(tx, service.id, submission)
  const request = await insertRequest(tx, input, departments)
  await insertReporter(tx, request.id, submission.reporter)
  await recordSubmitted(tx, request.id)
  const token = service.type === 'realtime' ? undefined : await issueToken(tx, request.id)
  await openWorkOrders(tx, request.id, departments.map((d) => d.id))
  return {
    serviceRequestId: request.publicId,
    serviceNotice: request.serviceNotice,
    accountId: submission.reporter.accountId ?? null,
    ...(token ? { token } : {}),
  }
}

/**
 * The request row. Named prepared statements (see preparedRows) because this runs on every
 * POST; `agency_responsible` names the routed departments, as Open311 shows them.
 */
async function insertRequest(tx: Db, { jurisdiction, service, submission, apiKeyId, channel }: NewRequest, departments: RoutedDepartment[]) {
  const [row] = await preparedRows<{ id: number | string; public_id: string; service_notice: string | null }>(
    tx,
    sql`insert into service_requests (jurisdiction_id, service_id, description, address, address_id, zipcode, location,
                                      media_urls, attributes, channel, submitted_by_key_id, agency_responsible)
        values (${jurisdiction.id}, ${service.id}::bigint, ${submission.description ?? null}::text, ${submission.addressString ?? null}::text,
                ${submission.addressId ?? null}::text, ${submission.zipcode ?? null}::text,
                ST_SetSRID(ST_MakePoint(${submission.long ?? null}::float8, ${submission.lat ?? null}::float8), 4326)::geography,
                ${sql.param(submission.mediaUrls)}::text[], ${JSON.stringify(submission.attributes)}::jsonb, ${channel}::text,
                ${apiKeyId ?? null}::bigint, ${departments.length > 0 ? departments.map((d) => d.name).join(', ') : null}::text)
        returning id, public_id, service_notice`,
  )
  return { id: Number(row!.id), publicId: row!.public_id, serviceNotice: row!.service_notice }
}

/** The reporter's personal data, when any was given. */
async function insertReporter(tx: Db, requestId: number, reporter: Reporter) {
  if (Object.keys(reporter).length === 0) return
  await preparedRows(
    tx,
    sql`insert into request_reporters (request_id, email, first_name, last_name, phone, device_id, account_id)
        values (${requestId}, ${reporter.email ?? null}::text, ${reporter.firstName ?? null}::text, ${reporter.lastName ?? null}::text,
                ${reporter.phone ?? null}::text, ${reporter.deviceId ?? null}::text, ${reporter.accountId ?? null}::text)`,
  )
}

/** The first entry of the request's history. */
async function recordSubmitted(tx: Db, requestId: number) {
  await preparedRows(
    tx,
    sql`insert into request_updates (request_id, status, detailed_status, description, source)
        values (${requestId}, 'open', 'submitted', 'Request received', 'citizen')`,
  )
}
