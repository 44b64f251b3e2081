/**
 * Overdue work: open work orders past their service-level due date are marked once
 * (`overdue_at`), their department is told (`work_order.overdue`) and the operators are alerted
 * — one alert per department per sweep, naming its work orders. Claimed with FOR UPDATE SKIP
 * LOCKED, so every instance may sweep at once and each work order is marked by exactly one.
 * A work order completed after its due date is marked by the completion itself
 * (work-orders/transition.ts): a breach is recorded either way, never hidden.
 */
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { TERMINAL_WORK_ORDER_STATES } from '../../db/schema.js'
import { recordAudit, systemActor } from '../audit/audit.js'
import { raiseOperatorAlert } from '../operator-alerts.js'
import { enqueueWorkOrderEvents, workOrderPublicId } from '../work-orders/events.js'

export interface OverdueSweep {
  /** The sweep's clock: tests pass a fake one; by default the database's, one clock for every instance. */
  now?: Date
  batchSize?: number
}

/**
 * The final states as literals, not parameters: the planner then sees the predicate of the
 * partial index work_orders_due_idx (migration 0011) in the query, whatever plan it makes.
 */
const FINAL_STATES = sql.raw(`(${TERMINAL_WORK_ORDER_STATES.map((s) => `'${s}'`).join(', ')})`)

/** Who marks work overdue: the sweep's worker (workers/index.ts). */
const SWEEPER = systemActor('overdue-sweeper')

/** Marks up to `batchSize` work orders overdue as of `now`, one audit entry each; returns how many it marked. */
export async function markOverdueWorkOrders(db: Db, { now, batchSize = 100 }: OverdueSweep = {}): Promise<number> {
  const at = now ? sql`${now.toISOString()}::timestamptz` : sql`now()`
  return db.transaction(async (tx) => {
    const marked = await queryRows<{ id: number; request_id: number; department_id: number; code: string; due_at: Date | string; overdue_at: Date | string }>(
      tx,
      sql`with due as (
            select id from work_orders
            where overdue_at is null and due_at is not null and due_at <= ${at}
              and state not in ${FINAL_STATES}
            order by due_at, id
            limit ${batchSize}
            for update skip locked)
          update work_orders w set overdue_at = ${at}, updated_at = now()
          from due, departments d
          where w.id = due.id and d.id = w.department_id
          returning w.id, w.request_id, w.department_id, d.code, w.due_at, w.overdue_at`,
    )
    if (marked.length === 0) return 0
    const ids = marked.map((w) => Number(w.id)).sort((a, b) => a - b)
    await recordAudit(
      tx,
      SWEEPER,
      [...marked]
        .sort((a, b) => Number(a.id) - Number(b.id))
        .map((w) => ({
          action: 'work_order.overdue',
          entityType: 'work_order',
          entityId: workOrderPublicId(Number(w.id)),
          requestId: Number(w.request_id),
          changes: { overdue_at: { before: null, after: new Date(w.overdue_at).toISOString() } },
        })),
    )
    await enqueueWorkOrderEvents(tx, 'work_order.overdue', ids)
    const byDepartment = new Map<number, typeof marked>()
    for (const row of marked) byDepartment.set(Number(row.department_id), [...(byDepartment.get(Number(row.department_id)) ?? []), row])
    for (const [departmentId, rows] of byDepartment) {
      const listed = rows.map((r) => workOrderPublicId(Number(r.id))).join(', ')
      await raiseOperatorAlert(tx, 'work_order_overdue', departmentId, `${rows.length} work order(s) at ${rows[0]!.code} past their due date: ${listed}`)
    }
    return marked.length
  })
}

/**
 * Open work orders marked overdue, across every jurisdiction (for /metrics, read at each scrape;
 * one answer for all instances): exactly the set of the partial index work_orders_open_overdue_idx
 * (migration 0015), which the timeliness report reads too.
 */
export async function countOverdueWorkOrders(db: Db): Promise<number> {
  const [row] = await queryRows<{ overdue: number }>(
    db,
    sql`select count(*)::int as overdue from work_orders
        where overdue_at is not null and state not in ${FINAL_STATES}`,
  )
  return row!.overdue
}
