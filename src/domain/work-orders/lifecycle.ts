/**
 * The work-order lifecycle:
 *
 *   pending → sent → accepted → scheduled → in_progress ⇄ on_hold → completed
 *                                                     any open state → cancelled | rejected | reassigned
 *
 * A work order only moves forward (or sideways between in_progress and on_hold, or to a new
 * date while scheduled); a terminal state is final. These are the rules; transition.ts is the
 * one place that applies them to rows.
 */
import { TERMINAL_WORK_ORDER_STATES, type WorkOrderState } from '../../db/schema.js'

const RANK: Record<WorkOrderState, number> = {
  pending: 0,
  sent: 1,
  accepted: 2,
  scheduled: 3,
  in_progress: 4,
  on_hold: 4,
  completed: 5,
  cancelled: 5,
  rejected: 5,
  reassigned: 5,
}

/**
 * States in which the department has the work in hand: the first move into one acknowledges the
 * work order (its token resolves; reports time the acknowledgement from it, docs/reports.md).
 */
export const ACKNOWLEDGING_STATES: readonly WorkOrderState[] = ['accepted', 'scheduled', 'in_progress', 'on_hold', 'completed']

export function isTerminal(state: WorkOrderState): boolean {
  return (TERMINAL_WORK_ORDER_STATES as readonly string[]).includes(state)
}

/** Whether a work order in `from` may move to `to`. */
export function canMove(from: WorkOrderState, to: WorkOrderState): boolean {
  if (isTerminal(from)) return false
  return RANK[to] >= RANK[from]
}
