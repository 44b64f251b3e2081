/**
 * Opening work orders: each starts `pending`, and its department hears of it through a
 * `work_order.created` event written in the same transaction. A new request's work orders are
 * steps of its statement (workOrderInsert); a department passing the work to another opens one
 * with insertWorkOrders and announceWorkOrders.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { workOrders } from '../../db/schema.js'
import { workOrderDue } from '../service-levels/due-dates.js'
import { enqueueWorkOrderEvents } from './events.js'

/**
 * The insert of one pending work order per row of `departments` (with an `id`) on the one request
 * `request` names, in department order, returning every work_orders column: a step of the
 * statement that writes a new request (src/domain/requests/submit-request.ts), announced there
 * with newWorkOrderEventRows.
 */
export function workOrderInsert(request: SQL, departments: SQL): SQL {
  return sql`insert into work_orders (request_id, department_id, due_at, area_name)
    select r.id, d.id, ${workOrderDue(sql`now()`, sql`r.service_id`, sql`d.id`)}, d.area_name
    from ${request} r cross join ${departments} d order by d.id
    returning *`
}

/** The pending rows alone; their caller announces them (announceWorkOrders) once the rest of its change is written. */
export async function insertWorkOrders(tx: Db, requestId: number, departmentIds: number[]): Promise<number[]> {
  if (departmentIds.length === 0) return []
  const opened = await tx
    .insert(workOrders)
    .values(
      departmentIds.map((departmentId) => ({
        requestId,
        departmentId,
        // The clock starts again for the department the work passes to (docs/service-levels.md).
        dueAt: workOrderDue(sql`now()`, sql`(select service_id from service_requests where id = ${requestId})`, sql`${departmentId}::bigint`),
        // The work stays in the area it was routed for, whoever takes it on (reports group by it).
        areaName: sql`(select area_name from work_orders where request_id = ${requestId} order by id desc limit 1)`,
      })),
    )
    .returning({ id: workOrders.id })
  return opened.map((row) => row.id)
}

/** Tells each work order's department it has new work (`work_order.created`; `extra` joins the payload, e.g. `reassigned_from`). */
export async function announceWorkOrders(tx: Db, workOrderIds: number[], extra: Record<string, unknown> = {}) {
  await enqueueWorkOrderEvents(tx, 'work_order.created', workOrderIds, extra)
}
