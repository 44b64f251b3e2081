/**
 * A department reports progress on one of its work orders (already mapped from its own code,
 * see departments/inbound.ts). A report never moves a work order backwards: one that is stale
 * (older than the last applied, at the precision its sender gave), backwards or about a final
 * work order is kept in the history, unapplied.
 */
import { eq } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { requestUpdates, serviceRequests, type WorkOrderState } from '../../db/schema.js'
import { type Department, findDepartment } from '../departments/departments.js'
import { departmentActor } from '../audit/audit.js'
import { invalid } from '../errors.js'
import { acceptDepartmentToken, failTokenIfNoOpenWork } from '../requests/tokens.js'
import { recomputeRequest } from './derived-status.js'
import { enqueueWorkOrderEvent, workOrderPublicId } from './events.js'
import { ACKNOWLEDGING_STATES, canMove, isTerminal } from './lifecycle.js'
import { announceWorkOrders, insertWorkOrders } from './open-work-orders.js'
import { moveWorkOrders } from './transition.js'
import type { WorkOrder } from './work-orders.js'

export interface DepartmentReport {
  state: WorkOrderState
  /** The department's raw code, kept beside the mapped state. */
  externalStatusCode: string
  externalRef?: string
  expectedAt?: Date
  publicNote?: string
  /** A pre-approved answer's code, instead of `publicNote` (templates/response-templates.ts). */
  template?: string
  internalNote?: string
  reason?: string
  /** For `reassigned`: the department code the work moves to. */
  reassignTo?: string
  /** When the department says the change happened; older reports never move the order back. */
  occurredAt: Date
  /**
   * How finely the sender gave `occurredAt`, in ms (default 1). A report is older than the last
   * applied one only at that precision: one given to the second, in the same second, is not.
   */
  occurredPrecisionMs?: number
  /** The sender's id for this update (mySociety `update_id`), unique per department. */
  externalUpdateId?: string
}

export type ReportOutcome =
  | { applied: true; updateId: string }
  | { applied: false; reason: 'stale' | 'final' | 'backwards'; updateId: string | null }

/** Why a report is not applied, or null when it is. */
function refusal(workOrder: WorkOrder, report: DepartmentReport): 'stale' | 'final' | 'backwards' | null {
  if (isTerminal(workOrder.state)) return 'final'
  const precision = report.occurredPrecisionMs ?? 1
  const lastAtPrecision = workOrder.lastEventAt && Math.floor(workOrder.lastEventAt.getTime() / precision) * precision
  if (lastAtPrecision !== null && report.occurredAt.getTime() < lastAtPrecision) return 'stale'
  return canMove(workOrder.state, report.state) ? null : 'backwards'
}

/** Applies a department's report to a work order it has locked (lock.ts). */
export async function applyDepartmentReport(
  tx: Db,
  department: Department,
  workOrder: WorkOrder,
  report: DepartmentReport,
): Promise<ReportOutcome> {
  if (report.template && report.publicNote) throw invalid('public_note, template: give one or the other, not both')
  const refused = refusal(workOrder, report)
  if (refused) {
    // Kept in the internal history (not public) and answered applied: false. On the mySociety door,
    // whose answer cannot say "not applied", the caller refuses it with 409 and this rolls back.
    const notes = [report.template && `template ${report.template}`, report.publicNote, report.internalNote].filter(Boolean).join(' / ')
    const updateId = await recordDepartmentNote(tx, workOrder, department, {
      description: `${department.name} reported ${report.externalStatusCode} (not applied: ${refused})${notes ? `: ${notes}` : ''}`,
      externalStatusCode: report.externalStatusCode,
      externalUpdateId: report.externalUpdateId,
    })
    return { applied: false, reason: refused, updateId }
  }
  if (report.state === 'rejected' && !report.reason) throw invalid('reason: a rejection needs a reason')
  if (report.state === 'reassigned' && !report.reassignTo) throw invalid('reassign_to: a reassignment names the department the work moves to')

  const successor = report.state === 'reassigned' ? await openSuccessor(tx, department, workOrder, report.reassignTo!) : null
  await moveWorkOrders(tx, departmentActor(department), [workOrder], report.state, {
    externalStatusCode: report.externalStatusCode,
    ...(report.externalRef ? { externalRef: report.externalRef } : {}),
    ...(report.expectedAt ? { expectedAt: report.expectedAt } : {}),
    ...(report.reason ? { reason: report.reason } : {}),
    ...(successor ? { reassignedToId: successor.id } : {}),
    // Never earlier than a report already applied (one in the same second may be, to the millisecond).
    lastEventAt: workOrder.lastEventAt && workOrder.lastEventAt > report.occurredAt ? workOrder.lastEventAt : report.occurredAt,
  })
  if (successor) {
    // The department losing the work hears first, then the one taking it over. Work-order ids,
    // with the departments' codes beside them (added within catalog version 1).
    await enqueueWorkOrderEvent(tx, 'work_order.reassigned', workOrder.id, {
      reassigned_to: workOrderPublicId(successor.id),
      reassigned_to_department: successor.departmentCode,
    })
    await announceWorkOrders(tx, [successor.id], {
      reassigned_from: workOrderPublicId(workOrder.id),
      reassigned_from_department: department.code,
    })
  }
  if (report.internalNote) {
    await recordDepartmentNote(tx, workOrder, department, { description: report.internalNote, externalStatusCode: report.externalStatusCode })
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
    noteIsOwnWords: report.publicNote !== undefined,
    ...(report.template ? { template: report.template } : {}),
    externalStatusCode: report.externalStatusCode,
    externalUpdateId: report.externalUpdateId,
  })
  return { applied: true, updateId }
}

/** A reassignment opens the work order of the department the work moves to (announced once the move is written); it answers for the request from now on. */
async function openSuccessor(tx: Db, department: Department, workOrder: WorkOrder, targetCode: string): Promise<{ id: number; departmentCode: string }> {
  const target = await findDepartment(tx, department.jurisdictionId, targetCode)
  if (target.id === department.id) throw invalid('reassign_to: the work order already belongs to this department')
  const [successorId] = await insertWorkOrders(tx, workOrder.requestId, [{ id: target.id }])
  await tx.update(serviceRequests).set({ agencyResponsible: target.name }).where(eq(serviceRequests.id, workOrder.requestId))
  return { id: successorId!, departmentCode: target.code }
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

/** A note from the department in the request's history, not public, at the request's current status. */
async function recordDepartmentNote(
  tx: Db,
  workOrder: WorkOrder,
  department: Department,
  entry: { description: string; externalStatusCode?: string; externalUpdateId?: string | undefined },
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
      isPublic: false,
      externalStatusCode: entry.externalStatusCode ?? null,
      source: 'department',
      departmentId: department.id,
      workOrderId: workOrder.id,
      externalUpdateId: entry.externalUpdateId ?? null,
    })
    .returning({ updateId: requestUpdates.updateId })
  return row!.updateId
}
