/**
 * Opening work orders: each starts `pending`, and its department hears of it through a
 * `work_order.created` event written in the same transaction. Used when a request is
 * submitted and when a department passes the work to another.
 */
import type { Db } from '../../db/database.js'
import { workOrders } from '../../db/schema.js'
import { enqueueWorkOrderEvents } from './events.js'

/** Opens one work order per department (in the order given) on a request; returns their ids. */
export async function openWorkOrders(
  tx: Db,
  requestId: number,
  departmentIds: number[],
  /** Added to each created event's payload (e.g. `reassigned_from`). */
  extra: Record<string, unknown> = {},
): Promise<number[]> {
  if (departmentIds.length === 0) return []
  const opened = await tx
    .insert(workOrders)
    .values(departmentIds.map((departmentId) => ({ requestId, departmentId })))
    .returning({ id: workOrders.id })
  const ids = opened.map((row) => row.id)
  await enqueueWorkOrderEvents(tx, 'work_order.created', ids, extra)
  return ids
}
