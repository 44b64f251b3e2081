/**
 * Opening work orders: each starts `pending`, and its department hears of it through a
 * `work_order.created` event written in the same transaction. Used when a request is
 * submitted and when a department passes the work to another.
 */
import type { Db } from '../../db/database.js'
import { workOrders } from '../../db/schema.js'
import { enqueueWorkOrderEvents } from './events.js'

/** Opens one work order per department (in the order given) on a request, and announces each; returns their ids. */
export async function openWorkOrders(tx: Db, requestId: number, departmentIds: number[]): Promise<number[]> {
  const ids = await insertWorkOrders(tx, requestId, departmentIds)
  await announceWorkOrders(tx, ids)
  return ids
}

/** The pending rows alone; their caller announces them (announceWorkOrders) once the rest of its change is written. */
export async function insertWorkOrders(tx: Db, requestId: number, departmentIds: number[]): Promise<number[]> {
  if (departmentIds.length === 0) return []
  const opened = await tx
    .insert(workOrders)
    .values(departmentIds.map((departmentId) => ({ requestId, departmentId })))
    .returning({ id: workOrders.id })
  return opened.map((row) => row.id)
}

/** Tells each work order's department it has new work (`work_order.created`; `extra` joins the payload, e.g. `reassigned_from`). */
export async function announceWorkOrders(tx: Db, workOrderIds: number[], extra: Record<string, unknown> = {}) {
  await enqueueWorkOrderEvents(tx, 'work_order.created', workOrderIds, extra)
}
