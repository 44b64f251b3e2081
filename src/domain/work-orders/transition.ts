/**
 * The one way a work order changes state. Every mover — a department's report, 311 cancelling
 * the work, a delivery reaching the department — calls moveWorkOrders, which refuses what the
 * lifecycle forbids (lifecycle.ts). Behind it the database guards the request-level invariant
 * (no open work order on a closed request, migration 0005) whatever the code does.
 */
import { and, eq, inArray, type SQL, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { Db } from '../../db/database.js'
import { type WorkOrderState, workOrders } from '../../db/schema.js'
import { type AuditActor, changedFields, recordAudit } from '../audit/audit.js'
import { conflict } from '../errors.js'
import { workOrderPublicId } from './events.js'
import { ACKNOWLEDGING_STATES, canMove } from './lifecycle.js'

/** What may change beside the state: the department's code and reference, a date, a reason, a successor. */
export type WorkOrderChanges = Partial<
  Pick<typeof workOrders.$inferInsert, 'externalStatusCode' | 'externalRef' | 'expectedAt' | 'reason' | 'reassignedToId' | 'lastEventAt'>
>

/** When the change happened: when the department says, else now. */
function happenedAt(changes: WorkOrderChanges): SQL {
  return changes.lastEventAt ? sql`${new Date(changes.lastEventAt as Date).toISOString()}::timestamptz` : sql`now()`
}

/**
 * Completing after the due date is a breach, recorded like one found by the overdue sweep
 * (service-levels/overdue.ts), now: late or not by the completion time the reports count
 * (reportTime), so one completion is never both within due and a breach.
 */
function lateCompletion(changes: WorkOrderChanges): SQL {
  return sql`coalesce(${workOrders.overdueAt}, case when ${workOrders.dueAt} < ${reportTime(changes)} then now() end)`
}

/**
 * A report time (docs/reports.md) as the department dates it, kept between the work order's
 * opening and now: a department's clock ahead of ours, or a date before the work existed,
 * cannot make a duration negative or in the future.
 */
function reportTime(changes: WorkOrderChanges): SQL {
  return sql`greatest(${workOrders.createdAt}, least(${happenedAt(changes)}, now()))`
}

/** The report times a move to `to` sets: acknowledged once, completed when it completes. */
function reportTimes(to: WorkOrderState, changes: WorkOrderChanges): Partial<Record<'acknowledgedAt' | 'completedAt' | 'overdueAt', SQL>> {
  if (!ACKNOWLEDGING_STATES.includes(to)) return {}
  return {
    acknowledgedAt: sql`coalesce(${workOrders.acknowledgedAt}, ${reportTime(changes)})`,
    ...(to === 'completed' ? { completedAt: reportTime(changes), overdueAt: lateCompletion(changes) } : {}),
  }
}

/** The work order as it was, read by the update itself (its snapshot is from before the update). */
const before = alias(workOrders, 'before')

/** The columns a work order's audit entry speaks of, of the table as it is (`workOrders`) or as it was (`before`). */
const auditedColumns = (t: typeof workOrders | typeof before) => ({
  state: t.state,
  externalStatusCode: t.externalStatusCode,
  externalRef: t.externalRef,
  expectedAt: t.expectedAt,
  reason: t.reason,
  reassignedToId: t.reassignedToId,
  overdueAt: t.overdueAt,
})

type AuditedColumns = Pick<typeof workOrders.$inferSelect, keyof ReturnType<typeof auditedColumns>>

/** What a work order's audit entry says of it. */
const audited = (w: AuditedColumns) => ({
  state: w.state,
  external_status_code: w.externalStatusCode,
  external_ref: w.externalRef,
  expected_at: w.expectedAt,
  reason: w.reason,
  reassigned_to: w.reassignedToId === null ? null : workOrderPublicId(w.reassignedToId),
  overdue_at: w.overdueAt,
})

/**
 * Moves work orders, locked by the caller and as read under that lock, to `to`, for `actor`.
 * Refuses (conflict, naming each) and changes none when any of them may not move there. Each
 * moved work order gets an audit entry (`work_order.state_changed`, with its request): the
 * update returns each row before and after, so the entries cost one insert, no read.
 */
export async function moveWorkOrders(
  tx: Db,
  actor: AuditActor,
  orders: { id: number; state: WorkOrderState }[],
  to: WorkOrderState,
  changes: WorkOrderChanges = {},
): Promise<void> {
  const refused = orders.filter((order) => !canMove(order.state, to))
  if (refused.length > 0) {
    throw conflict(refused.map((order) => ({ description: `work order ${workOrderPublicId(order.id)} cannot move from ${order.state} to ${to}` })))
  }
  if (orders.length === 0) return
  const moved = await tx
    .update(workOrders)
    .set({ ...changes, state: to, ...reportTimes(to, changes), updatedAt: sql`now()` })
    .from(before)
    .where(
      and(
        eq(before.id, workOrders.id),
        inArray(
          workOrders.id,
          orders.map((order) => order.id),
        ),
      ),
    )
    .returning({
      id: workOrders.id,
      requestId: workOrders.requestId,
      after: auditedColumns(workOrders),
      before: auditedColumns(before),
    })
  await recordAudit(
    tx,
    actor,
    moved
      .sort((a, b) => a.id - b.id)
      .map((w) => ({
        action: 'work_order.state_changed',
        entityType: 'work_order',
        entityId: workOrderPublicId(w.id),
        requestId: w.requestId,
        changes: changedFields(audited(w.before), audited(w.after)),
      })),
  )
}
