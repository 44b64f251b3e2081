/**
 * A department's own status codes map onto our work-order lifecycle. Departments may send
 * our lifecycle names directly, or mySociety's extended status words (FixMyStreet and
 * open311-adapter speak those); anything else must be in the department's status map.
 * Unknown codes are refused, never guessed.
 */
import { WORK_ORDER_STATES, type WorkOrderState } from '../../db/schema.js'

const MYSOCIETY_WORDS: Record<string, WorkOrderState> = {
  OPEN: 'accepted',
  INVESTIGATING: 'accepted',
  FOR_TRIAGE: 'accepted',
  ACTION_SCHEDULED: 'scheduled',
  PLANNED: 'scheduled',
  IN_PROGRESS: 'in_progress',
  FIXED: 'completed',
  CLOSED: 'completed',
  NO_FURTHER_ACTION: 'completed',
  NOT_COUNCILS_RESPONSIBILITY: 'rejected',
  DUPLICATE: 'cancelled',
  CANCELLED: 'cancelled',
  INTERNAL_REFERRAL: 'reassigned',
}

/** The states a department may report; `pending` and `sent` belong to our side. */
export const REPORTABLE_STATES = WORK_ORDER_STATES.filter((s) => s !== 'pending' && s !== 'sent')

export function mapDepartmentStatus(code: string, statusMap: Record<string, string>): WorkOrderState | null {
  const mapped = statusMap[code] ?? statusMap[code.toUpperCase()]
  if (mapped) return (REPORTABLE_STATES as readonly string[]).includes(mapped) ? (mapped as WorkOrderState) : null
  if ((REPORTABLE_STATES as readonly string[]).includes(code.toLowerCase())) return code.toLowerCase() as WorkOrderState
  return MYSOCIETY_WORDS[code.toUpperCase()] ?? null
}

export function validateStatusMap(statusMap: Record<string, string>): string | null {
  for (const [code, state] of Object.entries(statusMap)) {
    if (!(REPORTABLE_STATES as readonly string[]).includes(state)) {
      return `status_map.${code}: "${state}" is not one of ${REPORTABLE_STATES.join(', ')}`
    }
  }
  return null
}
