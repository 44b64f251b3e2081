/**
 * Duplicates: a request marked as a duplicate of another is linked to the original at the top
 * of the chain (parent_service_request_id), its own open work orders are cancelled (no second
 * crew), and it closes when the original closes (request-closing.ts).
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { requestUpdates, serviceRequests } from '../../db/schema.js'
import { invalid, notFound } from '../errors.js'
import { cancelOpenWorkOrders } from './close-request.js'
import { closeDuplicatesOf, closeRequestRow } from './request-closing.js'

export async function markDuplicate(tx: Db, jurisdictionId: string, publicId: string, parentPublicId: string, actor: 'operator' | 'department') {
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
  await cancelOpenWorkOrders(tx, child.id, `duplicate of ${parentPublicId}`)
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
  if (original!.status === 'closed') {
    // The child's own duplicates now hang under a closed original too: they close with it.
    const updateId = child.status === 'open' ? await closeRequestRow(tx, child.id, `Duplicate of ${original!.publicId}, which is closed`, 'duplicate', actor) : undefined
    await closeDuplicatesOf(tx, originalId)
    if (updateId) return updateId
  }
  const [row] = await tx
    .insert(requestUpdates)
    .values({ requestId: child.id, status: child.status, detailedStatus: 'duplicate', description: `Duplicate of ${original!.publicId}`, source: actor })
    .returning({ updateId: requestUpdates.updateId })
  return row!.updateId
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
