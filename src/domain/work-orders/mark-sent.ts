/**
 * A delivered `work_order.created` means the department has the work: its work order becomes
 * `sent`, and a request still at `submitted` says so publicly (one update per request).
 */
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import type { WorkOrderState } from '../../db/schema.js'
import { DELIVERY_ACTOR } from '../audit/audit.js'
import { moveWorkOrders } from './transition.js'

/** Who moves a delivered work order to `sent`: the worker that delivered it. */

/** Marks the work orders whose created events (outbox rows `outboxIds`) were delivered, for a whole batch at once. */
export async function markWorkOrdersSent(db: Db, outboxIds: number[]) {
  await db.transaction(async (tx) => {
    // The requests first, then their work orders: the lock order every writer uses.
    await tx.execute(sql`select sr.id from service_requests sr
                         where sr.id in (select w.request_id from work_orders w join outbox o on o.work_order_id = w.id
                                         where o.id in ${outboxIds} and o.event_type = 'work_order.created' and w.state = 'pending')
                         order by sr.id for update of sr`)
    const sent = await queryRows<{ id: number; state: WorkOrderState; request_id: number; department: string }>(
      tx,
      sql`select w.id, w.state, w.request_id, d.name as department
          from work_orders w join outbox o on o.work_order_id = w.id join departments d on d.id = w.department_id
          where o.id in ${outboxIds} and o.event_type = 'work_order.created' and w.state = 'pending'
          order by w.id for update of w`,
    )
    if (sent.length === 0) return
    await moveWorkOrders(
      tx,
      DELIVERY_ACTOR,
      sent.map((w) => ({ id: Number(w.id), state: w.state })),
      'sent',
    )
    const requestIds = [...new Set(sent.map((s) => Number(s.request_id)))]
    const moved = await queryRows<{ id: number }>(
      tx,
      sql`update service_requests set detailed_status = 'sent_to_department'
          where id in ${requestIds} and status = 'open' and detailed_status = 'submitted' returning id`,
    )
    if (moved.length === 0) return
    const updates = moved.map(({ id }) => ({
      id: Number(id),
      description: `Sent to ${sent.filter((s) => Number(s.request_id) === Number(id)).map((s) => s.department).join(', ')}`,
    }))
    // One statement for the batch: a round trip per request capped a batch's throughput.
    await tx.execute(sql`insert into request_updates (request_id, status, detailed_status, description, source)
                         select v.id, 'open', 'sent_to_department', v.description, 'system'
                         from jsonb_to_recordset(${JSON.stringify(updates)}::jsonb) as v(id bigint, description text)
                         order by v.id`)
  })
}
