/**
 * The outbound event catalog (version 1) and the outbox writer. Events are written in the
 * same transaction as the change they describe, so they exist exactly when the change does.
 *
 *   work_order.created       a department has new work (also after a reassignment)
 *   work_order.cancelled     311 cancelled the work (duplicate, forced close)
 *   work_order.reassigned    the work moved to another department
 *   service_request.updated  the citizen or 311 changed the request
 *   service_request.closed   311 closed the request
 */
import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { type Db, queryRows, toDate } from '../../db/database.js'
import { outbox } from '../../db/schema.js'

export const EVENT_CATALOG_VERSION = '1'
export const OUTBOX_CHANNEL = 'open311_outbox'

export type EventType =
  | 'work_order.created'
  | 'work_order.cancelled'
  | 'work_order.reassigned'
  | 'service_request.updated'
  | 'service_request.closed'

export const workOrderPublicId = (id: number) => `WO-${id}`

interface WorkOrderContext {
  work_order_id: number
  state: string
  external_ref: string | null
  expected_at: string | null
  reason: string | null
  department_id: number
  department: string
  receives_contact: boolean
  service_request_id: string
  service_code: string
  service_name: string
  description: string | null
  address: string | null
  address_id: string | null
  zipcode: string | null
  lat: number | null
  long: number | null
  media_urls: string[]
  attributes: Record<string, unknown>
  requested_at: string
  status: string
  email: string | null
  first_name: string | null
  last_name: string | null
  phone: string | null
}

/** The work order and its request as a department sees them; contact only where allowed. */
async function snapshot(tx: Db, workOrderId: number) {
  const [c] = await queryRows<WorkOrderContext>(
    tx,
    sql`select w.id as work_order_id, w.state, w.external_ref, w.expected_at, w.reason,
               d.id as department_id, d.code as department, d.receives_contact,
               sr.public_id as service_request_id, s.service_code, s.service_name, sr.description,
               sr.address, sr.address_id, sr.zipcode,
               ST_Y(sr.location::geometry) as lat, ST_X(sr.location::geometry) as long,
               sr.media_urls, sr.attributes, sr.requested_at, sr.status,
               rr.email, rr.first_name, rr.last_name, rr.phone
        from work_orders w
        join departments d on d.id = w.department_id
        join service_requests sr on sr.id = w.request_id
        join services s on s.id = sr.service_id
        left join request_reporters rr on rr.request_id = sr.id
        where w.id = ${workOrderId}`,
  )
  if (!c) throw new Error(`work order ${workOrderId} not found`)
  return {
    departmentId: Number(c.department_id),
    data: {
      work_order: {
        id: workOrderPublicId(Number(c.work_order_id)),
        department: c.department,
        state: c.state,
        external_ref: c.external_ref,
        reason: c.reason,
      },
      service_request: {
        service_request_id: c.service_request_id,
        status: c.status,
        service_code: c.service_code,
        service_name: c.service_name,
        description: c.description,
        address: c.address,
        address_id: c.address_id,
        zipcode: c.zipcode,
        lat: c.lat,
        long: c.long,
        media_urls: c.media_urls,
        attributes: c.attributes,
        requested_datetime: toDate(c.requested_at).toISOString(),
      },
      ...(c.receives_contact
        ? { reporter: { email: c.email, first_name: c.first_name, last_name: c.last_name, phone: c.phone } }
        : {}),
    },
  }
}

/** Writes one event for the work order's department into the outbox (caller's transaction). */
export async function enqueueWorkOrderEvent(tx: Db, type: EventType, workOrderId: number, extra: Record<string, unknown> = {}) {
  const { departmentId, data } = await snapshot(tx, workOrderId)
  const eventId = `evt_${randomBytes(16).toString('base64url')}`
  await tx.insert(outbox).values({
    eventId,
    departmentId,
    workOrderId,
    eventType: type,
    payload: { type, version: EVENT_CATALOG_VERSION, timestamp: new Date().toISOString(), data: { ...data, ...extra } },
  })
  await tx.execute(sql`select pg_notify(${OUTBOX_CHANNEL}, '')`)
  return eventId
}
