/**
 * The audit trail's writing side (docs/audit.md): who changed what, when, and each changed
 * field's before and after. Every use case that changes something an operator manages calls
 * recordAudit with the same Db it writes with — inside its transaction — so an entry exists
 * exactly when its change committed. The table refuses updates and deletes (migration 0019).
 *
 * Personal data and secrets never reach an entry: changedFields replaces their values with
 * MASKED (null stays null, so an entry still says that a value was set or cleared), and a
 * built-in list masks the usual names whatever the caller passes.
 */
import { type SQL, sql } from 'drizzle-orm'
import { createHash } from 'node:crypto'
import type { Db } from '../../db/database.js'
import { auditEvents } from '../../db/schema.js'

/**
 * Who made a change: an API key (its id and name then), a department (its id and code: its
 * reports come through the signed webhook, which has no key, or its inbound key — either way
 * the department is who acted), the CLI, or the server itself (a worker, the demo seeding).
 */
export type AuditActor =
  | { kind: 'key'; keyId: number; name: string }
  | { kind: 'department'; departmentId: number; code: string }
  | { kind: 'cli' }
  | { kind: 'system'; name: string }

/** The CLI's changes: whoever runs it on the server's host; it has no key. */
export const CLI_ACTOR: AuditActor = { kind: 'cli' }

export const keyActor = (key: { id: number; name: string }): AuditActor => ({ kind: 'key', keyId: key.id, name: key.name })

export const departmentActor = (department: { id: number; code: string }): AuditActor => ({ kind: 'department', departmentId: department.id, code: department.code })

export const systemActor = (name: string): AuditActor => ({ kind: 'system', name })

/**
 * The server itself, for what no one in particular asked (seeding, benchmarks, tests pass it
 * explicitly). Production code names its actor: the write paths take one without a default,
 * so a new caller cannot be recorded as "server" by forgetting to say who.
 */
export const SERVER_ACTOR: AuditActor = systemActor('server')

/** The deliveries' own changes (a department disabled after failing, work orders marked sent): the dispatcher's. */
export const DELIVERY_ACTOR: AuditActor = systemActor('webhook-dispatcher')

/** What a masked value is stored as. */
export const MASKED = '[masked]'

/**
 * Fields masked in every entry, whatever the caller asks: reporters' contact details, device
 * ids, and anything secret. Names as the entries spell them (the API's snake_case).
 */
export const ALWAYS_MASKED: ReadonlySet<string> = new Set([
  'email',
  'first_name',
  'last_name',
  'name_of_reporter',
  'phone',
  'device_id',
  'account_id',
  'key',
  'secret',
  'secret_hash',
  'signing_secret',
  'inbound_api_key',
  'ciphertext',
  'password',
  'token',
])

export type AuditChanges = Record<string, { before: unknown; after: unknown }>

export interface AuditEntry {
  /** `<entity>.<verb>`: department.created, api_key.revoked, service.routes_set, … */
  action: string
  entityType: string
  entityId: string
  /** service_requests.id, when the change is about one request. */
  requestId?: number | null
  /** Left out with a requestId: the request's own, read by the insert (no round trip); SQL for another such subquery. */
  jurisdictionId?: string | SQL | null
  changes: AuditChanges
}

type Fields = Record<string, unknown>

/**
 * The fields that differ between `before` and `after` (null: the entity did not exist, or no
 * longer does), each as {before, after}; fields in neither are left out, and so is a field
 * whose value is equal (compared as JSON with sorted keys, dates as ISO text). `mask` names
 * more fields to mask than ALWAYS_MASKED.
 */
export function changedFields(before: Fields | null, after: Fields | null, options: { mask?: readonly string[] } = {}): AuditChanges {
  const masked = new Set([...ALWAYS_MASKED, ...(options.mask ?? [])])
  const names = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])]
  const changes: AuditChanges = {}
  for (const name of names) {
    const was = plain(before?.[name])
    const is = plain(after?.[name])
    if (canonical(was) === canonical(is)) continue
    changes[name] = masked.has(name) ? { before: maskValue(was), after: maskValue(is) } : { before: was, after: is }
  }
  return changes
}

/** A secret's change without its value: that it was set (or replaced). */
export function maskedChange(before: 'set' | null, after: 'set' | null) {
  return { before: before === null ? null : MASKED, after: after === null ? null : MASKED }
}

const maskValue = (value: unknown) => (value === null ? null : MASKED)

/**
 * A URL as an entry keeps it: its scheme and host, and of the rest (path, query, credentials,
 * fragment: where webhook URLs carry their tokens, e.g. Slack's in the path) only a fingerprint,
 * the first 12 hex digits of the whole URL's SHA-256 — so an entry shows that a token changed
 * (the fingerprints differ) without keeping any of it. A bare origin is kept as it is.
 */
export function auditUrl(url: string | null | undefined): string | null {
  if (url === null || url === undefined) return null
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return MASKED
  }
  const origin = `${parsed.protocol}//${parsed.host}`
  if (url === origin || url === `${origin}/`) return url
  return `${origin}/${MASKED}#sha256=${createHash('sha256').update(url).digest('hex').slice(0, 12)}`
}

/** JSON values: dates as ISO text, undefined as null. */
function plain(value: unknown): unknown {
  if (value === undefined) return null
  if (value instanceof Date) return value.toISOString()
  return JSON.parse(JSON.stringify(value)) as unknown
}

/** JSON with sorted keys, so key order never counts as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  )
}

/**
 * Appends entries for `actor`, on `db` — the transaction of the change they describe. Entries
 * without any changed field are skipped (an idempotent PUT that changed nothing leaves none),
 * unless `keepUnchanged` says the act itself matters.
 */
export async function recordAudit(db: Db, actor: AuditActor, entries: AuditEntry | AuditEntry[], options: { keepUnchanged?: boolean } = {}) {
  const kept = [entries].flat().filter((e) => options.keepUnchanged || Object.keys(e.changes).length > 0)
  if (kept.length === 0) return
  await db.insert(auditEvents).values(
    kept.map((e) => ({
      ...actorColumns(actor),
      action: e.action,
      entityType: e.entityType,
      entityId: e.entityId,
      requestId: e.requestId ?? null,
      jurisdictionId: jurisdictionOf(e),
      changes: e.changes,
    })),
  )
}

/** The actor's columns of an entry: the key's or department's id copied, and a name. */
export function actorColumns(actor: AuditActor) {
  return {
    actorKind: actor.kind,
    actorKeyId: actor.kind === 'key' ? actor.keyId : null,
    actorDepartmentId: actor.kind === 'department' ? actor.departmentId : null,
    actorName: actor.kind === 'cli' ? 'cli' : actor.kind === 'department' ? actor.code : actor.name,
  }
}

function jurisdictionOf(e: AuditEntry): string | SQL | null {
  if (e.jurisdictionId !== undefined) return e.jurisdictionId
  if (e.requestId === undefined || e.requestId === null) return null
  return sql`(select jurisdiction_id from service_requests where id = ${e.requestId}::bigint)`
}
