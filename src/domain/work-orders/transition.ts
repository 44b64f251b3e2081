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
import { canMove } from './lifecycle.js'

/** What may change beside the state: the department's code and reference, a date, a reason, a successor. */
export type WorkOrderChanges = Partial<
  Pick<typeof workOrders.$inferInsert, 'externalStatusCode' | 'externalRef' | 'expectedAt' | 'reason' | 'reassignedToId' | 'lastEventAt'>
>

/**
 * Completing after the due date is a breach, recorded like one found by the overdue sweep
 * (service-levels/overdue.ts): as of when the department says the work was done, when it says.
 */
function lateCompletion(changes: WorkOrderChanges): SQL {
  const doneAt = changes.lastEventAt ? sql`${new Date(changes.lastEventAt as Date).toISOString()}::timestamptz` : sql`now()`
  return sql`coalesce(${workOrders.overdueAt}, case when ${workOrders.dueAt} < ${doneAt} then now() end)`
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
    .set({ ...changes, state: to, ...(to === 'completed' ? { overdueAt: lateCompletion(changes) } : {}), updatedAt: sql`now()` })
    .where(
      inArray(
        workOrders.id,
        orders.map((order) => order.id),
      ),
    )
}
