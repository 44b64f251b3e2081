/**
 * Work orders: one per department a request is routed to, opened in the same transaction as
 * the request, moved forward by the department's reports, and the source of the request's
 * citizen-facing status. The request closes only when every work order is final (the
 * database refuses anything else, see migration 0005).
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import {
  requestTokens,
  requestUpdates,
  serviceRequests,
  services,
  TERMINAL_WORK_ORDER_STATES,
  type WorkOrderState,
  workOrders,
} from '../../db/schema.js'
import { conflict, forbidden, invalid, notFound } from '../errors.js'
import { type Department, findDepartment } from '../departments/departments.js'
import { enqueueWorkOrderEvent, workOrderPublicId } from './events.js'
import { canMove, detailedStatusOf, isTerminal } from './lifecycle.js'

export type WorkOrder = typeof workOrders.$inferSelect

export interface DepartmentReport {
  state: WorkOrderState
  /** The department's raw code, kept beside the mapped state. */
  externalStatusCode: string
  externalRef?: string
  expectedAt?: Date
  publicNote?: string
  internalNote?: string
  reason?: string
  /** For `reassigned`: the department code the work moves to. */
  reassignTo?: string
  /** When the department says the change happened; older reports never move the order back. */
  occurredAt: Date
  /** The sender's id for this update (mySociety `update_id`), unique per department. */
  externalUpdateId?: string
}

export type ReportOutcome =
  | { applied: true; updateId: string }
  | { applied: false; reason: 'stale' | 'final' | 'backwards'; updateId: string | null }

/*
 * Lock order, everywhere: the service request row first, then its work orders. Department
 * reports, operator closes and deliveries all touch both; one order means no deadlocks.
 */

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

/** Applies a department's report to a locked work order; never moves it backwards. */
export async function applyDepartmentReport(
  tx: Db,
  department: Department,
  workOrder: WorkOrder,
  report: DepartmentReport,
): Promise<ReportOutcome> {
  const stale = workOrder.lastEventAt !== null && report.occurredAt < workOrder.lastEventAt
  const refused: 'stale' | 'final' | 'backwards' | null = isTerminal(workOrder.state)
    ? 'final'
    : stale
      ? 'stale'
      : !canMove(workOrder.state, report.state)
        ? 'backwards'
        : null
  if (refused) {
    // The report is kept in the history (not public), so nothing a department said is lost.
    const notes = [report.publicNote, report.internalNote].filter(Boolean).join(' / ')
    const updateId = await recordUpdate(tx, workOrder, department, {
      description: `${department.name} reported ${report.externalStatusCode} (not applied: ${refused})${notes ? `: ${notes}` : ''}`,
      isPublic: false,
      externalStatusCode: report.externalStatusCode,
      externalUpdateId: report.externalUpdateId,
    })
    return { applied: false, reason: refused, updateId }
  }
  if (report.state === 'rejected' && !report.reason) throw invalid('reason: a rejection needs a reason')
  if (report.state === 'reassigned' && !report.reassignTo) throw invalid('reassign_to: a reassignment names the department the work moves to')

  let reassignedToId: number | null = null
  if (report.state === 'reassigned') {
    const target = await findDepartment(tx, department.jurisdictionId, report.reassignTo!)
    if (target.id === department.id) throw invalid('reassign_to: the work order already belongs to this department')
    const [opened] = await tx
      .insert(workOrders)
      .values({ requestId: workOrder.requestId, departmentId: target.id })
      .returning({ id: workOrders.id })
    reassignedToId = opened!.id
    await tx.update(serviceRequests).set({ agencyResponsible: target.name }).where(eq(serviceRequests.id, workOrder.requestId))
  }
  await tx
    .update(workOrders)
    .set({
      state: report.state,
      externalStatusCode: report.externalStatusCode,
      ...(report.externalRef ? { externalRef: report.externalRef } : {}),
      ...(report.expectedAt ? { expectedAt: report.expectedAt } : {}),
      ...(report.reason ? { reason: report.reason } : {}),
      ...(reassignedToId ? { reassignedToId } : {}),
      lastEventAt: report.occurredAt,
      updatedAt: sql`now()`,
    })
    .where(eq(workOrders.id, workOrder.id))
  if (reassignedToId) {
    await enqueueWorkOrderEvent(tx, 'work_order.reassigned', workOrder.id, { reassigned_to: workOrderPublicId(reassignedToId) })
    await enqueueWorkOrderEvent(tx, 'work_order.created', reassignedToId, { reassigned_from: workOrderPublicId(workOrder.id) })
  }
  if (report.internalNote) {
    await recordUpdate(tx, workOrder, department, { description: report.internalNote, isPublic: false, externalStatusCode: report.externalStatusCode })
  }
  if (ACKNOWLEDGING_STATES.includes(report.state)) await acceptDepartmentToken(tx, workOrder.requestId)
  if (report.state === 'rejected' || report.state === 'cancelled') {
    await failTokenIfNoOpenWork(tx, workOrder.requestId, `${department.name}: ${report.reason ?? report.state}`)
  }
  const updateId = await recomputeRequest(tx, workOrder.requestId, {
    source: 'department',
    departmentId: department.id,
    workOrderId: workOrder.id,
    note: report.publicNote ?? describeState(department, report),
    externalStatusCode: report.externalStatusCode,
    externalUpdateId: report.externalUpdateId,
  })
  return { applied: true, updateId }
}

function describeState(department: Department, report: DepartmentReport): string {
  const when = report.expectedAt ? ` for ${report.expectedAt.toISOString().slice(0, 10)}` : ''
  const words: Record<WorkOrderState, string> = {
    pending: 'waiting to be sent',
    sent: 'sent',
    accepted: 'accepted the work',
    scheduled: `scheduled the work${when}`,
    in_progress: 'started the work',
    on_hold: 'put the work on hold',
    completed: 'completed the work',
    cancelled: 'cancelled the work',
    rejected: `could not take the work: ${report.reason ?? ''}`.trim(),
    reassigned: 'passed the work to another department',
  }
  return `${department.name} ${words[report.state]}`
}

/** States in which a department has acknowledged the work. */
const ACKNOWLEDGING_STATES: WorkOrderState[] = ['accepted', 'scheduled', 'in_progress', 'on_hold', 'completed']

/** For services whose department issues the reference: the token resolves on acknowledgement. */
async function acceptDepartmentToken(tx: Db, requestId: number) {
  await tx
    .update(requestTokens)
    .set({ state: 'accepted', resolvedAt: sql`now()` })
    .where(and(eq(requestTokens.requestId, requestId), eq(requestTokens.state, 'pending')))
}

/** A client polling a token must learn that no department will acknowledge the request. */
async function failTokenIfNoOpenWork(tx: Db, requestId: number, reason: string) {
  await tx.execute(sql`update request_tokens set state = 'failed', failure_reason = ${reason}, resolved_at = now()
                       where request_id = ${requestId} and state = 'pending'
                         and not exists (select 1 from work_orders w where w.request_id = ${requestId}
                                         and w.state not in ${TERMINAL_WORK_ORDER_STATES})`)
}

interface UpdateSource {
  source: 'department' | 'operator' | 'system' | 'citizen'
  departmentId?: number
  workOrderId?: number
  note: string
  externalStatusCode?: string
  externalUpdateId?: string | undefined
}

async function recordUpdate(
  tx: Db,
  workOrder: WorkOrder,
  department: Department,
  entry: { description: string; isPublic: boolean; externalStatusCode?: string; externalUpdateId?: string | undefined },
): Promise<string> {
  const [request] = await tx
    .select({ status: serviceRequests.status, detailedStatus: serviceRequests.detailedStatus })
    .from(serviceRequests)
    .where(eq(serviceRequests.id, workOrder.requestId))
  const [row] = await tx
    .insert(requestUpdates)
    .values({
      requestId: workOrder.requestId,
      status: request!.status,
      detailedStatus: request!.detailedStatus,
      description: entry.description,
      isPublic: entry.isPublic,
      externalStatusCode: entry.externalStatusCode ?? null,
      source: 'department',
      departmentId: department.id,
      workOrderId: workOrder.id,
      externalUpdateId: entry.externalUpdateId ?? null,
    })
    .returning({ updateId: requestUpdates.updateId })
  return row!.updateId
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
  const expected = open
    .map((w) => w.expectedAt)
    .filter((d): d is Date => d !== null)
    .sort((a, b) => b.getTime() - a.getTime())[0]

  await tx
    .update(serviceRequests)
    .set({
      detailedStatus: request.status === 'closed' ? sql`${serviceRequests.detailedStatus}` : detailed,
      statusNotes: source.note,
      expectedAt: expected ?? null,
      updatedAt: sql`now()`,
      ...(close ? { status: 'closed' as const, closedAt: sql`now()` } : {}),
    })
    .where(eq(serviceRequests.id, requestId))
  const [row] = await tx
    .insert(requestUpdates)
    .values({
      requestId,
      status: close ? 'closed' : request.status,
      detailedStatus: detailed,
      description: source.note,
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

/** Austin's lesson: duplicates close when their parent closes. */
async function closeDuplicatesOf(tx: Db, parentId: number) {
  const children = await tx
    .select({ id: serviceRequests.id })
    .from(serviceRequests)
    .where(and(eq(serviceRequests.parentRequestId, parentId), eq(serviceRequests.status, 'open')))
  for (const child of children) {
    await closeRequestRow(tx, child.id, 'Closed with the request it duplicates', 'duplicate', 'system')
  }
}

async function closeRequestRow(tx: Db, requestId: number, note: string, detailed: string, source: UpdateSource['source']) {
  await tx
    .update(serviceRequests)
    .set({ status: 'closed', closedAt: sql`now()`, detailedStatus: detailed, statusNotes: note, updatedAt: sql`now()` })
    .where(eq(serviceRequests.id, requestId))
  const [row] = await tx
    .insert(requestUpdates)
    .values({ requestId, status: 'closed', detailedStatus: detailed, description: note, source })
    .returning({ updateId: requestUpdates.updateId })
  await closeDuplicatesOf(tx, requestId)
  return row!.updateId
}

async function lockRequest(tx: Db, jurisdictionId: string, publicId: string) {
  const [request] = await tx
    .select()
    .from(serviceRequests)
    .where(and(eq(serviceRequests.publicId, publicId), eq(serviceRequests.jurisdictionId, jurisdictionId)))
    .for('update')
  if (!request) throw notFound(`service_request_id "${publicId}" does not exist`)
  return request
}

/** Cancels a request's open work orders, telling each department why. */
async function cancelOpenWorkOrders(tx: Db, requestId: number, reason: string) {
  const open = await tx
    .select()
    .from(workOrders)
    .where(and(eq(workOrders.requestId, requestId), sql`${workOrders.state} not in ${TERMINAL_WORK_ORDER_STATES}`))
    .orderBy(asc(workOrders.id))
    .for('update')
  for (const w of open) {
    await tx
      .update(workOrders)
      .set({ state: 'cancelled', reason, updatedAt: sql`now()` })
      .where(eq(workOrders.id, w.id))
    await enqueueWorkOrderEvent(tx, 'work_order.cancelled', w.id, { reason })
  }
  return open
}

export interface CloseOptions {
  reason: string
  /** Cancel open work orders (notifying their departments) instead of refusing. */
  force?: boolean
}

/**
 * An operator closes a request. With open work orders this is refused (conflict, naming them)
 * unless forced with a reason, which cancels them first.
 */
export async function closeRequestByOperator(tx: Db, jurisdictionId: string, publicId: string, options: CloseOptions) {
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
  if (open.length > 0) await cancelOpenWorkOrders(tx, request.id, options.reason)
  await failTokenIfNoOpenWork(tx, request.id, `closed by 311: ${options.reason}`)
  const updateId = await closeRequestRow(tx, request.id, options.reason, 'closed', 'operator')
  for (const w of await tx.select({ id: workOrders.id }).from(workOrders).where(eq(workOrders.requestId, request.id))) {
    await enqueueWorkOrderEvent(tx, 'service_request.closed', w.id, { reason: options.reason })
  }
  return { updateId, cancelled: open.map((w) => workOrderPublicId(w.id)) }
}

/**
 * Marks a request as a duplicate of another: linked through parent_service_request_id, its
 * own open work orders cancelled (no second crew), and closed when the parent closes.
 */
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
    .set({ parentRequestId: originalId, detailedStatus: 'duplicate', statusNotes: `Duplicate of ${parentPublicId}`, updatedAt: sql`now()` })
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

export async function listWorkOrders(tx: Db, jurisdictionId: string, publicId: string) {
  const [request] = await tx
    .select({ id: serviceRequests.id })
    .from(serviceRequests)
    .where(and(eq(serviceRequests.publicId, publicId), eq(serviceRequests.jurisdictionId, jurisdictionId)))
  if (!request) throw notFound(`service_request_id "${publicId}" does not exist`)
  return tx.select().from(workOrders).where(inArray(workOrders.requestId, [request.id])).orderBy(asc(workOrders.id))
}

export interface RequestNote {
  source: 'citizen' | 'operator'
  description: string
  isPublic: boolean
  mediaUrls?: string[]
  /** The sender's own id for the note (mySociety update_id), making a repeat a no-op. */
  externalUpdateId?: string
}

/**
 * The citizen or 311 adds to a request (a comment, a photo, a correction). Departments with
 * open work orders hear of it through `service_request.updated`. Closed requests take no notes.
 */
export async function addRequestNote(tx: Db, jurisdictionId: string, publicId: string, note: RequestNote): Promise<{ updateId: string; replayed: boolean }> {
  const request = await lockRequest(tx, jurisdictionId, publicId)
  if (note.externalUpdateId) {
    const [existing] = await tx
      .select({ updateId: requestUpdates.updateId })
      .from(requestUpdates)
      .where(and(eq(requestUpdates.requestId, request.id), eq(requestUpdates.externalUpdateId, note.externalUpdateId), sql`${requestUpdates.departmentId} is null`))
    if (existing) return { updateId: existing.updateId, replayed: true }
  }
  if (request.status === 'closed') throw conflict(`service request ${publicId} is closed`)
  const [row] = await tx
    .insert(requestUpdates)
    .values({
      requestId: request.id,
      status: request.status,
      detailedStatus: request.detailedStatus,
      description: note.description,
      isPublic: note.isPublic,
      mediaUrls: note.mediaUrls ?? [],
      source: note.source,
      externalUpdateId: note.externalUpdateId ?? null,
    })
    .returning({ updateId: requestUpdates.updateId })
  await tx.update(serviceRequests).set({ updatedAt: sql`now()` }).where(eq(serviceRequests.id, request.id))
  const open = await tx
    .select({ id: workOrders.id })
    .from(workOrders)
    .where(and(eq(workOrders.requestId, request.id), sql`${workOrders.state} not in ${TERMINAL_WORK_ORDER_STATES}`))
  for (const w of open) {
    await enqueueWorkOrderEvent(tx, 'service_request.updated', w.id, {
      update: { update_id: row!.updateId, source: note.source, description: note.description, media_urls: note.mediaUrls ?? [], public: note.isPublic },
    })
  }
  return { updateId: row!.updateId, replayed: false }
}
