/**
 * Webhook delivery to departments: the generic dispatcher (integrations/webhooks) run with the
 * departments' delivery policy (domain/departments). Joined here so that neither of the two
 * imports the other.
 */
import { departmentDeliveryPolicy, type DeliveryPolicyOptions } from '../domain/departments/delivery-policy.js'
import { type DispatcherOptions, deliverDue as dispatchDue } from '../integrations/webhooks/dispatcher.js'

export type DepartmentDeliveryOptions = Omit<DispatcherOptions, 'policy'> & DeliveryPolicyOptions

/** Claims one batch of due deliveries to departments and delivers it; returns how many were claimed. */
export function deliverDue(options: DepartmentDeliveryOptions): Promise<number> {
  return dispatchDue({ ...options, policy: departmentDeliveryPolicy(options.db, options) })
}
