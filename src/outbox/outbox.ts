/**
 * The outbox: a queue in the database. Events are enqueued in the same transaction as the
 * change they describe, so they exist exactly when the change does; any number of workers, in
 * any number of instances, claim them with FOR UPDATE SKIP LOCKED and record each attempt.
 * This module is the queue alone — enqueue, claim, complete, retry, dead-letter, hold. What an
 * event says is the enqueuer's business (domain/work-orders/events.ts); how it is sent, the
 * dispatcher's (integrations/webhooks/dispatcher.ts); what a failure means for its
 * destination, the destination's (domain/departments/delivery-policy.ts).
 *
 * A row's destination is a department's endpoint: rows wait while it is disabled or has no
 * URL. Rows of one work order go out in commit order: a row is claimable only when no earlier
 * row of its work order is still pending or failed. A worker that dies mid-delivery leaves its
 * rows locked; they are claimable again once the lock is older than the lock timeout.
 */
import type { SQL } from 'drizzle-orm'
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../db/database.js'

/** NOTIFY channel that wakes the dispatchers. */
export const OUTBOX_CHANNEL = 'open311_outbox'

/**
 * The insert of the rows `rows` selects — (event_id, department_id, work_order_id, event_type,
 * payload), in that order — returning their event ids: a step of a larger statement, whose
 * caller wakes the dispatchers (pg_notify on OUTBOX_CHANNEL) when it wrote any.
 */
export function outboxInsert(rows: SQL): SQL {
  return sql`insert into outbox (event_id, department_id, work_order_id, event_type, payload)
    ${rows}
    returning event_id`
}

/**
 * Enqueues the rows `rows` selects (see outboxInsert) in the caller's transaction, and wakes the
 * dispatchers at commit. Returns the event ids, in the order inserted.
 */
export async function enqueue(tx: Db, rows: SQL): Promise<string[]> {
  const inserted = await queryRows<{ event_id: string }>(
    tx,
    sql`with event as (${outboxInsert(rows)})
        select event_id, pg_notify(${OUTBOX_CHANNEL}, '') from event`,
  )
  return inserted.map((row) => row.event_id)
}

/** Wakes the dispatchers now (after rows were put back in the queue). */
export async function wakeDispatchers(db: Db): Promise<void> {
  await db.execute(sql`select pg_notify(${OUTBOX_CHANNEL}, '')`)
}

export interface ClaimedRow {
  id: number
  event_id: string
  department_id: number
  payload: unknown
  /** Counting the attempt this claim starts. */
  attempts: number
  created_at: string | Date
  webhook_url: string
}

/** Claims up to `batchSize` due rows for `workerId`, counting an attempt on each. */
export async function claimDue(db: Db, workerId: string, now: Date, batchSize: number, lockTimeoutMs: number): Promise<ClaimedRow[]> {
  const staleBefore = new Date(now.getTime() - lockTimeoutMs).toISOString()
  // `now` has millisecond precision, next_attempt_at microsecond: an event stamped within the
  // current millisecond is due. Otherwise the wake-up that its own commit's NOTIFY causes could
  // find it "in the future" and leave it to the next poll.
  const dueBefore = new Date(now.getTime() + 1).toISOString()
  return queryRows<ClaimedRow>(
    db,
    sql`update outbox o set locked_at = ${now.toISOString()}, locked_by = ${workerId}, attempts = o.attempts + 1
        from departments d
        where d.id = o.department_id and o.id in (
          select c.id from outbox c
          join departments cd on cd.id = c.department_id
          where c.state = 'pending' and c.next_attempt_at < ${dueBefore}
            and (c.locked_at is null or c.locked_at < ${staleBefore})
            and cd.enabled and cd.webhook_url is not null
            and not exists (
              select 1 from outbox e
              where e.work_order_id = c.work_order_id and e.id < c.id and e.state in ('pending', 'failed'))
          order by c.next_attempt_at, c.id
          limit ${batchSize}
          for update of c skip locked)
        returning o.id, o.event_id, o.department_id, o.payload, o.attempts, o.created_at, d.webhook_url`,
  )
}

/**
 * Records a batch's deliveries in one statement (per-row updates would cap throughput), for
 * the rows `workerId` still holds: one taken over after a lock timeout belongs to another.
 * Returns the rows recorded.
 */
export async function completeDelivered(
  db: Db,
  workerId: string,
  now: Date,
  delivered: { id: number; status: number }[],
): Promise<{ id: number; department_id: number }[]> {
  if (delivered.length === 0) return []
  return queryRows<{ id: number; department_id: number }>(
    db,
    sql`update outbox o set state = 'delivered', delivered_at = ${now.toISOString()}, locked_at = null, locked_by = null,
                            last_status = v.status, last_error = null
        from jsonb_to_recordset(${JSON.stringify(delivered)}::jsonb) as v(id bigint, status int)
        where o.id = v.id and o.locked_by = ${workerId}
        returning o.id, o.department_id`,
  )
}

export interface AttemptFailure {
  status: number | null
  error: string
}

/*
 * The three below change a row only while `workerId` still holds it — a late failure must not
 * undo another worker's delivery after a lock takeover — and say whether it did.
 */

/** Releases a failed row to be tried again at `at`. */
export async function retryLater(tx: Db, workerId: string, id: number, at: Date, failure: AttemptFailure): Promise<boolean> {
  return held(
    tx,
    sql`update outbox set next_attempt_at = ${at.toISOString()}, locked_at = null, locked_by = null,
        last_status = ${failure.status}, last_error = ${failure.error}
        where id = ${id} and locked_by = ${workerId} returning id`,
  )
}

/** Dead-letters a row that has no attempt left: it stays visible (state `failed`) and can be replayed. */
export async function deadLetter(tx: Db, workerId: string, id: number, now: Date, failure: AttemptFailure): Promise<boolean> {
  return held(
    tx,
    sql`update outbox set state = 'failed', failed_at = ${now.toISOString()}, locked_at = null, locked_by = null,
        last_status = ${failure.status}, last_error = ${failure.error}
        where id = ${id} and locked_by = ${workerId} returning id`,
  )
}

/** Releases a row without counting the attempt: it waits, pending, until its destination is open again. */
export async function holdForDestination(tx: Db, workerId: string, id: number, failure: AttemptFailure): Promise<boolean> {
  return held(
    tx,
    sql`update outbox set locked_at = null, locked_by = null, attempts = attempts - 1,
        last_status = ${failure.status}, last_error = ${failure.error}
        where id = ${id} and locked_by = ${workerId} returning id`,
  )
}

async function held(tx: Db, update: SQL): Promise<boolean> {
  return (await queryRows<{ id: number }>(tx, update)).length > 0
}

export interface OutboxBacklog {
  /** Events waiting to be delivered: due, waiting for a retry, or held while their endpoint is disabled. */
  pending: number
  /** Seconds since the oldest pending event was enqueued; 0 with none pending. */
  oldestPendingAgeSeconds: number
  /** Dead letters: events that used up their attempts and wait for a replay. */
  deadLettered: number
}

/**
 * The queue's state as every instance sees it (for /metrics): one statement over the two
 * partial indexes (pending, failed), so its cost follows the backlog, not the table's history.
 * A replayed dead letter is pending again with its first enqueue time: it counts as old.
 */
export async function outboxBacklog(db: Db): Promise<OutboxBacklog> {
  const [row] = await queryRows<{ pending: number; oldest_age: number; dead_lettered: number }>(
    db,
    sql`select count(*)::int as pending,
               coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as oldest_age,
               (select count(*)::int from outbox where state = 'failed') as dead_lettered
        from outbox where state = 'pending'`,
  )
  return { pending: row!.pending, oldestPendingAgeSeconds: Math.max(0, row!.oldest_age), deadLettered: row!.dead_lettered }
}
