/**
 * The citizen or 311 adds to a request (a comment, a photo, a correction). Departments with
 * open work orders hear of it through `service_request.updated`. Closed requests take no notes.
 */
import { and, asc, eq, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { requestUpdates, serviceRequests, TERMINAL_WORK_ORDER_STATES, workOrders } from '../../db/schema.js'
import { type AuditActor, changedFields, recordAudit } from '../audit/audit.js'
import { conflict, invalid } from '../errors.js'
import { noteContextOf, renderTemplate } from '../templates/response-templates.js'
import { enqueueWorkOrderEvents } from './events.js'
import { lockRequest } from './work-orders.js'

export interface RequestNote {
  source: 'citizen' | 'operator'
  /** Free text, or (for operators) `template`: the code of a pre-approved answer, which makes the note public. */
  description?: string
  template?: string
  isPublic: boolean
  mediaUrls?: string[]
  /** The sender's own id for the note (mySociety update_id), making a repeat a no-op. */
  externalUpdateId?: string
}

/**
 * Adds a note for `actor` (an operator's key or the CLI; a citizen's client app), with one
 * audit entry naming the history entry it wrote. A citizen's words and photos are recorded as
 * given, never their values (the history keeps them, and can be anonymised; the trail cannot).
 * A replayed note records nothing.
 */
export async function addRequestNote(
  tx: Db,
  actor: AuditActor,
  jurisdictionId: string,
  publicId: string,
  note: RequestNote,
): Promise<{ updateId: string; replayed: boolean }> {
  const request = await lockRequest(tx, jurisdictionId, publicId)
  if (note.externalUpdateId) {
    const [existing] = await tx
      .select({ updateId: requestUpdates.updateId })
      .from(requestUpdates)
      .where(and(eq(requestUpdates.requestId, request.id), eq(requestUpdates.externalUpdateId, note.externalUpdateId), sql`${requestUpdates.departmentId} is null`))
    if (existing) return { updateId: existing.updateId, replayed: true }
  }
  if (request.status === 'closed') throw conflict(`service request ${publicId} is closed`)
  const approved = note.template ? await renderTemplate(tx, note.template, await noteContextOf(tx, request.id)) : undefined
  const description = approved?.text ?? note.description
  if (description === undefined) throw invalid('description: a note needs a description or a template')
  const isPublic = approved ? true : note.isPublic
  const [row] = await tx
    .insert(requestUpdates)
    .values({
      requestId: request.id,
      status: request.status,
      detailedStatus: request.detailedStatus,
      description,
      isPublic,
      templateId: approved?.templateId ?? null,
      descriptionTranslations: approved?.translations ?? null,
      isAnswer: isPublic,
      mediaUrls: note.mediaUrls ?? [],
      source: note.source,
      externalUpdateId: note.externalUpdateId ?? null,
    })
    .returning({ updateId: requestUpdates.updateId })
  await recordAudit(tx, actor, {
    action: 'service_request.noted',
    entityType: 'service_request',
    entityId: publicId,
    requestId: request.id,
    jurisdictionId,
    changes: changedFields(
      null,
      {
        update_id: row!.updateId,
        source: note.source,
        public: isPublic,
        template: note.template ?? null,
        description,
        media_urls: note.mediaUrls?.length ? note.mediaUrls : null,
      },
      { mask: note.source === 'citizen' ? ['description', 'media_urls'] : [] },
    ),
  })
  // A note is a change of the request although none of its columns moves: the stamp trigger
  // (migration 0009) gives it a new updated_at.
  await tx.update(serviceRequests).set({ updatedAt: sql`default` }).where(eq(serviceRequests.id, request.id))
  const open = await tx
    .select({ id: workOrders.id })
    .from(workOrders)
    .where(and(eq(workOrders.requestId, request.id), sql`${workOrders.state} not in ${TERMINAL_WORK_ORDER_STATES}`))
    .orderBy(asc(workOrders.id))
  await enqueueWorkOrderEvents(
    tx,
    'service_request.updated',
    open.map((w) => w.id),
    { update: { update_id: row!.updateId, source: note.source, description, media_urls: note.mediaUrls ?? [], public: isPublic } },
  )
  return { updateId: row!.updateId, replayed: false }
}
