/**
 * Service levels (docs/service-levels.md): a work order is due a service's target after it
 * opens — clock hours, or business days of the jurisdiction's calendar — or the department's
 * own target for that service when it has one. The rule is one SQL function
 * (open311_work_order_due, migration 0011), so the statement that writes a new request, a
 * reassignment and any report compute the same date; this module is how domain code asks for it.
 */
import { type SQL, sql } from 'drizzle-orm'

/** When a work order for `serviceId` at `departmentId` opened at `opened` is due (null: no deadline), as an SQL expression. */
export function workOrderDue(opened: SQL, serviceId: SQL, departmentId: SQL): SQL {
  return sql`open311_work_order_due(${opened}, ${serviceId}, ${departmentId})`
}
