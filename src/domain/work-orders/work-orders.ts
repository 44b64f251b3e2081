/**
 * Work orders: one per department a request is routed to, opened with the request
 * (open-work-orders.ts), moved only through transition.ts, and the source of the request's
 * citizen-facing status (derived-status.ts). The use cases have modules of their own:
 * report-progress.ts, close-request.ts, duplicates.ts, request-notes.ts. This module holds the
 * row type and the locks they share.
 *
 * Lock order, everywhere: the service request row first, then its work orders. Department
 * reports, operator closes and deliveries all touch both; one order means no deadlocks.
 */
import { and, asc, eq, inArray } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { serviceRequests, workOrders } from '../../db/schema.js'
import type { Department } from '../departments/departments.js'
import { forbidden, notFound } from '../errors.js'
import { isTerminal } from './lifecycle.js'

export type WorkOrder = typeof workOrders.$inferSelect

/** Locks and returns a work order of `department` (forbidden for another department's work order). */
export async function lockDepartmentWorkOrder(tx: Db, department: Department, workOrderPublic: string): Promise<WorkOrder> {
  const id = Number(/^WO-(\d+)$/.exec(workOrderPublic)?.[1] ?? Number.NaN)
  if (!Number.isSafeInteger(id)) throw notFound(`work order "${workOrderPublic}" does not exist`)
  const [found] = await tx.select({ requestId: workOrders.requestId, departmentId: workOrders.departmentId }).from(workOrders).where(eq(workOrders.id, id))
  if (!found) throw notFound(`work order "${workOrderPublic}" does not exist`)
  if (found.departmentId !== department.id) throw forbidden(`work order ${workOrderPublic} belongs to another department`)
  await tx.select({ id: serviceRequests.id }).from(serviceRequests).where(eq(serviceRequests.id, found.requestId)).for('update')
  const [workOrder] = await tx.select().from(workOrders).where(eq(workOrders.id, id)).for('update')
  return workOrder!
}

/**
 * The department's current work order on a request: the open one, else the latest (for the
 * mySociety update endpoint, which names requests rather than work orders). Locked.
 */
export async function lockWorkOrderForRequest(tx: Db, department: Department, publicRequestId: string): Promise<WorkOrder> {
  const [request] = await tx
    .select({ id: serviceRequests.id })
    .from(serviceRequests)
    .where(and(eq(serviceRequests.publicId, publicRequestId), eq(serviceRequests.jurisdictionId, department.jurisdictionId)))
    .for('update')
  if (!request) throw notFound(`service_request_id "${publicRequestId}" does not exist`)
  const candidates = await tx
    .select()
    .from(workOrders)
    .where(eq(workOrders.requestId, request.id))
    .orderBy(asc(workOrders.id))
    .for('update')
  const own = candidates.filter((w) => w.departmentId === department.id)
  if (own.length === 0) throw forbidden(`service request ${publicRequestId} has no work order for this department`)
  return own.find((w) => !isTerminal(w.state)) ?? own[own.length - 1]!
}

/** Locks and returns a request of the jurisdiction by its public id. */
export async function lockRequest(tx: Db, jurisdictionId: string, publicId: string) {
  const [request] = await tx
    .select()
    .from(serviceRequests)
    .where(and(eq(serviceRequests.publicId, publicId), eq(serviceRequests.jurisdictionId, jurisdictionId)))
    .for('update')
  if (!request) throw notFound(`service_request_id "${publicId}" does not exist`)
  return request
}

export async function listWorkOrders(tx: Db, jurisdictionId: string, publicId: string) {
  const [request] = await tx
    .select({ id: serviceRequests.id })
    .from(serviceRequests)
    .where(and(eq(serviceRequests.publicId, publicId), eq(serviceRequests.jurisdictionId, jurisdictionId)))
  if (!request) throw notFound(`service_request_id "${publicId}" does not exist`)
  return tx.select().from(workOrders).where(inArray(workOrders.requestId, [request.id])).orderBy(asc(workOrders.id))
}
