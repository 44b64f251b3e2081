/**
 * What departments report back, through either door — the signed webhook endpoint or
 * mySociety's POST servicerequestupdates — ends here: the code is mapped (unknown codes are
 * refused, never guessed), the department may touch only its own work orders, and the same
 * report applies once however often it arrives.
 */
import { and, eq, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { requestUpdates } from '../../db/schema.js'
import { DomainError, invalid } from '../errors.js'
import { departmentActor } from '../audit/audit.js'
import { markDuplicate } from '../work-orders/duplicates.js'
import { workOrderPublicId } from '../work-orders/events.js'
import { applyDepartmentReport, type DepartmentReport, type ReportOutcome } from '../work-orders/report-progress.js'
import { lockDepartmentWorkOrder, lockWorkOrderForRequest, type WorkOrder } from '../work-orders/work-orders.js'
import type { Department } from './departments.js'
import { mapDepartmentStatus, REPORTABLE_STATES } from './status-map.js'

export class UnknownStatusError extends DomainError {
  constructor(
    readonly department: string,
    readonly code: string,
  ) {
    super('invalid', `status: "${code}" is not a status code known for department ${department}; map it in the department's status_map (states: ${REPORTABLE_STATES.join(', ')})`)
  }
}

/** Clocks drift, but a report from the future would freeze a work order: later reports would look stale. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000

export function assertNotFuture(occurredAt: Date, field: string) {
  if (occurredAt.getTime() > Date.now() + MAX_CLOCK_SKEW_MS) throw invalid(`${field}: lies in the future`)
}

export interface StatusReport extends Omit<DepartmentReport, 'state' | 'externalStatusCode'> {
  code: string
}

function toReport(department: Department, report: StatusReport): DepartmentReport {
  const state = mapDepartmentStatus(report.code, department.statusMap)
  if (!state) throw new UnknownStatusError(department.code, report.code)
  return { ...report, state, externalStatusCode: report.code }
}

/**
 * Records that a signed callback with this id was received; false when it was already applied.
 * In the caller's transaction, so a failed apply leaves no mark and a retry applies.
 */
export async function firstDelivery(tx: Db, department: Department, eventId: string): Promise<boolean> {
  const rows = await queryRows<{ event_id: string }>(
    tx,
    sql`insert into inbound_events (department_id, event_id) values (${department.id}, ${eventId})
        on conflict do nothing returning event_id`,
  )
  return rows.length > 0
}

export async function reportWorkOrderStatus(tx: Db, department: Department, workOrderId: string, report: StatusReport): Promise<ReportOutcome> {
  const mapped = toReport(department, report)
  const workOrder = await lockDepartmentWorkOrder(tx, department, workOrderId)
  return applyDepartmentReport(tx, department, workOrder, mapped)
}

type Refusal = Extract<ReportOutcome, { applied: false }>['reason']

/** A department's update that cannot be applied, for a door whose answer has no "applied: false". */
export class ReportNotAppliedError extends DomainError {
  constructor(
    readonly externalUpdateId: string,
    readonly reason: Refusal,
    explanation: string,
  ) {
    super('conflict', `update ${externalUpdateId} not applied (${reason}): ${explanation}`)
  }
}

const NOT_APPLIED: Record<Refusal, (workOrder: WorkOrder, reported: string) => string> = {
  stale: (w) => `a later report was already applied to work order ${workOrderPublicId(w.id)}; send the current state with a later updated_datetime`,
  final: (w) => `work order ${workOrderPublicId(w.id)} is already ${w.state}; it cannot change`,
  backwards: (w, reported) => `work order ${workOrderPublicId(w.id)} is ${w.state}; it cannot move back to ${reported}`,
}

/**
 * mySociety's update: names the request; `update_id` makes it idempotent per department. Its
 * answer has no "applied" flag, so a report that is not applied (stale, final, backwards) is
 * refused with 409 and leaves nothing behind — never answered with an update_id as if it
 * were, so the back office sees the error and nothing it sent is lost without it knowing.
 */
export async function reportRequestUpdate(
  tx: Db,
  department: Department,
  serviceRequestId: string,
  report: StatusReport & { externalUpdateId: string },
): Promise<{ updateId: string; replayed: boolean; outcome?: ReportOutcome }> {
  const mapped = toReport(department, report)
  // Locking the work order first serialises concurrent copies of the same update.
  const workOrder: WorkOrder = await lockWorkOrderForRequest(tx, department, serviceRequestId)
  const [existing] = await tx
    .select({ updateId: requestUpdates.updateId })
    .from(requestUpdates)
    .where(and(eq(requestUpdates.departmentId, department.id), eq(requestUpdates.externalUpdateId, report.externalUpdateId)))
  if (existing) return { updateId: existing.updateId, replayed: true }
  const outcome = await applyDepartmentReport(tx, department, workOrder, mapped)
  if (!outcome.applied) throw new ReportNotAppliedError(report.externalUpdateId, outcome.reason, NOT_APPLIED[outcome.reason](workOrder, mapped.state))
  return { updateId: outcome.updateId, replayed: false, outcome }
}

/** A department says one of its requests duplicates another. */
export async function reportDuplicate(tx: Db, department: Department, serviceRequestId: string, parentId: string) {
  await lockWorkOrderForRequest(tx, department, serviceRequestId)
  return markDuplicate(tx, departmentActor(department), department.jurisdictionId, serviceRequestId, parentId, 'department')
}
