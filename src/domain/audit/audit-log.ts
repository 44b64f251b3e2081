/**
 * The audit trail's reading side: `GET /admin/v1/audit.{json,csv}`. Newest first, in pages
 * keyed by id (the table's insertion order), so a page never shifts when entries are added:
 * the cursor names the last id served and a hash of the filters it was issued for (a cursor
 * replayed with other filters would skip or repeat entries, so it is refused).
 */
import { createHash } from 'node:crypto'
import { and, desc, eq, gte, lt, type SQL, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { type AuditActorKind, auditEvents, serviceRequests } from '../../db/schema.js'
import { invalid } from '../errors.js'

export const AUDIT_PAGE_DEFAULT = 100
export const AUDIT_PAGE_MAX = 1000

export interface AuditFilters {
  /** An API key's id (api_keys.id), or `department` (any) or `department:<code>`, or `cli`, or `system`. */
  actor?: string
  /** A service request's public id (service_request_id). */
  request?: string
  entityType?: string
  entityId?: string
  /** Only entries of these jurisdictions (a city's key sees its own; entries of none are then left out). */
  jurisdictionIds?: string[] | null
  /** Entries at or after this time. */
  from?: Date
  /** Entries before this time. */
  to?: Date
}

export interface AuditEventView {
  id: number
  occurred_at: Date
  actor_kind: AuditActorKind
  actor_key_id: number | null
  actor_department_id: number | null
  actor_name: string
  action: string
  entity_type: string
  entity_id: string
  service_request_id: string | null
  jurisdiction_id: string | null
  changes: Record<string, { before: unknown; after: unknown }>
}

/** The columns of an entry, in the order the CSV has them. */
export const AUDIT_COLUMNS = [
  'id',
  'occurred_at',
  'actor_kind',
  'actor_key_id',
  'actor_department_id',
  'actor_name',
  'action',
  'entity_type',
  'entity_id',
  'service_request_id',
  'jurisdiction_id',
  'changes',
] as const satisfies readonly (keyof AuditEventView)[]

export interface AuditPage {
  events: AuditEventView[]
  /** For the next (older) page; null on the last one. */
  nextCursor: string | null
}

function filterHashOf(filters: AuditFilters): string {
  const canonical = [
    filters.actor ?? null,
    filters.request ?? null,
    filters.entityType ?? null,
    filters.entityId ?? null,
    filters.jurisdictionIds ? [...filters.jurisdictionIds].sort() : null,
    filters.from?.toISOString() ?? null,
    filters.to?.toISOString() ?? null,
  ]
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 16)
}

const encodeCursor = (lastId: number, hash: string) => Buffer.from(JSON.stringify([lastId, hash])).toString('base64url')

function decodeCursor(cursor: string, hash: string): number {
  let parts: unknown
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid('cursor: not a cursor this server issued')
  }
  if (!Array.isArray(parts) || parts.length !== 2) throw invalid('cursor: not a cursor this server issued')
  const [id, cursorHash] = parts as unknown[]
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1 || typeof cursorHash !== 'string') {
    throw invalid('cursor: not a cursor this server issued')
  }
  if (cursorHash !== hash) throw invalid('cursor: it was issued for other filters; start again without a cursor')
  return id
}

function conditionsOf(filters: AuditFilters): SQL[] {
  const conditions: SQL[] = []
  const { actor } = filters
  const department = actor === undefined ? null : /^department(?::(.+))?$/.exec(actor)
  if (actor === 'cli' || actor === 'system') conditions.push(eq(auditEvents.actorKind, actor))
  else if (department) {
    conditions.push(eq(auditEvents.actorKind, 'department'))
    // A code is unique within its jurisdiction: with jurisdiction_id, this names one department.
    if (department[1] !== undefined) conditions.push(eq(auditEvents.actorName, department[1]))
  } else if (actor !== undefined) {
    if (!/^[1-9]\d{0,17}$/.test(actor)) throw invalid('actor: an API key id, department[:code], cli or system')
    conditions.push(eq(auditEvents.actorKeyId, Number(actor)))
  }
  if (filters.request !== undefined) {
    conditions.push(sql`${auditEvents.requestId} = (select id from service_requests where public_id = ${filters.request})`)
  }
  if (filters.entityId !== undefined && filters.entityType === undefined) throw invalid('entity_id: give entity_type with it')
  if (filters.entityType !== undefined) conditions.push(eq(auditEvents.entityType, filters.entityType))
  if (filters.entityId !== undefined) conditions.push(eq(auditEvents.entityId, filters.entityId))
  if (filters.jurisdictionIds) conditions.push(sql`${auditEvents.jurisdictionId} = any(${sql.param(filters.jurisdictionIds)}::text[])`)
  if (filters.from) conditions.push(gte(auditEvents.occurredAt, filters.from))
  if (filters.to) conditions.push(lt(auditEvents.occurredAt, filters.to))
  if (filters.from && filters.to && filters.from >= filters.to) throw invalid('from: must be before to')
  return conditions
}

/** One page of entries matching `filters`, newest first. */
export async function findAuditEvents(db: Db, filters: AuditFilters, page: { limit?: number; cursor?: string } = {}): Promise<AuditPage> {
  const hash = filterHashOf(filters)
  const limit = Math.min(page.limit ?? AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX)
  const conditions = conditionsOf(filters)
  if (page.cursor !== undefined) conditions.push(lt(auditEvents.id, decodeCursor(page.cursor, hash)))
  // One more than the page, to know whether another follows.
  const rows = await db
    .select({
      id: auditEvents.id,
      occurred_at: auditEvents.occurredAt,
      actor_kind: auditEvents.actorKind,
      actor_key_id: auditEvents.actorKeyId,
      actor_department_id: auditEvents.actorDepartmentId,
      actor_name: auditEvents.actorName,
      action: auditEvents.action,
      entity_type: auditEvents.entityType,
      entity_id: auditEvents.entityId,
      service_request_id: serviceRequests.publicId,
      jurisdiction_id: auditEvents.jurisdictionId,
      changes: auditEvents.changes,
    })
    .from(auditEvents)
    .leftJoin(serviceRequests, eq(serviceRequests.id, auditEvents.requestId))
    .where(and(...conditions))
    .orderBy(desc(auditEvents.id))
    .limit(limit + 1)
  const events = rows.slice(0, limit)
  const last = events.at(-1)
  return { events, nextCursor: rows.length > limit && last ? encodeCursor(last.id, hash) : null }
}
