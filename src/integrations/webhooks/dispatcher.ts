/**
 * Outbound delivery: claims due outbox rows (src/outbox/outbox.ts), POSTs each as a signed
 * Standard Webhooks message, and records the outcome in the outbox. What an outcome means for
 * the destination — disabling it, alerting operators, moving work orders — is the policy the
 * caller passes in (domain/departments/delivery-policy.ts), so this module knows nothing of
 * departments.
 *
 * - Only 2xx is success; redirects are never followed (undici's request() does not follow them).
 * - Failures retry on the schedule in retry-policy.ts; after the last attempt the row is
 *   dead-lettered (`failed`), stays visible and can be replayed.
 * - 410 Gone holds the row back without counting the attempt; the policy decides what else.
 */
import { request } from 'undici'
import type { Agent } from 'undici'
import { type Db, toDate } from '../../db/database.js'
import { type AttemptFailure, type ClaimedRow, claimDue, completeDelivered, deadLetter, holdForDestination, retryLater } from '../../outbox/outbox.js'
import { parseRetryAfter, retryDelayMs } from './retry-policy.js'
import { signatureHeaders } from './standard-webhooks.js'

/** What a destination decides about deliveries to it. */
export interface DeliveryPolicy {
  /** The secrets that sign deliveries to this destination at `now`; none means the rows fail unsent. */
  signingSecrets(destinationId: number, now: Date): Promise<string[]>
  /** After a batch's deliveries are recorded. */
  delivered(rows: { id: number; destinationId: number }[], now: Date): Promise<void>
  /** In the transaction that holds a row back because the endpoint answered 410 Gone. */
  gone(tx: Db, destinationId: number, now: Date): Promise<void>
  /** In the transaction that records a failed attempt; `deadLettered` when it was the last. */
  failed(tx: Db, failure: { destinationId: number; eventId: string; attempts: number; error: string; deadLettered: boolean }, now: Date): Promise<void>
}

/**
 * What became of an attempt, once recorded: `failed` will be retried, `dead_lettered` was the
 * last attempt, `gone` (410) holds the event until its endpoint is re-enabled.
 */
export const DELIVERY_OUTCOMES = ['delivered', 'failed', 'dead_lettered', 'gone'] as const
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number]

export interface DispatcherOptions {
  db: Db
  policy: DeliveryPolicy
  /**
   * Told each outcome once it is committed in the outbox, and only for rows this worker still
   * held (one taken over after a lock timeout is the other worker's to tell); for /metrics.
   */
  recorded?: (outcome: DeliveryOutcome, count: number) => void
  agent: Agent
  workerId: string
  timeoutMs: number
  /** The clock; tests move it to walk through a long outage. */
  now?: () => Date
  batchSize?: number
  /** How long a claimed row stays locked before another worker may take it. */
  lockTimeoutMs?: number
}

type Outcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'gone'; status: number }
  | ({ kind: 'failed'; retryAfterMs: number | null; throttled: boolean } & AttemptFailure)

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
  // One read (and decryption) of the signing secrets per destination in the batch, not per row.
  // A destination whose secrets cannot be read fails only its own rows: the rest of the batch is
  // still sent and recorded, not left locked to be sent again after the lock timeout.
  const secretsOf = new Map<number, Promise<string[] | Error>>()
  for (const destinationId of new Set(rows.map((row) => Number(row.department_id)))) {
    secretsOf.set(
      destinationId,
      options.policy.signingSecrets(destinationId, now).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    )
  }
  const outcomes = await Promise.all(rows.map(async (row) => send(row, options, now, await secretsOf.get(Number(row.department_id))!)))
  const delivered = rows.flatMap((row, i) => {
    const outcome = outcomes[i]!
    return outcome.kind === 'delivered' ? [{ id: row.id, status: outcome.status }] : []
  })
  const recorded = await completeDelivered(options.db, options.workerId, now, delivered)
  if (recorded.length > 0) {
    options.recorded?.('delivered', recorded.length)
    await options.policy.delivered(
      recorded.map((r) => ({ id: Number(r.id), destinationId: Number(r.department_id) })),
      now,
    )
  }
  for (const [i, row] of rows.entries()) {
    const outcome = outcomes[i]!
    const committed =
      outcome.kind === 'gone' ? await handleGone(options, row, now) : outcome.kind === 'failed' ? await handleFailure(options, row, outcome, now) : null
    if (committed) options.recorded?.(committed, 1)
  }
  return rows.length
}

/** Returns the outcome it committed, or null when the row was no longer this worker's. */
async function handleGone(options: DispatcherOptions, row: ClaimedRow, now: Date): Promise<DeliveryOutcome | null> {
  // The attempt does not count: the event waits, pending, until the endpoint is fixed and re-enabled.
  return options.db.transaction(async (tx) => {
    if (!(await holdForDestination(tx, options.workerId, row.id, { status: 410, error: 'endpoint answered 410 Gone' }))) return null
    await options.policy.gone(tx, Number(row.department_id), now)
    return 'gone'
  })
}

/** Returns the outcome it committed, or null when the row was no longer this worker's. */
async function handleFailure(
  options: DispatcherOptions,
  row: ClaimedRow,
  outcome: Extract<Outcome, { kind: 'failed' }>,
  now: Date,
): Promise<DeliveryOutcome | null> {
  const delay = retryDelayMs(row.attempts, {
    retryAfterMs: outcome.retryAfterMs,
    throttled: outcome.throttled,
    elapsedMs: now.getTime() - toDate(row.created_at).getTime(),
  })
  const failure = { status: outcome.status, error: outcome.error }
  return options.db.transaction(async (tx) => {
    const held =
      delay === null
        ? await deadLetter(tx, options.workerId, row.id, now, failure)
        : await retryLater(tx, options.workerId, row.id, new Date(now.getTime() + delay), failure)
    if (!held) return null
    await options.policy.failed(
      tx,
      { destinationId: Number(row.department_id), eventId: row.event_id, attempts: row.attempts, error: outcome.error, deadLettered: delay === null },
      now,
    )
    return delay === null ? 'dead_lettered' : 'failed'
  })
}
