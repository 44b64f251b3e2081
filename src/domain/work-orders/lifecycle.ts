/**
 * The work-order lifecycle:
 *
 *   pending → sent → accepted → scheduled → in_progress ⇄ on_hold → completed
 *                                                     any open state → cancelled | rejected | reassigned
 *
 * A work order only moves forward (or sideways between in_progress and on_hold, or to a new
 * date while scheduled); a terminal state is final.
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

export function isTerminal(state: WorkOrderState): boolean {
  return (TERMINAL_WORK_ORDER_STATES as readonly string[]).includes(state)
}

/** Whether a work order in `from` may move to `to`. */
export function canMove(from: WorkOrderState, to: WorkOrderState): boolean {
  if (isTerminal(from)) return false
  return RANK[to] >= RANK[from]
}

/**
 * The citizen-facing detailed status of a request from its work orders: the most advanced
 * open work order speaks for the request.
 */
export function detailedStatusOf(states: WorkOrderState[]): string {
  const open = states.filter((s) => !isTerminal(s))
  if (open.length > 0) {
    for (const s of ['in_progress', 'scheduled', 'on_hold', 'accepted'] as const) if (open.includes(s)) return s
    return open.includes('sent') ? 'sent_to_department' : 'submitted'
  }
  if (states.includes('completed')) return 'completed'
  return 'needs_attention'
}
