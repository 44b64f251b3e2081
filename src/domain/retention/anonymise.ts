/**
 * Anonymising a request's reporter (docs/retention.md): every copy of the reporter's personal
 * data goes, the request and its public history stay. The copies, and only these, are:
 *
 *   request_reporters    email, first and last name, phone, device id, account id: cleared,
 *                        the row kept with `anonymised_at` (the mark that it was done)
 *   outbox               `data.reporter` of the request's events (departments with
 *                        receives_contact), delivered or not: removed from the payload
 *   idempotency_keys     the stored first answer (it carries account_id) and the fingerprint
 *                        (a hash of the whole submission): the record is deleted
 *
 * Nothing else holds them: rate-limit counters are keyed by client IP and API key, never by a
 * reporter; inbound events keep only the department's event id; photos are stored re-encoded
 * without metadata (media/photos.ts); audit entries never store these fields (audit.ts masks
 * them). The description, address and attribute answers are the public report and stay.
 *
 * No column of service_requests, work_orders or request_updates is written, so the open-data
 * feeds see no change and no report figure moves (the triggers of migrations 0009 and 0015
 * watch those tables only). Each anonymised request gets an audit entry in the same transaction.
 */
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { type AuditActor, type AuditEntry, changedFields, recordAudit } from '../audit/audit.js'
import { invalid, notFound } from '../errors.js'

/** The reporter's fields as the API spells them: what an audit entry says was cleared (masked). */
const REPORTER_FIELDS = ['email', 'first_name', 'last_name', 'phone', 'device_id', 'account_id'] as const

export interface AnonymisedRequest {
  service_request_id: string
  jurisdiction_id: string
  /** Reporter fields that held a value and were cleared. */
  cleared_fields: string[]
  /** Outbox payloads the reporter's contact was removed from. */
  outbox_payloads: number
  /** Idempotency records deleted. */
  idempotency_records: number
  /** False when it had been anonymised before: nothing was left to remove. */
  anonymised: boolean
}

/** Why: the jurisdiction's policy (days after closing) or an operator's erasure. */
export type AnonymiseBasis = { kind: 'policy'; days: number } | { kind: 'erasure' }

interface LockedRequest {
  id: number
  public_id: string
  jurisdiction_id: string
  anonymised_at: string | Date | null
  email: string | null
  first_name: string | null
  last_name: string | null
  phone: string | null
  device_id: string | null
  account_id: string | null
}

/**
 * Anonymises the requests `ids` (service_requests.id) in the caller's transaction `tx`, with an
 * audit entry for each that had anything left to remove (each one named by an operator gets
 * one whatever: the act is the record). The requests, then their work orders, are locked first,
 * so an event written concurrently either committed before (and is scrubbed here) or waits and
 * reads the cleared reporter.
 */
export async function anonymiseRequests(tx: Db, ids: number[], actor: AuditActor, basis: AnonymiseBasis): Promise<AnonymisedRequest[]> {
  if (ids.length === 0) return []
  const idList = sql`${sql.param(ids)}::bigint[]`
  // Locked first, read after: a statement that waits for a row lock reads the other rows as its
  // snapshot had them, so reading the reporter in the locking statement could report (and
  // audit) values another erasure cleared while this one waited.
  await tx.execute(sql`select id from service_requests where id = any(${idList}) order by id for update`)
  const locked = await queryRows<LockedRequest>(
    tx,
    sql`select sr.id, sr.public_id, sr.jurisdiction_id, rr.anonymised_at,
               rr.email, rr.first_name, rr.last_name, rr.phone, rr.device_id, rr.account_id
        from service_requests sr left join request_reporters rr on rr.request_id = sr.id
        where sr.id = any(${idList})
        order by sr.id`,
  )
  if (locked.length === 0) return []
  const lockedIds = sql`${sql.param(locked.map((r) => Number(r.id)))}::bigint[]`
  // The request before its work orders, as lockRequest and the transitions take them.
  await tx.execute(sql`select id from work_orders where request_id = any(${lockedIds}) order by id for update`)

  // Cleared; a request that had no row gets one that says it was done (an operator asked).
  await tx.execute(sql`
    insert into request_reporters (request_id, anonymised_at)
    select unnest(${lockedIds}), now()
    on conflict (request_id) do update
      set email = null, first_name = null, last_name = null, phone = null, device_id = null, account_id = null,
          anonymised_at = coalesce(request_reporters.anonymised_at, now())`)
  const outbox = await queryRows<{ request_id: number; n: number }>(
    tx,
    sql`with scrubbed as (
          update outbox o set payload = o.payload #- '{data,reporter}'
          from work_orders w
          where w.id = o.work_order_id and w.request_id = any(${lockedIds}) and o.payload -> 'data' ? 'reporter'
          returning w.request_id)
        select request_id, count(*)::int as n from scrubbed group by request_id`,
  )
  // The table holds no request id: its answers name the request (or its token). It is small
  // (pruned after RETENTION_IDEMPOTENCY_HOURS), so a scan of it per batch is cheap.
  const idempotency = await queryRows<{ request_id: number; n: number }>(
    tx,
    sql`with gone as (
          delete from idempotency_keys k
          using service_requests sr left join request_tokens t on t.request_id = sr.id
          where sr.id = any(${lockedIds})
            and (k.response_body @> jsonb_build_array(jsonb_build_object('service_request_id', sr.public_id))
                 or (t.token is not null and k.response_body @> jsonb_build_array(jsonb_build_object('token', t.token))))
          returning sr.id as request_id)
        select request_id, count(*)::int as n from gone group by request_id`,
  )
  const countOf = (rows: { request_id: number; n: number }[], id: number) => Number(rows.find((r) => Number(r.request_id) === id)?.n ?? 0)

  const results: AnonymisedRequest[] = []
  const audit: AuditEntry[] = []
  for (const row of locked) {
    const id = Number(row.id)
    const before = Object.fromEntries(REPORTER_FIELDS.map((f) => [f, row[f]]))
    const cleared = REPORTER_FIELDS.filter((f) => row[f] !== null)
    const result: AnonymisedRequest = {
      service_request_id: row.public_id,
      jurisdiction_id: row.jurisdiction_id,
      cleared_fields: cleared,
      outbox_payloads: countOf(outbox, id),
      idempotency_records: countOf(idempotency, id),
      anonymised: row.anonymised_at === null || cleared.length > 0,
    }
    results.push(result)
    const removedAnything = cleared.length + result.outbox_payloads + result.idempotency_records > 0
    if (!removedAnything && basis.kind === 'policy') continue
    audit.push({
      action: 'service_request.anonymised',
      entityType: 'service_request',
      entityId: row.public_id,
      requestId: id,
      jurisdictionId: row.jurisdiction_id,
      changes: {
        ...changedFields(before, Object.fromEntries(REPORTER_FIELDS.map((f) => [f, null]))),
        ...(result.outbox_payloads ? { outbox_reporter_copies: { before: result.outbox_payloads, after: 0 } } : {}),
        ...(result.idempotency_records ? { idempotency_records: { before: result.idempotency_records, after: 0 } } : {}),
        basis: { before: null, after: basis.kind === 'policy' ? `policy: ${basis.days} days after closing` : 'erasure' },
      },
    })
  }
  await recordAudit(tx, actor, audit, { keepUnchanged: true })
  return results
}

/** The right to erasure for one request: its reporter's data, wherever it is. */
export async function anonymiseRequest(db: Db, jurisdictionId: string, publicId: string, actor: AuditActor): Promise<AnonymisedRequest> {
  return db.transaction(async (tx) => {
    const [found] = await queryRows<{ id: number }>(
      tx,
      sql`select id from service_requests where jurisdiction_id = ${jurisdictionId} and public_id = ${publicId}`,
    )
    if (!found) throw notFound(`service request ${publicId} not found`)
    const [result] = await anonymiseRequests(tx, [Number(found.id)], actor, { kind: 'erasure' })
    return result!
  })
}

/** Emails are compared as people type them: case and surrounding spaces aside. */
const normalisedEmail = (email: string) => email.trim().toLowerCase()

/**
 * The right to erasure for one reporter, found by email: every request of the jurisdiction they
 * reported with it. Once done, nothing links them to the requests any more, so a second call
 * finds none. Scans request_reporters (no index on email: one more index write per POST for a
 * rare operation); fine at a few million rows, in one transaction.
 */
export async function anonymiseReporter(db: Db, jurisdictionId: string, email: string, actor: AuditActor): Promise<AnonymisedRequest[]> {
  const wanted = normalisedEmail(email)
  if (!wanted.includes('@')) throw invalid('email: is not an email address')
  return db.transaction(async (tx) => {
    const found = await queryRows<{ id: number }>(
      tx,
      sql`select sr.id from request_reporters rr join service_requests sr on sr.id = rr.request_id
          where sr.jurisdiction_id = ${jurisdictionId} and lower(btrim(rr.email)) = ${wanted}
          order by sr.id`,
    )
    return anonymiseRequests(tx, found.map((r) => Number(r.id)), actor, { kind: 'erasure' })
  })
}
