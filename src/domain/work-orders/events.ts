/**
 * The outbound event catalog (version 1): what each event says, enqueued (src/outbox) in the
 * same transaction as the change they describe, so they exist exactly when the change does.
 *
 *   work_order.created       a department has new work (also after a reassignment)
 *   work_order.cancelled     311 cancelled the work (duplicate, forced close)
 *   work_order.reassigned    the work moved to another department
 *   service_request.updated  the citizen or 311 changed the request
 *   service_request.closed   311 closed the request
 *   work_order.overdue       the work is past its service-level due date (version 1.1)
 *
 * Versions only add: 1.1 added `work_order.overdue` and `work_order.due_at`.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { enqueue } from '../../outbox/outbox.js'

export const EVENT_CATALOG_VERSION = '1.1'

export type EventType =
  | 'work_order.created'
  | 'work_order.cancelled'
  | 'work_order.reassigned'
  | 'service_request.updated'
  | 'service_request.closed'
  | 'work_order.overdue'

export const workOrderPublicId = (id: number) => `WO-${id}`

/**
 * An event's outbox columns — (event_id, department_id, work_order_id, event_type, payload) —
 * with its data as a department sees it: the work order and its request, contact details only
 * for a department with receives_contact. Reads the aliases w (work order), d (department),
 * sr (request), s (service) and rr (reporter, null when none) of the FROM clause it is put in.
 */
function eventColumns(type: EventType, extra: Record<string, unknown>): SQL {
  return sql`'evt_' || rtrim(translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/', '-_'), '='),
      d.id, w.id, ${type}::text,
      jsonb_build_object(
        'type', ${type}::text,
        'version', ${EVENT_CATALOG_VERSION}::text,
        'timestamp', ${isoUtc(sql`clock_timestamp()`)},
        'data', jsonb_build_object(
          'work_order', jsonb_build_object(
            'id', 'WO-' || w.id, 'department', d.code, 'state', w.state, 'external_ref', w.external_ref, 'reason', w.reason,
            'due_at', ${isoUtc(sql`w.due_at`)}),
          'service_request', jsonb_build_object(
            'service_request_id', sr.public_id, 'status', sr.status, 'service_code', s.service_code, 'service_name', s.service_name,
            'description', sr.description, 'address', sr.address, 'address_id', sr.address_id, 'zipcode', sr.zipcode,
            'lat', ST_Y(sr.location::geometry), 'long', ST_X(sr.location::geometry),
            'media_urls', to_jsonb(sr.media_urls), 'attributes', sr.attributes,
            'requested_datetime', ${isoUtc(sql`sr.requested_at`)})
        ) || case when d.receives_contact
                  then jsonb_build_object('reporter', jsonb_build_object(
                    'email', rr.email, 'first_name', rr.first_name, 'last_name', rr.last_name, 'phone', rr.phone))
                  else '{}'::jsonb end
          || ${JSON.stringify(extra)}::jsonb)`
}

/** One outbox row per work order in `workOrderIds`, in id order: one statement writes every row. */
function eventRows(type: EventType, workOrderIds: number[], extra: Record<string, unknown>): SQL {
  return sql`
    select ${eventColumns(type, extra)}
    from work_orders w
    join departments d on d.id = w.department_id
    join service_requests sr on sr.id = w.request_id
    join services s on s.id = sr.service_id
    left join request_reporters rr on rr.request_id = sr.id
    where w.id in ${workOrderIds}
    order by w.id`
}

/**
 * The `work_order.created` rows for work orders opened in the same statement as their request
 * (src/domain/requests/submit-request.ts): the same columns as eventRows, read from that
 * statement's named steps — which a statement must do, since it cannot see the rows its own
 * steps write in the tables. `workOrders`, `request` and `reporter` name those steps (the
 * request step returns every service_requests column; the reporter step may return no row).
 */
export function newWorkOrderEventRows(steps: { workOrders: SQL; request: SQL; reporter: SQL }): SQL {
  return sql`
    select ${eventColumns('work_order.created', {})}
    from ${steps.workOrders} w
    join departments d on d.id = w.department_id
    cross join ${steps.request} sr
    join services s on s.id = sr.service_id
    left join ${steps.reporter} rr on true
    order by w.id`
}

/** A timestamp as JavaScript's toISOString() writes it: UTC, milliseconds, Z. */
const isoUtc = (value: SQL) => sql`to_char(${value} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

/**
 * Writes one event of `type` per work order into the outbox, in work-order id order, in the
 * caller's transaction, and wakes the dispatchers (NOTIFY is delivered at commit). Returns
 * the event ids.
 */
export async function enqueueWorkOrderEvents(tx: Db, type: EventType, workOrderIds: number[], extra: Record<string, unknown> = {}) {
  if (workOrderIds.length === 0) return []
  const eventIds = await enqueue(tx, eventRows(type, workOrderIds, extra))
  if (eventIds.length !== workOrderIds.length) throw new Error(`work orders ${workOrderIds.join(', ')}: only ${eventIds.length} found`)
  return eventIds
}

/** Writes one event for the work order's department into the outbox (caller's transaction). */
export async function enqueueWorkOrderEvent(tx: Db, type: EventType, workOrderId: number, extra: Record<string, unknown> = {}) {
  const [eventId] = await enqueueWorkOrderEvents(tx, type, [workOrderId], extra)
  return eventId!
}
