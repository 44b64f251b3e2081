/**
 * The event catalog's payloads, field by field: what a department's system parses. Pinned
 * here so that the SQL that builds them (one statement per event, or per new request) can
 * change without a department noticing.
 */
import { eq } from 'drizzle-orm'
import t from 'tap'
import { serviceRequests } from '../../src/db/schema.js'
import { setupHarness } from './fixtures.js'

const h = await setupHarness(t)
const { app } = h

const roads = await h.registerDepartment('roads')
const lights = await h.registerDepartment('lights', { receives_contact: true })
const routed = await app.inject({
  method: 'PUT',
  url: '/admin/v1/services/pothole/routes',
  headers: h.admin,
  payload: [{ department: 'roads' }, { department: 'lights' }],
})
if (routed.statusCode !== 200) throw new Error(`routing: ${routed.body}`)

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

const reporter = { email: 'ada@example.org', first_name: 'Ada', last_name: 'Lovelace', phone: '555-0100' }
const requestId = await h.submit('pothole', {
  'attribute[size]': 'LARGE',
  description: 'Deep hole by the bus stop',
  address_string: '121 N LaSalle St',
  address_id: 'ADDR-77',
  zipcode: '60602',
  media_url: 'https://photos.example.org/hole.jpg',
  ...reporter,
})
const [stored] = await app.db.select().from(serviceRequests).where(eq(serviceRequests.publicId, requestId))
const workOrders = await h.workOrdersOf(requestId)

const serviceRequest = {
  service_request_id: requestId,
  status: 'open',
  service_code: 'pothole',
  service_name: 'Pothole',
  description: 'Deep hole by the bus stop',
  address: '121 N LaSalle St',
  address_id: 'ADDR-77',
  zipcode: '60602',
  lat: 41.8781,
  long: -87.6298,
  media_urls: ['https://photos.example.org/hole.jpg'],
  attributes: { size: 'LARGE' },
  requested_datetime: stored!.requestedAt.toISOString(),
}

const eventsOf = async (department: string) => (await h.outboxOf(department)).map((row) => ({ row, payload: row.payload as Record<string, unknown> }))

t.test('work_order.created: one per routed department, in the request’s transaction', async (t) => {
  t.equal(workOrders.length, 2, 'a work order for each department')
  t.equal(stored!.agencyResponsible, 'Department roads, Department lights', 'agency_responsible names them in routing order')
  for (const [code, department, withContact] of [['roads', roads, false], ['lights', lights, true]] as const) {
    const events = await eventsOf(code)
    t.equal(events.length, 1, `${code}: one event`)
    const [{ row, payload }] = events as [(typeof events)[number]]
    const workOrder = workOrders.find((w) => w.departmentId === department.id)!
    t.match(row.eventId, /^evt_[A-Za-z0-9_-]{22}$/, `${code}: event id`)
    t.equal(row.eventType, 'work_order.created')
    t.equal(row.workOrderId, workOrder.id)
    t.match(payload.timestamp, ISO_MS, `${code}: timestamp, UTC with milliseconds`)
    t.same(
      { ...payload, timestamp: 'checked' },
      {
        type: 'work_order.created',
        version: '1.1',
        timestamp: 'checked',
        data: {
          work_order: { id: `WO-${workOrder.id}`, department: code, state: 'pending', external_ref: null, reason: null, due_at: null },
          service_request: serviceRequest,
          ...(withContact ? { reporter } : {}),
        },
      },
      `${code}: the whole payload${withContact ? ', with the reporter’s contact' : ', without contact details'}`,
    )
  }
  t.not((await eventsOf('roads'))[0]!.row.eventId, (await eventsOf('lights'))[0]!.row.eventId, 'event ids differ')
})

t.test('a forced close: work_order.cancelled and service_request.closed carry the reason', async (t) => {
  const closed = await app.inject({
    method: 'POST',
    url: `/admin/v1/requests/${requestId}/close`,
    headers: h.admin,
    payload: { reason: 'reported twice by phone', force: true },
  })
  t.equal(closed.statusCode, 200)
  for (const [code, department] of [['roads', roads], ['lights', lights]] as const) {
    const events = (await eventsOf(code)).slice(1)
    const workOrder = workOrders.find((w) => w.departmentId === department.id)!
    t.same(events.map((e) => e.row.eventType), ['work_order.cancelled', 'service_request.closed'], `${code}: in commit order`)
    const [cancelled, closing] = events as [(typeof events)[number], (typeof events)[number]]
    t.match(cancelled.payload, {
      type: 'work_order.cancelled',
      data: { work_order: { id: `WO-${workOrder.id}`, state: 'cancelled', reason: 'reported twice by phone' }, reason: 'reported twice by phone' },
    })
    t.match(closing.payload, {
      type: 'service_request.closed',
      data: { service_request: { service_request_id: requestId, status: 'closed' }, reason: 'reported twice by phone' },
    })
    t.equal('reporter' in (closing.payload.data as object), code === 'lights', `${code}: contact only where allowed`)
  }
})
