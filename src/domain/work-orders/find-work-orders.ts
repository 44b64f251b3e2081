/**
 * Work orders across a jurisdiction, for operators: the overdue list (`overdue=true`: marked past
 * their due date and still open), one department's, or all — in id order, paged by id.
 */
import { and, asc, eq, gt, isNotNull, notInArray, type SQL } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { departments, serviceRequests, TERMINAL_WORK_ORDER_STATES, workOrders } from '../../db/schema.js'

export interface WorkOrderFilter {
  /** Open work orders the overdue sweep has marked (a late completion is in `timeliness`, not here). */
  overdue?: boolean
  departmentCode?: string
  afterId?: number
  limit: number
}

export async function findWorkOrders(db: Db, jurisdictionId: string, filter: WorkOrderFilter) {
  const conditions: SQL[] = [eq(serviceRequests.jurisdictionId, jurisdictionId)]
  if (filter.overdue) conditions.push(isNotNull(workOrders.overdueAt), notInArray(workOrders.state, [...TERMINAL_WORK_ORDER_STATES]))
  if (filter.departmentCode !== undefined) conditions.push(eq(departments.code, filter.departmentCode))
  if (filter.afterId !== undefined) conditions.push(gt(workOrders.id, filter.afterId))
  const rows = await db
    .select({ workOrder: workOrders, serviceRequestId: serviceRequests.publicId, department: departments.code })
    .from(workOrders)
    .innerJoin(serviceRequests, eq(serviceRequests.id, workOrders.requestId))
    .innerJoin(departments, eq(departments.id, workOrders.departmentId))
    .where(and(...conditions))
    .orderBy(asc(workOrders.id))
    .limit(filter.limit)
  return rows
}
