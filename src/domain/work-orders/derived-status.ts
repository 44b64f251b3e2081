/**
 * A request's citizen-facing status is derived from its work orders: the most advanced open
 * one speaks for the request, and the request closes when every work order is final and the
 * service's close rule allows it.
 */
import { eq, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { requestUpdates, serviceRequests, services, type WorkOrderState, workOrders } from '../../db/schema.js'
import { notFound } from '../errors.js'
import { isTerminal } from './lifecycle.js'
import { noteContextOf, renderTemplate } from '../templates/response-templates.js'
import { closeDuplicatesOf, type UpdateSourceName } from './request-closing.js'

export interface UpdateSource {
  source: UpdateSourceName
  departmentId?: number
  workOrderId?: number
  note: string
  /** `note` is the sender's own words (a department's public note), not a status line written here. */
  noteIsOwnWords?: boolean
  /** A pre-approved answer whose text replaces `note`, checked against the request as this change leaves it. */
  template?: string
  externalStatusCode?: string
  externalUpdateId?: string | undefined
}

/** The detailed status of a request whose work orders are in `states`. */
export function detailedStatusOf(states: WorkOrderState[]): string {
  const open = states.filter((s) => !isTerminal(s))
  if (open.length > 0) {
    for (const s of ['in_progress', 'scheduled', 'on_hold', 'accepted'] as const) if (open.includes(s)) return s
    return open.includes('sent') ? 'sent_to_department' : 'submitted'
  }
  if (states.includes('completed')) return 'completed'
  return 'needs_attention'
}

/**
 * Re-derives the request's status from its work orders and records the change as a request
 * update (with its own update_id). Closes the request — and its duplicates — when every work
 * order is final and the service's close rule says so.
 */
export async function recomputeRequest(tx: Db, requestId: number, source: UpdateSource): Promise<string> {
  const [request] = await tx
    .select({ id: serviceRequests.id, status: serviceRequests.status, closeRule: services.closeRule })
    .from(serviceRequests)
    .innerJoin(services, eq(services.id, serviceRequests.serviceId))
    .where(eq(serviceRequests.id, requestId))
    .for('update', { of: serviceRequests })
  if (!request) throw notFound('service request does not exist')
  const orders = await tx.select().from(workOrders).where(eq(workOrders.requestId, requestId))
  const states = orders.map((w) => w.state)
  const open = orders.filter((w) => !isTerminal(w.state))
  let detailed = detailedStatusOf(states)
  const allFinal = orders.length > 0 && open.length === 0
  const close = request.status === 'open' && allFinal && states.includes('completed') && request.closeRule === 'auto'
  if (allFinal && states.includes('completed') && request.closeRule === 'manual') detailed = 'work_completed'
  // The department's date when it gave one, else the service-level due date.
  const expected = open
    .map((w) => w.expectedAt ?? w.dueAt)
    .filter((d): d is Date => d !== null)
    .sort((a, b) => b.getTime() - a.getTime())[0]
  const approved = source.template
    ? await renderTemplate(
        tx,
        source.template,
        await noteContextOf(tx, requestId, {
          detailedStatus: detailed,
          expectedAt: expected ?? null,
          ...(source.externalStatusCode !== undefined ? { departmentStatusCode: source.externalStatusCode } : {}),
        }),
      )
    : undefined
  const note = approved?.text ?? source.note

  await tx
    .update(serviceRequests)
    .set({
      detailedStatus: request.status === 'closed' ? sql`${serviceRequests.detailedStatus}` : detailed,
      statusNotes: note,
      expectedAt: expected ?? null,
      ...(close ? { status: 'closed' as const, closedAt: sql`now()` } : {}),
    })
    .where(eq(serviceRequests.id, requestId))
  const [row] = await tx
    .insert(requestUpdates)
    .values({
      requestId,
      status: close ? 'closed' : request.status,
      detailedStatus: detailed,
      description: note,
      templateId: approved?.templateId ?? null,
      descriptionTranslations: approved?.translations ?? null,
      isAnswer: approved !== undefined || source.noteIsOwnWords === true,
      source: source.source,
      departmentId: source.departmentId ?? null,
      workOrderId: source.workOrderId ?? null,
      externalStatusCode: source.externalStatusCode ?? null,
      externalUpdateId: source.externalUpdateId ?? null,
    })
    .returning({ updateId: requestUpdates.updateId })
  if (close) await closeDuplicatesOf(tx, requestId)
  return row!.updateId
}
