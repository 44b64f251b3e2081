/**
 * An operator takes a request out of public view (a report naming a person, a sensitive
 * location, abuse) or puts it back. Public reads stop or resume showing it at once; the
 * open-data `removed` feed lists it (trigger, migration 0009) so harvesters delete their copy.
 * The reason is kept as an internal history entry: who asked why is the city's record.
 */
import { eq } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { requestUpdates, serviceRequests } from '../../db/schema.js'
import { type AuditActor, recordAudit } from '../audit/audit.js'
import { lockRequest } from '../work-orders/work-orders.js'

/** Withdraws or restores a request for `actor`; a change records an audit entry (with the reason), no change records nothing. */
export async function setPublicView(
  tx: Db,
  actor: AuditActor,
  jurisdictionId: string,
  publicId: string,
  change: { isPublic: boolean; reason: string },
): Promise<{ changed: boolean }> {
  const request = await lockRequest(tx, jurisdictionId, publicId)
  if (request.isPublic === change.isPublic) return { changed: false }
  await tx.update(serviceRequests).set({ isPublic: change.isPublic }).where(eq(serviceRequests.id, request.id))
  const [entry] = await tx
    .insert(requestUpdates)
    .values({
      requestId: request.id,
      status: request.status,
      detailedStatus: request.detailedStatus,
      description: `${change.isPublic ? 'Back in public view' : 'Withdrawn from public view'}: ${change.reason}`,
      isPublic: false,
      source: 'operator',
    })
    .returning({ updateId: requestUpdates.updateId })
  await recordAudit(tx, actor, {
    action: change.isPublic ? 'service_request.restored' : 'service_request.withdrawn',
    entityType: 'service_request',
    entityId: publicId,
    requestId: request.id,
    jurisdictionId,
    changes: {
      public: { before: request.isPublic, after: change.isPublic },
      reason: { before: null, after: change.reason },
      update_id: { before: null, after: entry!.updateId },
    },
  })
  return { changed: true }
}
