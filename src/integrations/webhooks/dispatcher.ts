/**
 * Outbound delivery: claims due outbox rows with FOR UPDATE SKIP LOCKED (any number of
 * workers, in any number of instances, never claim a row twice per attempt), POSTs each as a
 * signed Standard Webhooks message, and records the outcome.
 *
 * - Only 2xx is success; redirects are never followed (undici's request() does not follow them).
 * - Failures retry on the schedule in retry-policy.ts; after the last attempt the row is
 *   dead-lettered (`failed`), stays visible and can be replayed.
 * - 410 Gone disables the department's endpoint at once; continuous failure for
 *   WEBHOOK_DISABLE_AFTER_DAYS disables it too. Both raise an operator alert.
 * - A delivered work_order.created moves its work order to `sent` (domain/work-orders/mark-sent.ts).
 * - Events of one work order go out in commit order: a row is claimable only when no earlier
 *   row of its work order is still pending or failed.
 * - A worker that dies mid-delivery leaves its rows locked; they are claimable again once the
 *   lock is older than the lock timeout.
 */
import { sql } from 'drizzle-orm'
import { request } from 'undici'
import type { Agent } from 'undici'
import { type Db, queryRows, toDate } from '../../db/database.js'
import { liveSecrets } from '../../domain/departments/departments.js'
import { markWorkOrdersSent } from '../../domain/work-orders/mark-sent.js'
import type { SecretBox } from './secret-box.js'
import { parseRetryAfter, retryDelayMs } from './retry-policy.js'
import { signatureHeaders } from './standard-webhooks.js'

export interface DispatcherOptions {
  db: Db
  secretBox: SecretBox | null
  agent: Agent
  workerId: string
  timeoutMs: number
  disableAfterDays: number
  /** The clock; tests move it to walk through a long outage. */
  now?: () => Date
  batchSize?: number
  /** How long a claimed row stays locked before another worker may take it. */
  lockTimeoutMs?: number
}

interface ClaimedRow {
  id: number
  event_id: string
  department_id: number
  payload: unknown
  attempts: number
  created_at: string | Date
  webhook_url: string
}

type Outcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'gone'; status: number }
  | { kind: 'failed'; status: number | null; error: string; retryAfterMs: number | null; throttled: boolean }

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

async function send(row: ClaimedRow, options: DispatcherOptions, now: Date, secrets: string[] | Error): Promise<Outcome> {
  const body = JSON.stringify(row.payload)
  if (secrets instanceof Error) {
    return { kind: 'failed', status: null, error: `signing secrets unavailable: ${secrets.message}`.slice(0, 500), retryAfterMs: null, throttled: false }
  }
  // Never send unsigned: a department could not tell our events from anyone's.
  if (secrets.length === 0) {
    return { kind: 'failed', status: null, error: 'no signing secret available (is SECRETS_KEY set?)', retryAfterMs: null, throttled: false }
  }
  try {
    const response = await request(row.webhook_url, {
      method: 'POST',
      dispatcher: options.agent,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'open311-server webhooks',
        ...signatureHeaders(secrets, row.event_id, Math.floor(now.getTime() / 1000), body),
      },
      body,
    })
    await response.body.dump()
    const status = response.statusCode
    if (status >= 200 && status < 300) return { kind: 'delivered', status }
    if (status === 410) return { kind: 'gone', status }
    return {
      kind: 'failed',
      status,
      error: `HTTP ${status}`,
      retryAfterMs: parseRetryAfter(response.headers['retry-after'], now),
      throttled: status === 429,
    }
  } catch (err) {
    const e = err as { code?: string; message?: string }
    const timedOut = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT'
    return { kind: 'failed', status: null, error: `${e.code ?? 'error'}: ${e.message ?? String(err)}`.slice(0, 500), retryAfterMs: null, throttled: timedOut }
  }
}

/** Claims one batch of due deliveries and delivers it; returns how many were claimed. */
export async function deliverDue(options: DispatcherOptions): Promise<number> {
  const now = (options.now ?? (() => new Date()))()
  const rows = await claimDue(options.db, options.workerId, now, options.batchSize ?? 100, options.lockTimeoutMs ?? 6 * options.timeoutMs)
  if (rows.length === 0) return 0
  // One read (and decryption) of the signing secrets per department in the batch, not per row.
  // A department whose secrets cannot be read fails only its own rows: the rest of the batch is
  // still sent and recorded, not left locked to be sent again after the lock timeout.
  const secretsOf = new Map<number, Promise<string[] | Error>>()
  for (const departmentId of new Set(rows.map((row) => Number(row.department_id)))) {
    secretsOf.set(
      departmentId,
      liveSecrets(options.db, options.secretBox, departmentId, now).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    )
  }
  const outcomes = await Promise.all(rows.map(async (row) => send(row, options, now, await secretsOf.get(Number(row.department_id))!)))
  const delivered = rows.flatMap((row, i) => {
    const outcome = outcomes[i]!
    return outcome.kind === 'delivered' ? [{ id: row.id, status: outcome.status, departmentId: Number(row.department_id) }] : []
  })
  if (delivered.length > 0) {
    // One statement for the whole batch: per-row updates would cap throughput.
    const done = JSON.stringify(delivered.map(({ id, status }) => ({ id, status })))
    // Only rows this worker still holds: one taken over after a lock timeout belongs to another.
    const recorded = await queryRows<{ id: number; department_id: number }>(
      options.db,
      sql`update outbox o set state = 'delivered', delivered_at = ${now.toISOString()}, locked_at = null, locked_by = null,
                              last_status = v.status, last_error = null
          from jsonb_to_recordset(${done}::jsonb) as v(id bigint, status int)
          where o.id = v.id and o.locked_by = ${options.workerId}
          returning o.id, o.department_id`,
    )
    if (recorded.length > 0) {
      const departmentIds = [...new Set(recorded.map((r) => Number(r.department_id)))]
      await options.db.execute(sql`update departments set failing_since = null where id in ${departmentIds} and failing_since is not null`)
      await markWorkOrdersSent(options.db, recorded.map((r) => Number(r.id)))
    }
  }
  for (const [i, row] of rows.entries()) {
    const outcome = outcomes[i]!
    if (outcome.kind === 'gone') await handleGone(options, row, now)
    else if (outcome.kind === 'failed') await handleFailure(options, row, outcome, now)
  }
  return rows.length
}

async function handleGone(options: DispatcherOptions, row: ClaimedRow, now: Date) {
  // The attempt does not count: the event waits, pending, until the endpoint is fixed and re-enabled.
  await options.db.transaction(async (tx) => {
    const held = await queryRows<{ id: number }>(
      tx,
      sql`update outbox set locked_at = null, locked_by = null, attempts = attempts - 1, last_status = 410,
          last_error = 'endpoint answered 410 Gone' where id = ${row.id} and locked_by = ${options.workerId} returning id`,
    )
    if (held.length === 0) return
    await disableDepartment(tx, row.department_id, `the endpoint answered 410 Gone at ${now.toISOString()}`)
  })
}

async function handleFailure(options: DispatcherOptions, row: ClaimedRow, outcome: Extract<Outcome, { kind: 'failed' }>, now: Date) {
  const delay = retryDelayMs(row.attempts, {
    retryAfterMs: outcome.retryAfterMs,
    throttled: outcome.throttled,
    elapsedMs: now.getTime() - toDate(row.created_at).getTime(),
  })
  await options.db.transaction(async (tx) => {
    // Only while this worker still holds the row: a late failure must not undo another
    // worker's delivery after a lock takeover.
    const held = await queryRows<{ id: number }>(
      tx,
      delay === null
        ? sql`update outbox set state = 'failed', failed_at = ${now.toISOString()}, locked_at = null, locked_by = null,
              last_status = ${outcome.status}, last_error = ${outcome.error}
              where id = ${row.id} and locked_by = ${options.workerId} returning id`
        : sql`update outbox set next_attempt_at = ${new Date(now.getTime() + delay).toISOString()}, locked_at = null,
              locked_by = null, last_status = ${outcome.status}, last_error = ${outcome.error}
              where id = ${row.id} and locked_by = ${options.workerId} returning id`,
    )
    if (held.length === 0) return
    if (delay === null) {
      await raiseAlert(tx, 'delivery_dead_lettered', row.department_id, `event ${row.event_id} failed ${row.attempts} attempts (last: ${outcome.error}); replay it once the department is back`)
    }
    const [department] = await queryRows<{ failing_since: string | null }>(
      tx,
      sql`update departments set failing_since = coalesce(failing_since, ${now.toISOString()}) where id = ${row.department_id}
          returning failing_since`,
    )
    const failingFor = now.getTime() - toDate(department!.failing_since!).getTime()
    if (failingFor >= options.disableAfterDays * 86_400_000) {
      await disableDepartment(tx, row.department_id, `deliveries have failed continuously for ${options.disableAfterDays} days`)
    }
  })
}

async function disableDepartment(tx: Db, departmentId: number, reason: string) {
  const disabled = await queryRows<{ code: string }>(
    tx,
    sql`update departments set enabled = false, disabled_reason = ${reason} where id = ${departmentId} and enabled returning code`,
  )
  if (disabled.length > 0) await raiseAlert(tx, 'endpoint_disabled', departmentId, `department ${disabled[0]!.code} disabled: ${reason}`)
}

async function raiseAlert(tx: Db, kind: string, departmentId: number, message: string) {
  await tx.execute(sql`insert into operator_alerts (kind, department_id, message) values (${kind}, ${departmentId}, ${message})`)
}
