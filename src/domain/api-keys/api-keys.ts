/**
 * API keys for clients, operators and (later) departments. A raw key looks like
 * `o311_<keyId>_<secret>`: the key id is a non-secret lookup handle, the whole key is stored
 * only as a SHA-256 hash (keys carry 256 random bits, so a slow hash would add nothing),
 * shown once at creation, and compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { and, asc, eq, isNull, lt, or, sql } from 'drizzle-orm'
import { expiringCache } from '../../db/caches.js'
import type { Db } from '../../db/database.js'
import { apiKeys, departments } from '../../db/schema.js'
import { type AuditActor, changedFields, maskedChange, recordAudit } from '../audit/audit.js'
import { invalid } from '../errors.js'
import { DEFAULT_KEY_CHANNEL, type RequestChannel, SET_CHANNEL_SCOPE } from '../requests/channels.js'
import { auditJurisdictionOf, type JurisdictionScopedKey, keyCovers, servedJurisdictionIds } from './key-jurisdictions.js'

/**
 * `requests:set-channel` (channels.ts) widens `requests:write`: the key may name each request's
 * channel. `admin:read` is the read-only operators' scope: reports, audit, deliveries, alerts and
 * work-order lists, nothing that changes anything (docs/tenancy.md).
 */
export const API_KEY_SCOPES = ['requests:write', 'requests:set-channel', 'admin', 'admin:read', 'department'] as const
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number]
export const DEFAULT_SCOPES: ApiKeyScope[] = ['requests:write']

const KEY_PATTERN = /^o311_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/

export interface ApiKeySummary {
  id: number
  key_id: string
  name: string
  scopes: string[]
  created_at: Date
  last_used_at: Date | null
  revoked_at: Date | null
  /** Set on a department's inbound credential. */
  department_id: number | null
  /** The channel of the requests it submits without naming one. */
  default_channel: RequestChannel
  /** The jurisdictions it acts in; null: every one (key-jurisdictions.ts). */
  jurisdiction_ids: string[] | null
}

export interface CreatedApiKey extends ApiKeySummary {
  /** The only time the raw key exists outside the client's hands. */
  key: string
}

/** What an audit entry says of a key: never its secret or hash. */
const auditedKey = (k: ApiKeySummary) => ({
  key_id: k.key_id,
  name: k.name,
  scopes: k.scopes,
  default_channel: k.default_channel,
  department_id: k.department_id,
  jurisdiction_ids: k.jurisdiction_ids,
  revoked_at: k.revoked_at,
})

export async function createApiKey(
  db: Db,
  input: {
    name: string
    scopes?: ApiKeyScope[]
    departmentId?: number
    defaultChannel?: RequestChannel
    /** Omitted or null: every jurisdiction. Checked against those served (and the creator's own: grantableJurisdictions). */
    jurisdictionIds?: string[] | null
  },
  // No default: a caller that forgot to say who would be recorded as the server.
  actor: AuditActor,
): Promise<CreatedApiKey> {
  const keyId = randomBytes(9).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 12)
  const key = `o311_${keyId}_${randomBytes(32).toString('base64url')}`
  const scopes = [...new Set(input.scopes?.length ? input.scopes : DEFAULT_SCOPES)]
  if (scopes.includes('department') !== (input.departmentId !== undefined)) {
    throw invalid('scopes: a department key belongs to one department and is created with it (admin API: POST /admin/v1/departments)')
  }
  if (scopes.includes(SET_CHANNEL_SCOPE) && !scopes.includes('requests:write')) {
    throw invalid(`scopes: ${SET_CHANNEL_SCOPE} lets a key that submits requests name their channel; give requests:write with it`)
  }
  const jurisdictionIds = input.jurisdictionIds == null ? null : await servedJurisdictionIds(db, input.jurisdictionIds)
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(apiKeys)
      .values({
        keyId,
        name: input.name,
        secretHash: hashKey(key),
        scopes,
        departmentId: input.departmentId ?? null,
        defaultChannel: input.defaultChannel ?? DEFAULT_KEY_CHANNEL,
        jurisdictionIds,
      })
      .returning()
    const summary = toSummary(row!)
    await recordAudit(tx, actor, {
      action: 'api_key.created',
      entityType: 'api_key',
      entityId: String(summary.id),
      jurisdictionId: auditJurisdictionOf(summary),
      changes: { ...changedFields(null, auditedKey(summary)), secret: maskedChange(null, 'set') },
    })
    return { ...summary, key }
  })
}

/** Every key, or those whose jurisdictions all lie within `visibleTo`'s (a city's operators see the city's keys). */
export async function listApiKeys(db: Db, visibleTo?: JurisdictionScopedKey): Promise<ApiKeySummary[]> {
  const all = (await db.select().from(apiKeys).orderBy(asc(apiKeys.id))).map(toSummary)
  return visibleTo ? all.filter((k) => keyCovers(visibleTo, k.jurisdiction_ids)) : all
}

/**
 * Revokes at once; returns null for an unknown id, or one outside `visibleTo`'s jurisdictions
 * (which is unknown to that caller). Revoking twice keeps the first time.
 */
export async function revokeApiKey(db: Db, id: number, actor: AuditActor, visibleTo?: JurisdictionScopedKey): Promise<ApiKeySummary | null> {
  const result = await db.transaction(async (tx) => {
    if (visibleTo) {
      const [target] = await tx.select({ jurisdictionIds: apiKeys.jurisdictionIds }).from(apiKeys).where(eq(apiKeys.id, id))
      if (!target || !keyCovers(visibleTo, target.jurisdictionIds)) return null
    }
    const [revoked] = await tx
      .update(apiKeys)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning()
    // A second revocation changes nothing, and so records nothing.
    if (revoked) {
      await recordAudit(tx, actor, {
        action: 'api_key.revoked',
        entityType: 'api_key',
        entityId: String(id),
        jurisdictionId: auditJurisdictionOf(toSummary(revoked)),
        changes: changedFields({ revoked_at: null }, { revoked_at: revoked.revokedAt }),
      })
    }
    const [row] = await tx.select().from(apiKeys).where(eq(apiKeys.id, id))
    return row ? toSummary(row) : null
  })
  forgetApiKeys(db)
  return result
}

/**
 * Every POST and admin call verifies a key. Each instance keeps the key records it has read
 * for at most API_KEY_CACHE_TTL_MS: a revocation made through this instance applies to the
 * next request, one made elsewhere (the CLI, another instance) within those two seconds.
 * The raw key is still hashed and compared on every request; only the row is remembered.
 */
export const API_KEY_CACHE_TTL_MS = 2_000
type ApiKeyRow = typeof apiKeys.$inferSelect
/** Only ids that exist are remembered (a read that finds no row keeps nothing), so guessing keys cannot grow the cache. */
const keyRows = expiringCache<ApiKeyRow | undefined>({
  ttlMs: API_KEY_CACHE_TTL_MS,
  // Far more keys than a deployment uses within two seconds; past it the least recently used row is read again.
  max: 10_000,
  load: async (db, keyId) => (await db.select().from(apiKeys).where(eq(apiKeys.keyId, keyId)))[0],
})

/** How many key rows this instance holds for `db`, reads under way included (tests check that guessed ids leave none). */
export function cachedApiKeyRows(db: Db): number {
  return keyRows.size(db)
}

/** Drops this instance's copies (after a change made behind the cache's back). */
export function forgetApiKeys(db: Db) {
  keyRows.forget(db)
}

/** Moves last_used_at after a successful verification, at most once a minute. */
async function touch(db: Db, row: ApiKeyRow) {
  if (row.lastUsedAt && Date.now() - row.lastUsedAt.getTime() < 60_000) return
  // Marked before the write, so the other requests sharing this cached row do not write too.
  row.lastUsedAt = new Date()
  const [touched] = await db
    .update(apiKeys)
    .set({ lastUsedAt: sql`now()` })
    .where(and(eq(apiKeys.id, row.id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, sql`now() - interval '1 minute'`))))
    .returning({ lastUsedAt: apiKeys.lastUsedAt })
  // The cached row follows the database, so this instance does not try again within the minute.
  if (touched) row.lastUsedAt = touched.lastUsedAt
}

/** The key's record when the raw key is valid, not revoked and holds `scope` (or one of them); otherwise null. */
export async function verifyApiKey(
  db: Db,
  rawKey: string | undefined,
  scope: ApiKeyScope | ApiKeyScope[],
): Promise<ApiKeySummary | null> {
  const match = rawKey ? KEY_PATTERN.exec(rawKey) : null
  if (!match) return null
  const row = await keyRows.get(db, match[1]!)
  const wanted = Array.isArray(scope) ? scope : [scope]
  if (!row || row.revokedAt || !wanted.some((s) => row.scopes.includes(s))) return null
  const expected = Buffer.from(row.secretHash, 'hex')
  if (!timingSafeEqual(expected, Buffer.from(hashKey(rawKey!), 'hex'))) return null
  await touch(db, row)
  return toSummary(row)
}

/**
 * A key offered where either a department (its inbound key) or a client app (requests:write)
 * may call: the key, and for a department key the department it acts for. Null when the key
 * is refused — including a department key whose department no longer exists.
 */
export async function verifyDepartmentOrClientKey(
  db: Db,
  rawKey: string | undefined,
): Promise<{ key: ApiKeySummary; department: typeof departments.$inferSelect | null } | null> {
  const key = await verifyApiKey(db, rawKey, ['department', 'requests:write'])
  if (!key) return null
  if (key.department_id === null || !key.scopes.includes('department')) return { key, department: null }
  const [department] = await db.select().from(departments).where(eq(departments.id, key.department_id))
  return department ? { key, department } : null
}

function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

function toSummary(row: typeof apiKeys.$inferSelect): ApiKeySummary {
  return {
    id: row.id,
    key_id: row.keyId,
    name: row.name,
    scopes: row.scopes,
    created_at: row.createdAt,
    last_used_at: row.lastUsedAt,
    revoked_at: row.revokedAt,
    department_id: row.departmentId,
    default_channel: row.defaultChannel,
    jurisdiction_ids: row.jurisdictionIds,
  }
}
