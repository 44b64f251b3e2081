/**
 * What deliveries to a department's endpoint mean for the department (the dispatcher in
 * integrations/webhooks only sends and records):
 *
 * - a delivery ends the department's failure run, and a delivered `work_order.created` moves
 *   its work order to `sent`;
 * - 410 Gone disables the endpoint at once; failing continuously for `disableAfterDays`
 *   disables it too. Both raise an operator alert, as does every dead letter.
 */
import { sql } from 'drizzle-orm'
import { type Db, queryRows, toDate } from '../../db/database.js'
import { DELIVERY_ACTOR, recordAudit } from '../audit/audit.js'
import { raiseOperatorAlert } from '../operator-alerts.js'
import { markWorkOrdersSent } from '../work-orders/mark-sent.js'
import { liveSecrets, type SecretSealer } from './departments.js'

export interface DeliveryPolicyOptions {
  secretBox: SecretSealer | null
  disableAfterDays: number
}

export function departmentDeliveryPolicy(db: Db, options: DeliveryPolicyOptions) {
  return {
    signingSecrets: (departmentId: number, now: Date) => liveSecrets(db, options.secretBox, departmentId, now),

    async delivered(rows: { id: number; destinationId: number }[]) {
      const departmentIds = [...new Set(rows.map((r) => r.destinationId))]
      await db.execute(sql`update departments set failing_since = null where id in ${departmentIds} and failing_since is not null`)
      await markWorkOrdersSent(
        db,
        rows.map((r) => r.id),
      )
    },

    async gone(tx: Db, departmentId: number, now: Date) {
      await disableDepartment(tx, departmentId, `the endpoint answered 410 Gone at ${now.toISOString()}`)
    },

    async failed(tx: Db, failure: { destinationId: number; eventId: string; attempts: number; error: string; deadLettered: boolean }, now: Date) {
      const departmentId = failure.destinationId
      if (failure.deadLettered) {
        await raiseOperatorAlert(
          tx,
          'delivery_dead_lettered',
          departmentId,
          `event ${failure.eventId} failed ${failure.attempts} attempts (last: ${failure.error}); replay it once the department is back`,
        )
      }
      const [department] = await queryRows<{ failing_since: string | null }>(
        tx,
        sql`update departments set failing_since = coalesce(failing_since, ${now.toISOString()}) where id = ${departmentId}
            returning failing_since`,
      )
      const failingFor = now.getTime() - toDate(department!.failing_since!).getTime()
      if (failingFor >= options.disableAfterDays * 86_400_000) {
        await disableDepartment(tx, departmentId, `deliveries have failed continuously for ${options.disableAfterDays} days`)
      }
    },
  }
}

/** Who disables a failing department: the worker that delivers to it. */

async function disableDepartment(tx: Db, departmentId: number, reason: string) {
  const disabled = await queryRows<{ code: string; jurisdiction_id: string; disabled_reason_before: string | null }>(
    tx,
    sql`update departments d set enabled = false, disabled_reason = ${reason}
        from departments before
        where d.id = ${departmentId} and before.id = d.id and d.enabled
        returning d.code, d.jurisdiction_id, before.disabled_reason as disabled_reason_before`,
  )
  if (disabled.length === 0) return
  const [department] = disabled
  await recordAudit(tx, DELIVERY_ACTOR, {
    action: 'department.disabled',
    entityType: 'department',
    entityId: department!.code,
    jurisdictionId: department!.jurisdiction_id,
    changes: { enabled: { before: true, after: false }, disabled_reason: { before: department!.disabled_reason_before, after: reason } },
  })
  await raiseOperatorAlert(tx, 'endpoint_disabled', departmentId, `department ${department!.code} disabled: ${reason}`)
}
