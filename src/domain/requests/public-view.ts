/**
 * An operator takes a request out of public view (a report naming a person, a sensitive
 * location, abuse) or puts it back. Public reads stop or resume showing it at once; the
 * open-data `removed` feed lists it (trigger, migration 0009) so harvesters delete their copy.
 * The reason is kept as an internal history entry: who asked why is the city's record.
 */
import { eq } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { requestUpdates, serviceRequests } from '../../db/schema.js'
import { lockRequest } from '../work-orders/work-orders.js'

export async function setPublicView(
  tx: Db,
  jurisdictionId: string,
  publicId: string,
  change: { isPublic: boolean; reason: string },
): Promise<{ changed: boolean }> {
  const request = await lockRequest(tx, jurisdictionId, publicId)
  if (request.isPublic === change.isPublic) return { changed: false }
  await tx.update(serviceRequests).set({ isPublic: change.isPublic }).where(eq(serviceRequests.id, request.id))
  await tx.insert(requestUpdates).values({
    requestId: request.id,
    status: request.status,
    detailedStatus: request.detailedStatus,
    description: `${change.isPublic ? 'Back in public view' : 'Withdrawn from public view'}: ${change.reason}`,
    isPublic: false,
    source: 'operator',
  })
  return { changed: true }
}
