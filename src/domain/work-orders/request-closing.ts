/**
 * Closing a request row, and with it every open request that duplicates it (Austin's lesson:
 * duplicates close when their parent closes). The database refuses the close while a work
 * order of the request is open (migration 0005); callers settle the work orders first.
 */
import { and, eq, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { requestUpdates, serviceRequests, UPDATE_SOURCES } from '../../db/schema.js'

export type UpdateSourceName = (typeof UPDATE_SOURCES)[number]

/** Closes a request with a history entry saying why; returns that entry's update_id. */
export async function closeRequestRow(tx: Db, requestId: number, note: string, detailed: string, source: UpdateSourceName): Promise<string> {
  await tx
    .update(serviceRequests)
    .set({ status: 'closed', closedAt: sql`now()`, detailedStatus: detailed, statusNotes: note })
    .where(eq(serviceRequests.id, requestId))
  const [row] = await tx
    .insert(requestUpdates)
    .values({ requestId, status: 'closed', detailedStatus: detailed, description: note, source })
    .returning({ updateId: requestUpdates.updateId })
  await closeDuplicatesOf(tx, requestId)
  return row!.updateId
}

/** Closes the open duplicates of a request that has just closed. */
export async function closeDuplicatesOf(tx: Db, parentId: number): Promise<void> {
  // Locked, and re-checked under the lock: a duplicate unlinked meanwhile (it then has open
  // work orders of its own, work-orders/duplicates.ts unlinkDuplicate) is not closed here.
  const children = await tx
    .select({ id: serviceRequests.id })
    .from(serviceRequests)
    .where(and(eq(serviceRequests.parentRequestId, parentId), eq(serviceRequests.status, 'open')))
    .orderBy(serviceRequests.id)
    .for('update')
  for (const child of children) {
    await closeRequestRow(tx, child.id, 'Closed with the request it duplicates', 'duplicate', 'system')
  }
}
