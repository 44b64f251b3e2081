/** Operators' view of the outbox: dead letters, replays and alerts. */
import { and, desc, eq, isNull, type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { operatorAlerts } from '../../db/schema.js'
import { wakeDispatchers } from '../../outbox/outbox.js'
import { type AuditActor, recordAudit } from '../audit/audit.js'

export interface DeliverySummary {
  event_id: string
  event_type: string
  department: string
  work_order_id: number | null
  state: string
  attempts: number
  next_attempt_at: Date
  last_status: number | null
  last_error: string | null
  created_at: Date
  delivered_at: Date | null
  failed_at: Date | null
}

export async function listDeliveries(db: Db, jurisdictionId: string, filter: { state?: string; limit: number }) {
  return queryRows<DeliverySummary>(
    db,
    sql`select o.event_id, o.event_type, d.code as department, o.work_order_id, o.state, o.attempts, o.next_attempt_at,
               o.last_status, o.last_error, o.created_at, o.delivered_at, o.failed_at
        from outbox o join departments d on d.id = o.department_id
        where d.jurisdiction_id = ${jurisdictionId} ${filter.state ? sql`and o.state = ${filter.state}` : sql``}
        order by o.id desc limit ${filter.limit}`,
  )
}

/**
 * Puts dead-lettered deliveries back in the queue with a fresh set of attempts, for `actor`:
 * one audit entry per delivery (with its work order's request), in the replay's transaction.
 */
export async function replayDeliveries(db: Db, actor: AuditActor, jurisdictionId: string, which: { eventId?: string; failedSince?: Date }) {
  const rows = await db.transaction(async (tx) => {
    // `before` is the same rows as the update's snapshot saw them: their attempts and failure time.
    const replayed = await queryRows<{ event_id: string; request_id: number | null; attempts: number; failed_at: Date | string | null }>(
      tx,
      sql`update outbox o set state = 'pending', attempts = 0, next_attempt_at = now(), failed_at = null, locked_at = null
          from departments d, outbox before
          where d.id = o.department_id and before.id = o.id and d.jurisdiction_id = ${jurisdictionId} and o.state = 'failed'
            ${which.eventId ? sql`and o.event_id = ${which.eventId}` : sql``}
            ${which.failedSince ? sql`and o.failed_at >= ${which.failedSince.toISOString()}` : sql``}
          returning o.event_id, before.attempts, before.failed_at,
                    (select w.request_id from work_orders w where w.id = o.work_order_id) as request_id`,
    )
    await recordAudit(
      tx,
      actor,
      replayed.map((r) => ({
        action: 'delivery.replayed',
        entityType: 'delivery',
        entityId: r.event_id,
        requestId: r.request_id === null ? null : Number(r.request_id),
        jurisdictionId,
        changes: {
          state: { before: 'failed', after: 'pending' },
          attempts: { before: Number(r.attempts), after: 0 },
          failed_at: { before: r.failed_at === null ? null : new Date(r.failed_at).toISOString(), after: null },
        },
      })),
    )
    return replayed
  })
  if (rows.length > 0) await wakeDispatchers(db)
  return rows.map((r) => r.event_id)
}

/**
 * Open alerts (or all, with includeAcknowledged), newest first; of `jurisdictionIds` only when
 * given (an alert belongs to its department's jurisdiction).
 */
export async function listAlerts(db: Db, options: { includeAcknowledged?: boolean; jurisdictionIds?: string[] | null } = {}) {
  return db
    .select({
      id: operatorAlerts.id,
      kind: operatorAlerts.kind,
      departmentId: operatorAlerts.departmentId,
      jurisdiction_id: sql<string | null>`(select jurisdiction_id from departments where id = ${operatorAlerts.departmentId})`,
      message: operatorAlerts.message,
      createdAt: operatorAlerts.createdAt,
      acknowledgedAt: operatorAlerts.acknowledgedAt,
    })
    .from(operatorAlerts)
    .where(and(options.includeAcknowledged ? undefined : isNull(operatorAlerts.acknowledgedAt), alertOf(options.jurisdictionIds)))
    .orderBy(desc(operatorAlerts.id))
    .limit(500)
}

/** An alert of one of `jurisdictionIds` (no condition for null: every jurisdiction). */
const alertOf = (jurisdictionIds: string[] | null | undefined): SQL | undefined =>
  jurisdictionIds
    ? sql`${operatorAlerts.departmentId} in (select id from departments where jurisdiction_id = any(${sql.param(jurisdictionIds)}::text[]))`
    : undefined

/**
 * Acknowledges an open alert for `actor`; one already acknowledged, unknown, or outside
 * `jurisdictionIds` (when given) changes nothing and records nothing.
 */
export async function acknowledgeAlert(db: Db, actor: AuditActor, id: number, jurisdictionIds: string[] | null = null) {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(operatorAlerts)
      .set({ acknowledgedAt: sql`now()` })
      .where(and(eq(operatorAlerts.id, id), isNull(operatorAlerts.acknowledgedAt), alertOf(jurisdictionIds)))
      .returning()
    if (!row) return null
    await recordAudit(tx, actor, {
      action: 'operator_alert.acknowledged',
      entityType: 'operator_alert',
      entityId: String(row.id),
      jurisdictionId: row.departmentId === null ? null : sql`(select jurisdiction_id from departments where id = ${row.departmentId}::bigint)`,
      changes: { acknowledged_at: { before: null, after: row.acknowledgedAt!.toISOString() } },
    })
    return row
  })
}
