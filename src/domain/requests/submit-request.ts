/**
 * Submitting a service request: the one place a new request is written. `submitServiceRequest`
 * writes the request and everything that comes with it (routing, reporter, history, token, work
 * orders, their events) as named steps of one statement — a new field at creation (a due date,
 * a channel, a duplicate link) is one more column or step here.
 */
import { type SQL, sql } from 'drizzle-orm'
import { type Db, preparedRows, queryRows } from '../../db/database.js'
import { invalid } from '../errors.js'
import type { StoredService } from '../catalog/catalog.js'
import type { Jurisdiction } from '../jurisdictions.js'
import { routedDepartments } from '../departments/routing.js'
import { workOrderDue } from '../service-levels/due-dates.js'
import { workOrderInsert } from '../work-orders/open-work-orders.js'
import { newWorkOrderEventRows } from '../work-orders/events.js'
import { OUTBOX_CHANNEL, outboxInsert } from '../../outbox/outbox.js'
import { photoInsert } from '../media/media-store.js'
import type { PreparedPhoto } from '../media/photos.js'
import type { RequestChannel } from './channels.js'
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
  /** How it came in: the form's channel or the key's default (channels.ts requestChannel). */
  channel: RequestChannel
  /** Uploaded photos, already decoded and stripped; their URLs are among `submission.mediaUrls`. */
  photos?: PreparedPhoto[]
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
 * department with its `work_order.created` event — in one statement of named steps
 * (data-modifying CTEs), so it is atomic on its own: `db` may be the database or a caller's
 * transaction (one that also stores an Idempotency-Key). Uploaded photos are one more step
 * (media-store.ts), only when there are any: a POST without them runs the statement it always did. A new field at creation is a column in
 * requestRow or one more step here. The token acceptor and the dispatchers are woken by the
 * NOTIFYs its last select sends (delivered at commit).
 *
 * One statement, not one per step, and no transaction around it: each is a round trip. This
 * form ran POST requests.json at 1.11× the one before it (request steps in one statement, then
 * work orders in a second, BEGIN and COMMIT around both: `npm run bench:compare -- --baseline
 * 7831883 --rows 20000 --duration 6`, 32 connections, median of 3 per-round ratios, session 9;
 * docs/benchmarks.md).
 * The bench's POST is an unrouted service, so the figure is the 3 → 1 round trips case; a routed
 * POST went from 5 to 1. Invariant: a step reads only the steps before it, never a table another
 * step writes (a statement cannot see its own steps' rows there) — so the events read the
 * request, the reporter and the work orders from their steps (newWorkOrderEventRows). Triggers
 * too: the close guard on work_orders (migration 0005) finds no request row yet and lets the
 * pending work order in; a trigger that needs the row to exist cannot run on this path.
 */
export async function submitServiceRequest(db: Db, input: NewRequest): Promise<CreatedRequest> {
  const { submission, photos = [] } = input
  const token = input.service.type === 'realtime' ? null : newToken()
  // ST_MakePoint is strict: no lat/long gives a null point, so one statement text serves both cases.
  const point = sql`ST_SetSRID(ST_MakePoint(${submission.long ?? null}::float8, ${submission.lat ?? null}::float8), 4326)::geography`
  const [row] = await preparedRows<{ public_id: string; service_notice: string | null }>(
    db,
    sql`with routed as (${routedDepartments(input.service.id, point)}),
          new_request as (${requestRow(input, point)}),
          reporter as (${reporterRow(submission.reporter)}),
          first_entry as (${firstHistoryEntry()}),
          issued as (${tokenInsert(token, sql`new_request`)}),
          opened as (${workOrderInsert(sql`new_request`, sql`routed`)}),
          announced as (${outboxInsert(newWorkOrderEventRows({ workOrders: sql`opened`, request: sql`new_request`, reporter: sql`reporter` }))})
          ${photos.length > 0 ? sql`, photographed as (${photoInsert(photos, sql`new_request`)})` : sql``}
        select r.public_id, r.service_notice,
               (select pg_notify(${TOKEN_PENDING_CHANNEL}, '') from issued),
               (select pg_notify(${OUTBOX_CHANNEL}, '') where exists (select 1 from announced))
        from new_request r`,
  )
  return {
    serviceRequestId: row!.public_id,
    serviceNotice: row!.service_notice,
    accountId: submission.reporter.accountId ?? null,
    ...(token ? { token } : {}),
  }
}

/**
 * The request row; `agency_responsible` names the routed departments, as Open311 shows them, and
 * `expected_at` is the latest of their service-level due dates until a department gives one.
 */
function requestRow({ jurisdiction, service, submission, apiKeyId, channel }: NewRequest, point: SQL): SQL {
  return sql`insert into service_requests (jurisdiction_id, service_id, description, address, address_id, zipcode, location,
                                  media_urls, attributes, channel, submitted_by_key_id, agency_responsible, expected_at)
    values (${jurisdiction.id}, ${service.id}::bigint, ${submission.description ?? null}::text, ${submission.addressString ?? null}::text,
            ${submission.addressId ?? null}::text, ${submission.zipcode ?? null}::text, ${point},
            ${sql.param(submission.mediaUrls)}::text[], ${JSON.stringify(submission.attributes)}::jsonb, ${channel}::text,
            ${apiKeyId ?? null}::bigint, (select string_agg(name, ', ' order by id) from routed),
            (select max(${workOrderDue(sql`now()`, sql`${service.id}::bigint`, sql`id`)}) from routed))
    returning *`
}

/** The reporter's personal data, when any was given. */
function reporterRow(reporter: Reporter): SQL {
  return sql`insert into request_reporters (request_id, email, first_name, last_name, phone, device_id, account_id)
    select id, ${reporter.email ?? null}::text, ${reporter.firstName ?? null}::text, ${reporter.lastName ?? null}::text,
           ${reporter.phone ?? null}::text, ${reporter.deviceId ?? null}::text, ${reporter.accountId ?? null}::text
    from new_request where ${Object.keys(reporter).length > 0}::boolean
    returning email, first_name, last_name, phone`
}

/** The first entry of the request's history. */
function firstHistoryEntry(): SQL {
  return sql`insert into request_updates (request_id, status, detailed_status, description, source)
    select id, 'open', 'submitted', 'Request received', 'citizen' from new_request`
}
