/**
 * Submitting a service request: the one place a new request is written. `submitServiceRequest`
 * writes the request and everything that comes with it (routing, reporter, history, token, work
 * orders, their events) as named steps of one statement — a new field at creation (a due date,
 * a channel, a duplicate link) is one more column or step here.
 */
import { type SQL, sql } from 'drizzle-orm'
import { type Db, preparedRows, queryRows } from '../../db/database.js'
import { invalid } from '../errors.js'
import { actorColumns, type AuditActor, changedFields } from '../audit/audit.js'
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
import {
  type DuplicateSearch,
  duplicateCandidates,
  duplicateNotice,
  duplicateSearchOf,
  MAX_POSSIBLE_DUPLICATES,
  type PossibleDuplicate,
  possibleDuplicatesJson,
} from './duplicate-search.js'
import type { Reporter, Submission } from './submission.js'
import { newToken, TOKEN_PENDING_CHANNEL, tokenInsert } from './tokens.js'

export interface CreatedRequest {
  serviceRequestId: string
  token?: string
  serviceNotice: string | null
  accountId: string | null
  /** What the duplicate search found (services whose policy is not off, requests with a point), nearest first. */
  possibleDuplicates: PossibleDuplicate[]
  /** `link`: the original this request was made a duplicate of. */
  parentServiceRequestId: string | null
}

export interface NewRequest {
  jurisdiction: Jurisdiction
  service: StoredService
  submission: Submission
  apiKeyId?: number
  /** Who submitted it, for the audit trail: the client app's key (auth.ts auditActorOf). */
  actor: AuditActor
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
 * (media-store.ts), only when there are any: a POST without them runs the statement it always
 * did. So is the duplicate search (duplicate-search.ts), only for a service with a policy and a
 * report with a point: `suggest` adds the candidates to the answer, `link` makes the row a
 * duplicate of the nearest (locked FOR SHARE until commit) and opens no work order. A new field
 * at creation is a column in requestRow or one more step here. The token acceptor and the dispatchers are woken by the
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
 * The audit entry (docs/audit.md) is one more step, `audited`: no round trip of its own.
 */
export async function submitServiceRequest(db: Db, input: NewRequest): Promise<CreatedRequest> {
  const { submission, photos = [] } = input
  const token = input.service.type === 'realtime' ? null : newToken()
  // ST_MakePoint is strict: no lat/long gives a null point, so one statement text serves both cases.
  const point = sql`ST_SetSRID(ST_MakePoint(${submission.long ?? null}::float8, ${submission.lat ?? null}::float8), 4326)::geography`
  // Only a service with a policy and a request with a point search: any other POST runs the
  // statement it always did, without the search's steps (docs/benchmarks.md, "Duplicates at intake").
  const search = submission.lat !== undefined && submission.long !== undefined ? duplicateSearchOf(input.service) : null
  const linking = search?.policy === 'link'
  const candidates = search
    ? sql`candidates as (${duplicateCandidates({
        jurisdictionId: input.jurisdiction.id,
        serviceId: input.service.id,
        point,
        search,
        asOf: sql`now()`,
        limit: linking ? 1 : MAX_POSSIBLE_DUPLICATES,
        lock: linking,
      })}),`
    : sql``
  // A linked request opens no work order: the original's crew handles the problem.
  const toOpen = linking ? sql`(select * from new_request where parent_request_id is null)` : sql`new_request`
  const [row] = await preparedRows<{
    public_id: string
    service_notice: string | null
    possible_duplicates?: PossibleDuplicate[] | null
    parent_service_request_id?: string | null
  }>(
    db,
    sql`with ${candidates} routed as (${routedDepartments(input.service.id, point)}),
          new_request as (${requestRow(input, point, linking ? search : null)}),
          reporter as (${reporterRow(submission.reporter)}),
          first_entry as (${firstHistoryEntry(linking)}),
          issued as (${tokenInsert(token, sql`new_request`)}),
          opened as (${workOrderInsert(toOpen, sql`routed`)}),
          announced as (${outboxInsert(newWorkOrderEventRows({ workOrders: sql`opened`, request: sql`new_request`, reporter: sql`reporter` }))}),
          audited as (${creationAudit(input, linking)})
          ${photos.length > 0 ? sql`, photographed as (${photoInsert(photos, sql`new_request`)})` : sql``}
        select r.public_id,
               ${search && !linking ? sql`coalesce(r.service_notice, ${duplicateNotice(sql`candidates`, search, input.jurisdiction.timeZone)})` : sql`r.service_notice`} as service_notice,
               ${search ? sql`${possibleDuplicatesJson(sql`candidates`, search.hideDistance)} as possible_duplicates,` : sql``}
               ${linking ? sql`(select public_id from candidates) as parent_service_request_id,` : sql``}
               (select pg_notify(${TOKEN_PENDING_CHANNEL}, '') from issued),
               (select pg_notify(${OUTBOX_CHANNEL}, '') where exists (select 1 from announced))
        from new_request r`,
  )
  return {
    serviceRequestId: row!.public_id,
    serviceNotice: row!.service_notice,
    accountId: submission.reporter.accountId ?? null,
    possibleDuplicates: parseList(row!.possible_duplicates),
    parentServiceRequestId: row!.parent_service_request_id ?? null,
    ...(token ? { token } : {}),
  }
}

/** json arrives parsed from both drivers; text only if a driver leaves it so. */
function parseList(value: PossibleDuplicate[] | string | null | undefined): PossibleDuplicate[] {
  if (value === null || value === undefined) return []
  return typeof value === 'string' ? (JSON.parse(value) as PossibleDuplicate[]) : value
}

/**
 * The request row; `agency_responsible` names the routed departments, as Open311 shows them, and
 * `expected_at` is the latest of their service-level due dates until a department gives one.
 * Linking (`link`, a candidate found): the row is a duplicate of the step `candidates`' one, as
 * an operator's marking leaves it (work-orders/duplicates.ts), its notice naming the original;
 * no work order of its own, so no due date.
 */
function requestRow({ jurisdiction, service, submission, apiKeyId, channel }: NewRequest, point: SQL, link: DuplicateSearch | null): SQL {
  const due = sql`(select max(${workOrderDue(sql`now()`, sql`${service.id}::bigint`, sql`id`)}) from routed)`
  const duplicateColumns = link ? sql`, parent_request_id, detailed_status, status_notes, service_notice` : sql``
  const duplicateValues = link
    ? sql`, (select id from candidates), coalesce((select 'duplicate' from candidates), 'submitted'),
          (select 'Duplicate of ' || public_id from candidates), ${duplicateNotice(sql`candidates`, link, jurisdiction.timeZone)}`
    : sql``
  return sql`insert into service_requests (jurisdiction_id, service_id, description, address, address_id, zipcode, location,
                                  media_urls, attributes, channel, submitted_by_key_id, agency_responsible, expected_at${duplicateColumns})
    values (${jurisdiction.id}, ${service.id}::bigint, ${submission.description ?? null}::text, ${submission.addressString ?? null}::text,
            ${submission.addressId ?? null}::text, ${submission.zipcode ?? null}::text, ${point},
            ${sql.param(submission.mediaUrls)}::text[], ${JSON.stringify(submission.attributes)}::jsonb, ${channel}::text,
            ${apiKeyId ?? null}::bigint, (select string_agg(name, ', ' order by id) from routed),
            ${link ? sql`case when exists (select 1 from candidates) then null else ${due} end` : due}${duplicateValues})
    returning *`
}

/**
 * The creation's audit entry, written by the statement itself. What the citizen wrote or where
 * (description, address, location, attributes, photos) and who they are (the reporter's fields)
 * are recorded as given, never with their values: an append-only entry could not be
 * anonymised later, while the request's own rows can (the history keeps the text). The values
 * kept are the request's id and what the server decided: service, channel, status, routing,
 * a duplicate link.
 */
function creationAudit({ actor, service, submission, channel }: NewRequest, linking: boolean): SQL {
  const { reporter } = submission
  const given = changedFields(
    null,
    {
      description: submission.description ?? null,
      address: submission.addressString ?? null,
      address_id: submission.addressId ?? null,
      zipcode: submission.zipcode ?? null,
      location: submission.lat !== undefined && submission.long !== undefined ? 'given' : null,
      attributes: Object.keys(submission.attributes).length > 0 ? 'given' : null,
      media_urls: submission.mediaUrls.length > 0 ? 'given' : null,
      email: reporter.email ?? null,
      first_name: reporter.firstName ?? null,
      last_name: reporter.lastName ?? null,
      phone: reporter.phone ?? null,
      device_id: reporter.deviceId ?? null,
      account_id: reporter.accountId ?? null,
    },
    { mask: ['description', 'address', 'address_id', 'zipcode', 'location', 'attributes', 'media_urls'] },
  )
  const decided = changedFields(null, { service_code: service.service_code, channel, status: 'open' })
  const created = (value: SQL) => sql`jsonb_build_object('before', null, 'after', ${value})`
  const a = actorColumns(actor)
  return sql`insert into audit_events (actor_kind, actor_key_id, actor_department_id, actor_name, action, entity_type, entity_id,
                                     request_id, jurisdiction_id, changes)
    select ${a.actorKind}::text, ${a.actorKeyId}::bigint, ${a.actorDepartmentId}::bigint, ${a.actorName}::text,
           'service_request.created', 'service_request', r.public_id, r.id, r.jurisdiction_id,
           jsonb_build_object('service_request_id', ${created(sql`r.public_id`)},
                              'detailed_status', ${created(sql`r.detailed_status`)})
           || case when r.agency_responsible is null then '{}' else jsonb_build_object('agency_responsible', ${created(sql`r.agency_responsible`)}) end
           ${linking ? sql`|| coalesce((select jsonb_build_object('parent_service_request_id', ${created(sql`public_id`)}) from candidates), '{}')` : sql``}
           || ${JSON.stringify({ ...decided, ...given })}::jsonb
    from new_request r`
}

/** The reporter's personal data, when any was given. */
function reporterRow(reporter: Reporter): SQL {
  return sql`insert into request_reporters (request_id, email, first_name, last_name, phone, device_id, account_id)
    select id, ${reporter.email ?? null}::text, ${reporter.firstName ?? null}::text, ${reporter.lastName ?? null}::text,
           ${reporter.phone ?? null}::text, ${reporter.deviceId ?? null}::text, ${reporter.accountId ?? null}::text
    from new_request where ${Object.keys(reporter).length > 0}::boolean
    returning email, first_name, last_name, phone`
}

/**
 * The first entry of the request's history; a linked request's second says what it duplicates
 * (inserted in this order, so the history lists them so: created_at is the clock per row).
 */
function firstHistoryEntry(linking: boolean): SQL {
  const received = sql`select id, 'open', 'submitted', 'Request received', 'citizen' from new_request`
  if (!linking) return sql`insert into request_updates (request_id, status, detailed_status, description, source) ${received}`
  return sql`insert into request_updates (request_id, status, detailed_status, description, source)
    ${received}
    union all
    select r.id, 'open', 'duplicate', 'Duplicate of ' || c.public_id || ', found when it was reported', 'system'
    from new_request r join candidates c on c.id = r.parent_request_id`
}
