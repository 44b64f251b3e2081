/**
 * The one way a work order changes state. Every mover — a department's report, 311 cancelling
 * the work, a delivery reaching the department — calls moveWorkOrders, which refuses what the
 * lifecycle forbids (lifecycle.ts). Behind it the database guards the request-level invariant
 * (no open work order on a closed request, migration 0005) whatever the code does.
 */
import { inArray, type SQL, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { type WorkOrderState, workOrders } from '../../db/schema.js'
import { conflict } from '../errors.js'
import { workOrderPublicId } from './events.js'
import { ACKNOWLEDGING_STATES, canMove } from './lifecycle.js'

/** What may change beside the state: the department's code and reference, a date, a reason, a successor. */
export type WorkOrderChanges = Partial<
  Pick<typeof workOrders.$inferInsert, 'externalStatusCode' | 'externalRef' | 'expectedAt' | 'reason' | 'reassignedToId' | 'lastEventAt'>
>

/** When the change happened: when the department says, else now. */
function happenedAt(changes: WorkOrderChanges): SQL {
  return changes.lastEventAt ? sql`${new Date(changes.lastEventAt as Date).toISOString()}::timestamptz` : sql`now()`
}

/**
 * Completing after the due date is a breach, recorded like one found by the overdue sweep
 * (service-levels/overdue.ts): as of when the department says the work was done, when it says.
 */
function lateCompletion(changes: WorkOrderChanges): SQL {
  return sql`coalesce(${workOrders.overdueAt}, case when ${workOrders.dueAt} < ${happenedAt(changes)} then now() end)`
}


/**
 * A report time (docs/reports.md) as the department dates it, kept between the work order's
 * opening and now: a department's clock ahead of ours, or a date before the work existed,
 * cannot make a duration negative or in the future.
 */
function reportTime(changes: WorkOrderChanges): SQL {
  return sql`greatest(${workOrders.createdAt}, least(${happenedAt(changes)}, now()))`
}

/** The report times a move to `to` sets: acknowledged once, completed when it completes. */
function reportTimes(to: WorkOrderState, changes: WorkOrderChanges): Partial<Record<'acknowledgedAt' | 'completedAt' | 'overdueAt', SQL>> {
  if (!ACKNOWLEDGING_STATES.includes(to)) return {}
  return {
    acknowledgedAt: sql`coalesce(${workOrders.acknowledgedAt}, ${reportTime(changes)})`,
    ...(to === 'completed' ? { completedAt: reportTime(changes), overdueAt: lateCompletion(changes) } : {}),
  }
}

/**
 * Moves work orders, locked by the caller and as read under that lock, to `to`. Refuses
 * (conflict, naming each) and changes none when any of them may not move there.
 */
export async function moveWorkOrders(
  tx: Db,
  orders: { id: number; state: WorkOrderState }[],
  to: WorkOrderState,
  changes: WorkOrderChanges = {},
): Promise<void> {
  const refused = orders.filter((order) => !canMove(order.state, to))
  if (refused.length > 0) {
    throw conflict(refused.map((order) => ({ description: `work order ${workOrderPublicId(order.id)} cannot move from ${order.state} to ${to}` })))
  }
  if (orders.length === 0) return
  await tx
    .update(workOrders)
    .set({ ...changes, state: to, ...reportTimes(to, changes), updatedAt: sql`now()` })
    .where(
      inArray(
        workOrders.id,
        orders.map((order) => order.id),
      ),
    )
}
