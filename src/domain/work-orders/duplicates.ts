/**
 * Duplicates: a request marked as a duplicate of another is linked to the original at the top
 * of the chain (parent_service_request_id), its own open work orders are cancelled (no second
 * crew), and it closes when the original closes (request-closing.ts). A POST can make the same
 * link at intake (a service with policy `link`: requests/submit-request.ts). Either link can be
 * undone (unlinkDuplicate): the request then gets work orders as if it had just come in.
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { requestUpdates, serviceRequests, workOrders } from '../../db/schema.js'
import { type AuditActor, changedFields, recordAudit } from '../audit/audit.js'
import { routedDepartments } from '../departments/routing.js'
import { conflict, invalid, notFound } from '../errors.js'
import { cancelOpenWorkOrders } from './close-request.js'
import { workOrderPublicId } from './events.js'
import { announceWorkOrders, insertWorkOrders } from './open-work-orders.js'
import { closeDuplicatesOf, closeRequestRow } from './request-closing.js'
import { lockRequest } from './work-orders.js'

/**
 * Marks a request a duplicate, for `actor` (an operator, the CLI, or the department that
 * reported it; `source` is the history's): one audit entry for the link, one per work order
 * it cancels.
 */
export async function markDuplicate(
  tx: Db,
  actor: AuditActor,
  jurisdictionId: string,
  publicId: string,
  parentPublicId: string,
  source: 'operator' | 'department',
) {
  if (publicId === parentPublicId) throw invalid('parent_service_request_id: a request cannot duplicate itself')
  // Both rows in one statement, in id order, so two opposite markings cannot deadlock.
  const locked = await tx
    .select()
    .from(serviceRequests)
    .where(and(inArray(serviceRequests.publicId, [publicId, parentPublicId]), eq(serviceRequests.jurisdictionId, jurisdictionId)))
    .orderBy(asc(serviceRequests.id))
    .for('update')
  const child = locked.find((r) => r.publicId === publicId)
  const parent = locked.find((r) => r.publicId === parentPublicId)
  if (!child) throw notFound(`service_request_id "${publicId}" does not exist`)
  if (!parent) throw notFound(`service_request_id "${parentPublicId}" does not exist`)
  // Link to the original at the top of the chain, so closing it closes every duplicate.
  const originalId = await originalOf(tx, parent.id)
  if (originalId === child.id) throw invalid('parent_service_request_id: that request is (a duplicate of) a duplicate of this one')
  await cancelOpenWorkOrders(tx, actor, child.id, `duplicate of ${parentPublicId}`)
  await tx
    .update(serviceRequests)
    .set({ parentRequestId: originalId, detailedStatus: 'duplicate', statusNotes: `Duplicate of ${parentPublicId}` })
    .where(eq(serviceRequests.id, child.id))
  // The child's own duplicates follow it to the same original.
  await tx.update(serviceRequests).set({ parentRequestId: originalId }).where(eq(serviceRequests.parentRequestId, child.id))
  const [original] = await tx
    .select({ status: serviceRequests.status, publicId: serviceRequests.publicId })
    .from(serviceRequests)
    .where(eq(serviceRequests.id, originalId))
  const parentBefore = child.parentRequestId === null ? null : child.parentRequestId === originalId ? original!.publicId : await publicIdOf(tx, child.parentRequestId)
  await recordAudit(tx, actor, {
    action: 'service_request.duplicate_marked',
    entityType: 'service_request',
    entityId: publicId,
    requestId: child.id,
    jurisdictionId,
    changes: changedFields(
      { parent_service_request_id: parentBefore, detailed_status: child.detailedStatus, status: child.status },
      { parent_service_request_id: original!.publicId, detailed_status: 'duplicate', status: original!.status === 'closed' ? 'closed' : child.status },
    ),
  })
  if (original!.status === 'closed') {
    // The child's own duplicates now hang under a closed original too: they close with it.
    const updateId = child.status === 'open' ? await closeRequestRow(tx, child.id, `Duplicate of ${original!.publicId}, which is closed`, 'duplicate', source) : undefined
    await closeDuplicatesOf(tx, originalId)
    if (updateId) return updateId
  }
  const [row] = await tx
    .insert(requestUpdates)
    .values({ requestId: child.id, status: child.status, detailedStatus: 'duplicate', description: `Duplicate of ${original!.publicId}`, source })
    .returning({ updateId: requestUpdates.updateId })
  return row!.updateId
}

async function publicIdOf(tx: Db, requestId: number): Promise<string | null> {
  const [row] = await tx.select({ publicId: serviceRequests.publicId }).from(serviceRequests).where(eq(serviceRequests.id, requestId))
  return row?.publicId ?? null
}

/** The request at the top of a duplicate chain. */
async function originalOf(tx: Db, requestId: number): Promise<number> {
  const [row] = await queryRows<{ id: number }>(
    tx,
    sql`with recursive chain(id, parent_request_id, depth) as (
          select id, parent_request_id, 0 from service_requests where id = ${requestId}
          union all
          select sr.id, sr.parent_request_id, c.depth + 1
          from service_requests sr join chain c on sr.id = c.parent_request_id
          where c.depth < 100)
        select id from chain where parent_request_id is null or depth = 100 order by depth desc limit 1`,
  )
  return Number(row?.id ?? requestId)
}

export interface Unlinked {
  updateId: string
  /** The work orders opened for it (WO-…), one per department it routes to now. */
  workOrders: string[]
}

/**
 * Undoes a duplicate link, whether made at intake or by an operator: the request is on its own
 * again, as if just submitted — detailed status `submitted`, routed now (its location, today's
 * routes), a work order per department due from now, each announced with `work_order.created`,
 * agency_responsible and expected_at set as a submission sets them — with a history entry
 * saying so. Refused (nothing changed) for a request that is closed (a closed duplicate closed
 * with its original: reopening is another matter) or not a duplicate. The request's lock is
 * taken first, then its work orders' (the order work-orders.ts sets).
 */
export async function unlinkDuplicate(tx: Db, actor: AuditActor, jurisdictionId: string, publicId: string): Promise<Unlinked> {
  const request = await lockRequest(tx, jurisdictionId, publicId)
  if (request.status === 'closed') throw conflict(`service request ${publicId} is closed; a closed request is not unlinked`)
  if (request.parentRequestId === null) throw conflict(`service request ${publicId} is not a duplicate`)
  const [parent] = await tx.select({ publicId: serviceRequests.publicId }).from(serviceRequests).where(eq(serviceRequests.id, request.parentRequestId))
  const location = sql`(select location from service_requests where id = ${request.id}::bigint)`
  const routed = await queryRows<{ id: number; name: string; area_name: string | null }>(tx, routedDepartments(request.serviceId, location))
  const opened = await insertWorkOrders(tx, request.id, routed.map((d) => ({ id: Number(d.id), areaName: d.area_name })))
  const note = `Not a duplicate of ${parent?.publicId ?? 'another request'}: handled on its own`
  await tx
    .update(serviceRequests)
    .set({
      parentRequestId: null,
      detailedStatus: 'submitted',
      statusNotes: note,
      serviceNotice: null,
      agencyResponsible: routed.length > 0 ? routed.map((d) => d.name).join(', ') : null,
      // The latest due date of its new work orders, as on submission (none without a deadline).
      expectedAt: opened.length > 0 ? sql`(select max(due_at) from ${workOrders} where id in ${opened})` : null,
    })
    .where(eq(serviceRequests.id, request.id))
  const [entry] = await tx
    .insert(requestUpdates)
    .values({ requestId: request.id, status: 'open', detailedStatus: 'submitted', description: note, source: 'operator' })
    .returning({ updateId: requestUpdates.updateId })
  await recordAudit(tx, actor, {
    action: 'service_request.duplicate_unlinked',
    entityType: 'service_request',
    entityId: publicId,
    requestId: request.id,
    jurisdictionId,
    changes: {
      ...changedFields(
        { parent_service_request_id: parent?.publicId ?? null, detailed_status: request.detailedStatus },
        { parent_service_request_id: null, detailed_status: 'submitted' },
      ),
      work_orders: { before: [], after: opened.map(workOrderPublicId) },
    },
  })
  // Announced once the request is as the departments will read it.
  await announceWorkOrders(tx, opened)
  return { updateId: entry!.updateId, workOrders: opened.map(workOrderPublicId) }
}
