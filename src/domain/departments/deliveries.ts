/** Operators' view of the outbox: dead letters, replays and alerts. */
import { and, desc, eq, isNull, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { operatorAlerts } from '../../db/schema.js'
import { wakeDispatchers } from '../../outbox/outbox.js'

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

/** Puts dead-lettered deliveries back in the queue with a fresh set of attempts. */
export async function replayDeliveries(db: Db, jurisdictionId: string, which: { eventId?: string; failedSince?: Date }) {
  const rows = await queryRows<{ event_id: string }>(
    db,
    sql`update outbox o set state = 'pending', attempts = 0, next_attempt_at = now(), failed_at = null, locked_at = null
        from departments d
        where d.id = o.department_id and d.jurisdiction_id = ${jurisdictionId} and o.state = 'failed'
          ${which.eventId ? sql`and o.event_id = ${which.eventId}` : sql``}
          ${which.failedSince ? sql`and o.failed_at >= ${which.failedSince.toISOString()}` : sql``}
        returning o.event_id`,
  )
  if (rows.length > 0) await wakeDispatchers(db)
  return rows.map((r) => r.event_id)
}

export async function listAlerts(db: Db, options: { includeAcknowledged?: boolean } = {}) {
  return db
    .select()
    .from(operatorAlerts)
    .where(options.includeAcknowledged ? undefined : isNull(operatorAlerts.acknowledgedAt))
    .orderBy(desc(operatorAlerts.id))
    .limit(500)
}

export async function acknowledgeAlert(db: Db, id: number) {
  const [row] = await db
    .update(operatorAlerts)
    .set({ acknowledgedAt: sql`now()` })
    .where(and(eq(operatorAlerts.id, id), isNull(operatorAlerts.acknowledgedAt)))
    .returning()
  return row ?? null
}
