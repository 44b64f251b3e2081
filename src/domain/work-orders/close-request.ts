/**
 * 311 closes a request. With open work orders this is refused (naming them) unless forced with
 * a reason, which cancels them first and tells each department why.
 */
import { and, asc, eq, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { TERMINAL_WORK_ORDER_STATES, workOrders } from '../../db/schema.js'
import { type AuditActor, recordAudit } from '../audit/audit.js'
import { conflict } from '../errors.js'
import { failTokenIfNoOpenWork } from '../requests/tokens.js'
import { enqueueWorkOrderEvents, workOrderPublicId } from './events.js'
import { closeRequestRow } from './request-closing.js'
import { moveWorkOrders } from './transition.js'
import { lockRequest } from './work-orders.js'

export interface CloseOptions {
  reason: string
  /** Cancel open work orders (notifying their departments) instead of refusing. */
  force?: boolean
}

/** Closes a request for `actor` (an operator's key, the CLI), with one audit entry for the close and one per work order cancelled. */
export async function closeRequestByOperator(tx: Db, actor: AuditActor, jurisdictionId: string, publicId: string, options: CloseOptions) {
  const request = await lockRequest(tx, jurisdictionId, publicId)
  if (request.status === 'closed') throw conflict(`service request ${publicId} is already closed`)
  const open = await tx
    .select({ id: workOrders.id, state: workOrders.state, departmentId: workOrders.departmentId })
    .from(workOrders)
    .where(and(eq(workOrders.requestId, request.id), sql`${workOrders.state} not in ${TERMINAL_WORK_ORDER_STATES}`))
    .orderBy(asc(workOrders.id))
  if (open.length > 0 && !options.force) {
    throw conflict([
      { description: `service request ${publicId} has open work orders; close them first or force with a reason` },
      ...open.map((w) => ({ code: 'open_work_order', description: `${workOrderPublicId(w.id)} is ${w.state}` })),
    ])
  }
  if (open.length > 0) await cancelOpenWorkOrders(tx, actor, request.id, options.reason)
  await failTokenIfNoOpenWork(tx, request.id, `closed by 311: ${options.reason}`)
  const updateId = await closeRequestRow(tx, request.id, options.reason, 'closed', 'operator')
  await recordAudit(tx, actor, {
    action: 'service_request.closed',
    entityType: 'service_request',
    entityId: publicId,
    requestId: request.id,
    jurisdictionId,
    changes: {
      status: { before: request.status, after: 'closed' },
      detailed_status: { before: request.detailedStatus, after: 'closed' },
      status_notes: { before: request.statusNotes, after: options.reason },
      update_id: { before: null, after: updateId },
    },
  })
  const all = await tx.select({ id: workOrders.id }).from(workOrders).where(eq(workOrders.requestId, request.id)).orderBy(asc(workOrders.id))
  await enqueueWorkOrderEvents(
    tx,
    'service_request.closed',
    all.map((w) => w.id),
    { reason: options.reason },
  )
  return { updateId, cancelled: open.map((w) => workOrderPublicId(w.id)) }
}

/** Cancels a request's open work orders, telling each department why (one `work_order.cancelled` each). */
export async function cancelOpenWorkOrders(tx: Db, actor: AuditActor, requestId: number, reason: string) {
  const open = await tx
    .select()
    .from(workOrders)
    .where(and(eq(workOrders.requestId, requestId), sql`${workOrders.state} not in ${TERMINAL_WORK_ORDER_STATES}`))
    .orderBy(asc(workOrders.id))
    .for('update')
  await moveWorkOrders(tx, actor, open, 'cancelled', { reason })
  await enqueueWorkOrderEvents(
    tx,
    'work_order.cancelled',
    open.map((w) => w.id),
    { reason },
  )
  return open
}
