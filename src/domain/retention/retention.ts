/**
 * The retention run (docs/retention.md): reporters of requests closed longer ago than their
 * jurisdiction's `anonymise_after_days` are anonymised (anonymise.ts), and the operational
 * copies past their period are deleted — delivered and cancelled outbox rows, inbound event
 * ids, idempotency records, rate-limit counters. Undelivered outbox rows (pending, failed:
 * waiting for a retry or an operator's replay) are never pruned.
 *
 * Run by the `retention` worker of every instance and by `npm run cli -- retention run`. Work is
 * taken in batches, each its own transaction, rows claimed with FOR UPDATE SKIP LOCKED: two
 * instances running at once split the work and never do a row twice. A dry run counts the same
 * rows and changes nothing.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { AppConfig } from '../../config.js'
import { type Db, queryRows } from '../../db/database.js'
import { type AuditActor, recordAudit, systemActor } from '../audit/audit.js'
import { anonymiseRequests } from './anonymise.js'

/** Who the worker's changes are recorded as. */
export const RETENTION_ACTOR: AuditActor = systemActor('retention')

export type RetentionPeriods = AppConfig['retention']

export interface RetentionOptions {
  periods: RetentionPeriods
  /** The run's clock: tests pass a fake one; by default the database's, one clock for every instance. */
  now?: Date
  batchSize?: number
  dryRun?: boolean
  actor?: AuditActor
  /** Called after each full batch, when more may follow (CLI progress lines on large runs). */
  progress?: (step: RetentionStep, doneSoFar: number) => void
  /** Checked before each batch: true ends the run there (the worker's instance is stopping). */
  shouldStop?: () => boolean
}

/**
 * Steps whose rows belong to a jurisdiction (a request's, a department's); the others —
 * idempotency records and rate-limit counters, kept per key and per address — are the server's.
 */
export const JURISDICTION_STEPS = ['anonymised_requests', 'delivered_outbox', 'inbound_events'] as const satisfies readonly RetentionStep[]

export const RETENTION_STEPS = ['anonymised_requests', 'delivered_outbox', 'inbound_events', 'idempotency_records', 'rate_limit_counters'] as const
export type RetentionStep = (typeof RETENTION_STEPS)[number]
export type RetentionSummary = Record<RetentionStep, number>

const DEFAULT_BATCH = 500

/**
 * What a run would do for one jurisdiction (GET /admin/v1/retention): its own steps' counts
 * (JURISDICTION_STEPS: its requests, its departments' rows), and the server's rows only with
 * `serverRows` — a city's operators on a shared server see their own figures, not the others'.
 */
export async function previewRetention(
  db: Db,
  options: { jurisdictionId: string; periods: RetentionPeriods; serverRows: boolean },
): Promise<Record<RetentionStep, number | null>> {
  const counts = await Promise.all(
    RETENTION_STEPS.map(async (step) => {
      const own = (JURISDICTION_STEPS as readonly RetentionStep[]).includes(step)
      if (!own && !options.serverRows) return [step, null] as const
      const rows = selection(step, sql`now()`, options.periods, own ? options.jurisdictionId : undefined)
      const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from (${rows}) s`)
      return [step, Number(row?.n ?? 0)] as const
    }),
  )
  return Object.fromEntries(counts) as Record<RetentionStep, number | null>
}

/** One run of every step to the end; the counts are what was (or, dry, would be) done. */
export async function runRetention(db: Db, options: RetentionOptions): Promise<RetentionSummary> {
  const now = options.now ? sql`${options.now.toISOString()}::timestamptz` : sql`now()`
  const batchSize = options.batchSize ?? DEFAULT_BATCH
  const summary = Object.fromEntries(RETENTION_STEPS.map((s) => [s, 0])) as RetentionSummary
  for (const step of RETENTION_STEPS) {
    if (options.shouldStop?.()) break
    const rows = selection(step, now, options.periods)
    if (options.dryRun) {
      const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from (${rows}) s`)
      summary[step] = Number(row?.n ?? 0)
      continue
    }
    for (;;) {
      const done = await runBatch(db, step, rows, batchSize, options.actor ?? RETENTION_ACTOR)
      summary[step] += done
      if (done < batchSize || options.shouldStop?.()) break
      // A full batch: more to come, a large run; say how far it is.
      options.progress?.(step, summary[step])
    }
  }
  return summary
}

/**
 * What each step works on, as a select of the rows' keys: the same rows counted by a dry run
 * and claimed by a real one.
 */
function selection(step: RetentionStep, now: SQL, periods: RetentionPeriods, jurisdictionId?: string): SQL {
  // Only for counting one jurisdiction's share (previewRetention); runs take every jurisdiction's.
  const inJurisdiction = (departmentId: string) =>
    jurisdictionId === undefined ? sql`` : sql`and ${sql.raw(departmentId)} in (select id from departments where jurisdiction_id = ${jurisdictionId})`
  switch (step) {
    case 'anonymised_requests':
      // Reporters not anonymised yet (request_reporters_not_anonymised_idx) whose request closed
      // longer ago than the policy. A request without a reporter row has no personal data: the
      // copies (outbox, idempotency answer) are made from that row.
      return sql`select sr.id, j.anonymise_after_days as days from request_reporters rr
                 join service_requests sr on sr.id = rr.request_id
                 join jurisdictions j on j.id = sr.jurisdiction_id
                 where rr.anonymised_at is null
                   and j.anonymise_after_days is not null
                   and sr.closed_at < ${now} - make_interval(days => j.anonymise_after_days)
                   ${jurisdictionId === undefined ? sql`` : sql`and sr.jurisdiction_id = ${jurisdictionId}`}`
    case 'delivered_outbox':
      // Cancelled rows were never sent (their work order went away first): dated by creation.
      return sql`select id from outbox
                 where ((state = 'delivered' and delivered_at < ${now} - make_interval(days => ${periods.deliveredOutboxDays}))
                    or (state = 'cancelled' and created_at < ${now} - make_interval(days => ${periods.deliveredOutboxDays})))
                   ${inJurisdiction('department_id')}`
    case 'inbound_events':
      return sql`select department_id, event_id from inbound_events
                 where received_at < ${now} - make_interval(days => ${periods.inboundEventsDays}) ${inJurisdiction('department_id')}`
    case 'idempotency_records':
      return sql`select api_key_id, key from idempotency_keys
                 where created_at < ${now} - make_interval(hours => ${periods.idempotencyHours})`
    case 'rate_limit_counters':
      return sql`select key, window_start from rate_limit_counters
                 where window_start < ${now} - make_interval(hours => ${periods.rateLimitHours})`
  }
}

/** One batch of a step in its own transaction; returns how many rows it did. */
async function runBatch(db: Db, step: RetentionStep, rows: SQL, batchSize: number, actor: AuditActor): Promise<number> {
  return db.transaction(async (tx) => {
    const claimed = sql`${rows} limit ${batchSize} for update skip locked`
    switch (step) {
      case 'anonymised_requests': {
        // `for update of sr`: the jurisdiction row is only read.
        const due = await queryRows<{ id: number; days: number }>(tx, sql`${rows} order by sr.id limit ${batchSize} for update of sr skip locked`)
        const byDays = new Map<number, number[]>()
        for (const r of due) byDays.set(Number(r.days), [...(byDays.get(Number(r.days)) ?? []), Number(r.id)])
        for (const [days, ids] of byDays) await anonymiseRequests(tx, ids, actor, { kind: 'policy', days })
        return due.length
      }
      case 'delivered_outbox':
        return pruned(tx, actor, step, sql`delete from outbox where id in (${claimed}) returning 1`)
      case 'inbound_events':
        return pruned(tx, actor, step, sql`delete from inbound_events where (department_id, event_id) in (${claimed}) returning 1`)
      case 'idempotency_records':
        return pruned(tx, actor, step, sql`delete from idempotency_keys where (api_key_id, key) in (${claimed}) returning 1`)
      case 'rate_limit_counters':
        return pruned(tx, actor, step, sql`delete from rate_limit_counters where (key, window_start) in (${claimed}) returning 1`)
    }
  })
}

/** A batch's deletes and, in their transaction, the audit entry saying how many (none when none). */
async function pruned(tx: Db, actor: AuditActor, step: RetentionStep, statement: SQL): Promise<number> {
  const deleted = (await queryRows<unknown>(tx, statement)).length
  if (deleted > 0) {
    await recordAudit(tx, actor, { action: 'retention.pruned', entityType: 'retention', entityId: step, changes: { [step]: { before: deleted, after: 0 } } })
  }
  return deleted
}
