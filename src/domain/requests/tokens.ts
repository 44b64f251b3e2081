/**
 * Tokens for batch and blackbox services. POST answers a token; the token resolves to a
 * service_request_id only once an asynchronous acceptance step has run (the department
 * integration will make that step the department's acknowledgement; until a service is
 * routed to a department, the server's own acceptor accepts tokens in the background).
 */
import { randomBytes } from 'node:crypto'
import { and, eq, type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { requestTokens, TERMINAL_WORK_ORDER_STATES } from '../../db/schema.js'

/** NOTIFY channel that wakes the token acceptor. */
export const TOKEN_PENDING_CHANNEL = 'open311_token_pending'

export interface TokenLookup {
  token: string
  state: 'pending' | 'accepted' | 'failed'
  serviceRequestId: string | null
  failureReason: string | null
}

/** A fresh token: 128 random bits, URL-safe. */
export const newToken = () => randomBytes(16).toString('base64url')

/**
 * The token step of a request's submission: inserts `token` for each row of `requests` (a
 * CTE name with an `id` column) and returns it, when `token` is not null. Its caller selects
 * `pg_notify(TOKEN_PENDING_CHANNEL, '')` from the result to wake the acceptor at commit.
 */
export function tokenInsert(token: string | null, requests: SQL): SQL {
  return sql`insert into request_tokens (token, request_id) select ${token}::text, id from ${requests} where ${token}::text is not null returning token`
}

/** For services whose department issues the reference: the token resolves on the department's acknowledgement. */
export async function acceptDepartmentToken(tx: Db, requestId: number) {
  await tx
    .update(requestTokens)
    .set({ state: 'accepted', resolvedAt: sql`now()` })
    .where(and(eq(requestTokens.requestId, requestId), eq(requestTokens.state, 'pending')))
}

/** A client polling a token must learn that no department will acknowledge the request. */
export async function failTokenIfNoOpenWork(tx: Db, requestId: number, reason: string) {
  await tx.execute(sql`update request_tokens set state = 'failed', failure_reason = ${reason}, resolved_at = now()
                       where request_id = ${requestId} and state = 'pending'
                         and not exists (select 1 from work_orders w where w.request_id = ${requestId}
                                         and w.state not in ${TERMINAL_WORK_ORDER_STATES})`)
}

export async function findToken(db: Db, jurisdictionId: string, token: string): Promise<TokenLookup | null> {
  const [row] = await queryRows<{ state: TokenLookup['state']; public_id: string; failure_reason: string | null }>(
    db,
    sql`select t.state, sr.public_id, t.failure_reason
        from request_tokens t join service_requests sr on sr.id = t.request_id
        where t.token = ${token} and sr.jurisdiction_id = ${jurisdictionId}`,
  )
  if (!row) return null
  return {
    token,
    state: row.state,
    serviceRequestId: row.state === 'accepted' ? row.public_id : null,
    failureReason: row.failure_reason,
  }
}

/**
 * Accepts up to `limit` pending tokens. SKIP LOCKED lets any number of instances run this at
 * once without accepting a token twice or waiting on each other.
 */
export async function acceptPendingTokens(db: Db, limit = 100): Promise<number> {
  const rows = await queryRows<{ token: string }>(
    db,
    sql`update request_tokens set state = 'accepted', resolved_at = now()
        where token in (
          select t.token from request_tokens t
          join service_requests sr on sr.id = t.request_id
          join services s on s.id = sr.service_id
          where t.state = 'pending'
            -- Where the department issues the reference, its acknowledgement accepts the token.
            and not (s.department_issues_reference and exists (select 1 from work_orders w where w.request_id = sr.id))
          order by t.created_at limit ${limit} for update of t skip locked)
        returning token`,
  )
  return rows.length
}
