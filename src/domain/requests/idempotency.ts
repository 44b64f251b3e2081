/**
 * Idempotency-Key for POSTs: a client retrying with the same key gets the first answer back
 * instead of a second request. The key row is written in the same transaction as the work,
 * so "answered" and "done" can never disagree; a concurrent duplicate loses on the primary
 * key, rolls back, and replays the winner's answer.
 */
import { createHash } from 'node:crypto'
import { and, eq } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { idempotencyKeys } from '../../db/schema.js'
import { invalid } from '../errors.js'

export interface IdempotentResult<T> {
  status: number
  body: T
  replayed: boolean
}

export interface IdempotencyScope {
  apiKeyId: number
  key: string
  /** Anything that identifies the request's content; a reused key with other content is refused. */
  request: unknown
}

class LostRace extends Error {}

export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/

/** Order-independent: the same fields in another order are the same request. */
export function fingerprint(request: unknown): string {
  const canonical = JSON.stringify(request, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  )
  return createHash('sha256').update(canonical).digest('hex')
}

/**
 * Runs `work` once per Idempotency-Key. With a key, `work` runs in the transaction that also
 * stores the key and the answer. Without one there is nothing to write beside the work, so it
 * runs on `db` as it is: `work` must be atomic by itself (a new request is one statement,
 * submit-request.ts), which spares a POST the BEGIN and COMMIT round trips.
 */
export async function runIdempotent<T>(
  db: Db,
  scope: IdempotencyScope | undefined,
  work: (db: Db) => Promise<{ status: number; body: T }>,
): Promise<IdempotentResult<T>> {
  if (!scope) return { ...(await work(db)), replayed: false }
  const requestFingerprint = fingerprint(scope.request)
  const previous = await findPrevious<T>(db, scope, requestFingerprint)
  if (previous) return previous
  try {
    return await db.transaction(async (tx) => {
      const result = await work(tx)
      const inserted = await tx
        .insert(idempotencyKeys)
        .values({ apiKeyId: scope.apiKeyId, key: scope.key, requestFingerprint, responseStatus: result.status, responseBody: result.body })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key })
      if (inserted.length === 0) throw new LostRace()
      return { ...result, replayed: false }
    })
  } catch (err) {
    if (!(err instanceof LostRace)) throw err
    const winner = await findPrevious<T>(db, scope, requestFingerprint)
    if (!winner) throw err
    return winner
  }
}

async function findPrevious<T>(db: Db, scope: IdempotencyScope, requestFingerprint: string): Promise<IdempotentResult<T> | null> {
  const [row] = await db
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.apiKeyId, scope.apiKeyId), eq(idempotencyKeys.key, scope.key)))
  if (!row) return null
  if (row.requestFingerprint !== requestFingerprint) {
    throw invalid('Idempotency-Key: this key was already used for a different request')
  }
  return { status: row.responseStatus, body: row.responseBody as T, replayed: true }
}
