/**
 * Service levels (issue 15, "Deadlines"): business time on the jurisdiction's calendar, a due
 * date on every work order when it opens (the service's target or the department's own), the
 * clock restarting on reassignment, and expected_datetime showing the due date until a
 * department gives a date of its own. Known instants, checked by hand.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'

const TZ = 'America/Chicago'
const h = await buildDepartmentHarness(t, {
  jurisdiction: {
    id: 'sla.test.example',
    name: 'Deadline City',
    time_zone: TZ,
    calendar: { working_days: [1, 2, 3, 4, 5], opens: '08:00', closes: '17:00', holidays: ['2026-12-25'] },
  },
  services: [
    { service_code: 'pothole', service_name: 'Pothole', service_level: { business_days: 2 } },
    { service_code: 'water-main', service_name: 'Water main break', service_level: { hours: 4 } },
    { service_code: 'graffiti', service_name: 'Graffiti' },
  ],
})
const { app, rows } = h
const streets = await h.registerDepartment({ code: 'streets' })
await h.registerDepartment({ code: 'parks' })
await h.registerDepartment({ code: 'water' })
await h.setRoutes('pothole', [{ department: 'streets' }])
await h.setRoutes('water-main', [{ department: 'water' }, { department: 'streets' }])
await h.setRoutes('graffiti', [{ department: 'parks' }])
const admin = h.asAdmin

/** `minutes` of business time after `start` on the test calendar, as an ISO instant. */
async function businessDue(start: string, minutes: number): Promise<string> {
  const [row] = await rows<{ due: Date | string }>(
    sql`select open311_add_business_minutes(${start}::timestamptz, ${minutes}, ${TZ}, '{1,2,3,4,5}'::smallint[], '08:00', '17:00', '{2026-12-25}'::date[]) as due`,
  )
  return new Date(row!.due).toISOString()
}
const DAY = 9 * 60

t.test('business time: working hours of working days, holidays skipped, in the jurisdiction’s zone', async (t) => {
  // Chicago is UTC-6 in winter (CST), UTC-5 in summer (CDT).
  t.equal(await businessDue('2026-12-07T10:00:00-06:00', DAY), '2026-12-08T16:00:00.000Z', 'Monday 10:00 + 1 day = Tuesday 10:00')
  t.equal(await businessDue('2026-12-11T16:00:00-06:00', DAY), '2026-12-14T22:00:00.000Z', 'Friday 16:00 + 1 day = Monday 16:00 (1 h Friday, 8 h Monday)')
  t.equal(await businessDue('2026-12-12T11:00:00-06:00', DAY), '2026-12-14T23:00:00.000Z', 'Saturday: the clock starts Monday 08:00, due Monday 17:00')
  t.equal(await businessDue('2026-12-07T06:30:00-06:00', 60), '2026-12-07T15:00:00.000Z', 'before opening: counts from 08:00')
  t.equal(await businessDue('2026-12-07T17:00:00-06:00', 60), '2026-12-08T15:00:00.000Z', 'at closing: counts from the next opening')
  t.equal(await businessDue('2026-12-24T10:00:00-06:00', DAY), '2026-12-28T16:00:00.000Z', 'Thursday 24 + 1 day skips Friday 25 (a holiday) and the weekend')
  t.equal(await businessDue('2026-10-30T12:00:00-05:00', DAY), '2026-11-02T18:00:00.000Z', 'across the end of DST: Friday 12:00 CDT + 1 day = Monday 12:00 CST')
  t.equal(await businessDue('2026-12-07T10:00:00-06:00', 2 * DAY), '2026-12-09T16:00:00.000Z', 'two days')
})

const dueOf = async (workOrderId: string) => {
  const [row] = await rows<{ due_at: Date | string | null; created_at: Date | string }>(
    sql`select due_at, created_at from work_orders where id = ${Number(workOrderId.slice(3))}`,
  )
  return { due: row!.due_at === null ? null : new Date(row!.due_at), created: new Date(row!.created_at) }
}

t.test('a work order is due its service’s target after it opens; no target, no deadline', async (t) => {
  const id = await h.createRequest('water-main')
  const orders = await h.workOrders(id)
  t.equal(orders.length, 2)
  for (const order of orders) {
    const { due, created } = await dueOf(order.id)
    t.equal(due!.getTime() - created.getTime(), 4 * 3_600_000, `${order.id}: four clock hours`)
  }
  const pothole = await h.createRequest('pothole')
  const [potholeOrder] = await h.workOrders(pothole)
  const { due, created } = await dueOf(potholeOrder!.id)
  t.equal(due!.toISOString(), await businessDue(created.toISOString(), 2 * DAY), 'two business days on the calendar')
  const graffiti = await h.createRequest('graffiti')
  t.equal((await dueOf((await h.workOrders(graffiti))[0]!.id)).due, null, 'a service without a level has no deadline')
  t.equal((await h.publicRequest(graffiti)).expected_datetime ?? null, null, 'and no expected_datetime')
})

t.test('a department’s own level replaces the service’s for its work orders only', async (t) => {
  const put = await app.inject({
    method: 'PUT',
    url: '/admin/v1/departments/streets/service-levels',
    headers: admin,
    payload: { service_levels: [{ service_code: 'water-main', hours: 24 }] },
  })
  t.equal(put.statusCode, 200, put.body)
  t.same(put.json(), { service_levels: [{ service_code: 'water-main', hours: 24 }] })
  t.same((await app.inject({ url: '/admin/v1/departments/streets/service-levels', headers: admin })).json(), put.json(), 'read back')

  const id = await h.createRequest('water-main')
  const byDepartment = new Map<number, number>()
  for (const order of await h.workOrders(id)) {
    const { due, created } = await dueOf(order.id)
    byDepartment.set(order.department_id, (due!.getTime() - created.getTime()) / 3_600_000)
  }
  const [streetsRow] = await rows<{ id: number }>(sql`select id from departments where code = 'streets'`)
  t.equal(byDepartment.get(Number(streetsRow!.id)), 24, 'streets: its own 24 hours')
  t.same([...byDepartment.values()].sort((a, b) => a - b), [4, 24], 'water: the service’s 4 hours')

  for (const [payload, pattern] of [
    [{ service_levels: [{ service_code: 'nope', hours: 1 }] }, /no service nope/],
    [{ service_levels: [{ service_code: 'pothole', hours: 1 }, { service_code: 'pothole', business_days: 1 }] }, /pothole appears more than once/],
    [{ service_levels: [{ service_code: 'pothole', hours: 1, business_days: 1 }] }, /must NOT have more than 2 properties/],
    [{ service_levels: [{ service_code: 'pothole' }] }, /must NOT have fewer than 2 properties/],
    [{ service_levels: [{ service_code: 'pothole', hours: 0 }] }, /must be >= 1/],
  ] as const) {
    const refused = await app.inject({ method: 'PUT', url: '/admin/v1/departments/streets/service-levels', headers: admin, payload })
    t.equal(refused.statusCode, 400, JSON.stringify(payload))
    t.match(refused.json(), [{ code: 400, description: pattern }])
  }
  t.same((await app.inject({ url: '/admin/v1/departments/streets/service-levels', headers: admin })).json(), put.json(), 'refusals changed nothing')
  const unknown = await app.inject({ url: '/admin/v1/departments/nobody/service-levels', headers: admin })
  t.equal(unknown.statusCode, 404)
  const cleared = await app.inject({ method: 'PUT', url: '/admin/v1/departments/streets/service-levels', headers: admin, payload: { service_levels: [] } })
  t.same(cleared.json(), { service_levels: [] })
})

t.test('expected_datetime is the due date until a department gives a date; the due date stays the commitment', async (t) => {
  const id = await h.createRequest('water-main')
  const orders = await h.workOrders(id)
  const dues = await Promise.all(orders.map(async (o) => (await dueOf(o.id)).due!.getTime()))
  const view = await h.publicRequest(id)
  t.equal(Date.parse(view.expected_datetime!), Math.floor(Math.max(...dues) / 1000) * 1000, 'the latest due date of its work orders, at second precision')
  t.match(view.expected_datetime, /-0[56]:00$/, 'in the jurisdiction’s time zone')

  const [streetsRow] = await rows<{ id: number }>(sql`select id from departments where code = 'streets'`)
  const streetsOrder = orders.find((o) => o.department_id === Number(streetsRow!.id))!
  const scheduled = await h.statusChanged(streets, { work_order_id: streetsOrder.id, status: 'scheduled', expected_datetime: '2027-01-15T09:00:00-06:00' })
  t.equal(scheduled.statusCode, 200, scheduled.body)
  const after = await h.publicRequest(id)
  const otherDue = dues[orders.indexOf(orders.find((o) => o !== streetsOrder)!)]!
  t.equal(Date.parse(after.expected_datetime!), Math.max(Date.parse('2027-01-15T09:00:00-06:00'), Math.floor(otherDue / 1000) * 1000), 'the department’s date where given, the due date elsewhere')
  t.equal((await dueOf(streetsOrder.id)).due!.getTime(), dues[orders.indexOf(streetsOrder)], 'the due date did not move')
  const listed = (await h.workOrders(id)).find((o) => o.id === streetsOrder.id) as unknown as Record<string, unknown>
  t.match(listed, { expected_at: '2027-01-15T15:00:00.000Z', due_at: new Date(dues[orders.indexOf(streetsOrder)]!).toISOString(), overdue_at: null }, 'operators see both')
})

t.test('reassignment: the clock starts again for the department the work passes to', async (t) => {
  const id = await h.createRequest('pothole')
  const [first] = await h.workOrders(id)
  const moved = await h.statusChanged(streets, { work_order_id: first!.id, status: 'reassigned', reassign_to: 'parks', reason: 'in the park' })
  t.equal(moved.statusCode, 200, moved.body)
  const [, second] = await h.workOrders(id)
  const { due, created } = await dueOf(second!.id)
  t.equal(due!.toISOString(), await businessDue(created.toISOString(), 2 * DAY), 'two business days from the reassignment')
})

t.test('work_order.created tells the department its due date', async (t) => {
  const id = await h.createRequest('water-main')
  const orders = await h.workOrders(id)
  const events = await h.outboxEvents(orders.map((o) => o.id))
  t.equal(events.length, 2)
  for (const event of events) {
      const workOrder = event.payload.data.work_order as unknown as { id: string; due_at: string }
    t.equal(workOrder.id, `WO-${event.work_order_id}`)
    t.equal(workOrder.due_at, (await dueOf(workOrder.id)).due!.toISOString(), `${workOrder.id}: due_at in UTC with milliseconds`)
  }
})

t.test('the catalog: calendar and service levels are validated, stored and read back', async (t) => {
  const catalog = (jurisdiction: Record<string, unknown>, service: Record<string, unknown> = {}) => ({
    jurisdiction: { id: 'sla.test.example', name: 'Deadline City', time_zone: TZ, ...jurisdiction },
    services: [{ service_code: 'pothole', service_name: 'Pothole', ...service }],
  })
  for (const [body, pattern] of [
    [catalog({ calendar: { opens: '17:00', closes: '08:00' } }), /calendar\.closes 08:00 is not after opens/],
    [catalog({ calendar: { holidays: ['2026-02-30'] } }), /holidays\[0\] "2026-02-30" is not a date/],
    [catalog({ calendar: { working_days: [0] } }), /working_days/],
    [catalog({ calendar: { opens: '8am' } }), /opens/],
    [catalog({}, { service_level: { hours: 4, business_days: 1 } }), /service_level/],
    [catalog({}, { service_level: { minutes: 4 } }), /service_level/],
  ] as const) {
    const refused = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: admin, payload: body })
    t.equal(refused.statusCode, 400, JSON.stringify(body))
    t.match(refused.json(), [{ description: pattern }])
  }
  const listed = (await app.inject({ url: '/admin/v1/services?jurisdiction_id=sla.test.example', headers: admin })).json() as { service_code: string; service_level?: unknown }[]
  t.same(
    Object.fromEntries(listed.map((s) => [s.service_code, s.service_level ?? null])),
    { graffiti: null, pothole: { business_days: 2 }, 'water-main': { hours: 4 } },
    'service levels read back in catalog form',
  )
  const [calendar] = await rows<{ working_days: number[]; opens_at: string; closes_at: string; holidays: string[] }>(
    sql`select working_days, opens_at::text, closes_at::text, holidays::text[] from jurisdictions where id = 'sla.test.example'`,
  )
  t.same(calendar, { working_days: [1, 2, 3, 4, 5], opens_at: '08:00:00', closes_at: '17:00:00', holidays: ['2026-12-25'] })
})
