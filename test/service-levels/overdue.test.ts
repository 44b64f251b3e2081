/**
 * Overdue work (issue 15): the sweep marks open work orders past their due date once, tells the
 * department (`work_order.overdue`, event catalog 1.1, payload pinned here), alerts the
 * operators and lists them in `GET /admin/v1/work-orders?overdue=true`; a late completion is a
 * breach too. The sweep takes its clock as an argument: these tests move it, not the database's.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { markOverdueWorkOrders } from '../../src/domain/service-levels/overdue.js'
import { buildDepartmentHarness, startReceiver } from '../departments/fixtures/harness.js'

const HOUR = 3_600_000
const waterReceiver = await startReceiver(t)
const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'overdue.test.example', name: 'Overdue City', time_zone: 'America/Chicago' },
  services: [
    { service_code: 'water-main', service_name: 'Water main break', service_level: { hours: 4 } },
    { service_code: 'graffiti', service_name: 'Graffiti' },
  ],
})
const { app, rows } = h
const water = await h.registerDepartment({ code: 'water', webhook_url: waterReceiver.url })
await h.registerDepartment({ code: 'streets' })
await h.setRoutes('water-main', [{ department: 'water' }])
await h.setRoutes('graffiti', [{ department: 'streets' }])

async function workOrderRow(id: string) {
  const [row] = await rows<{ due_at: Date | string | null; overdue_at: Date | string | null; created_at: Date | string }>(
    sql`select due_at, overdue_at, created_at from work_orders where id = ${Number(id.slice(3))}`,
  )
  const at = (value: Date | string | null) => (value === null ? null : new Date(value))
  return { due: at(row!.due_at), overdue: at(row!.overdue_at), created: new Date(row!.created_at) }
}
const overdueList = async (query = '') => {
  const res = await app.inject({ url: `/admin/v1/work-orders?overdue=true${query}`, headers: h.asAdmin })
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
  return res.json() as { id: string; service_request_id: string; department: string; due_at: string; overdue_at: string }[]
}

t.test('past its due date, an open work order is marked once, its department told, the operators alerted', async (t) => {
  const id = await h.createRequest('water-main')
  await h.createRequest('graffiti') // no service level: never overdue
  const [order] = await h.workOrders(id)
  const { due } = await workOrderRow(order!.id)

  t.equal(await markOverdueWorkOrders(app.db, { now: new Date(due!.getTime() - 1000) }), 0, 'a second before: nothing')
  t.same(await overdueList(), [])
  const sweptAt = new Date(due!.getTime() + 1000)
  t.equal(await markOverdueWorkOrders(app.db, { now: sweptAt }), 1, 'a second after: marked')
  t.equal(await markOverdueWorkOrders(app.db, { now: new Date(due!.getTime() + 10 * HOUR) }), 0, 'once only')
  t.equal((await workOrderRow(order!.id)).overdue!.toISOString(), sweptAt.toISOString(), 'overdue_at: when the sweep found it')

  const events = (await h.outboxEvents([order!.id])).filter((e) => e.event_type === 'work_order.overdue')
  t.equal(events.length, 1, 'one work_order.overdue')
  const { timestamp, ...payload } = events[0]!.payload as unknown as Record<string, unknown>
  t.match(timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.same(
    payload,
    {
      type: 'work_order.overdue',
      version: '1.1',
      data: {
        work_order: { id: order!.id, department: 'water', state: 'pending', external_ref: null, reason: null, due_at: due!.toISOString() },
        service_request: (events[0]!.payload as { data: { service_request: unknown } }).data.service_request,
      },
    },
    'the whole payload: the work order with its due date, and its request',
  )
  t.match((events[0]!.payload as { data: { service_request: unknown } }).data.service_request, { service_request_id: id, service_code: 'water-main', status: 'open' })

  const alerts = (await app.inject({ url: '/admin/v1/alerts', headers: h.asAdmin })).json() as { kind: string; message: string }[]
  t.match(alerts.filter((a) => a.kind === 'work_order_overdue'), [{ message: `1 work order(s) at water past their due date: ${order!.id}` }], 'one alert naming it')

  t.match(await overdueList(), [{ id: order!.id, service_request_id: id, department: 'water', due_at: due!.toISOString(), overdue_at: sweptAt.toISOString() }])
  t.same(await overdueList('&department=streets'), [], 'filtered by department')
  t.equal((await overdueList('&department=water')).length, 1)

  // Done late: off the overdue list, the breach stays recorded.
  const done = await h.statusChanged(water, { work_order_id: order!.id, status: 'completed', occurred_at: new Date().toISOString() })
  t.equal(done.statusCode, 200, done.body)
  t.same(await overdueList(), [], 'a completed work order is no longer overdue work')
  t.equal((await workOrderRow(order!.id)).overdue!.toISOString(), sweptAt.toISOString(), 'its breach is never cleared')
})

t.test('a completion after the due date is a breach even if no sweep saw it; one before is not', async (t) => {
  const late = await h.createRequest('water-main')
  const [lateOrder] = await h.workOrders(late)
  // A department cannot report the future: the work order's due date moves into the past instead.
  await rows(sql`update work_orders set due_at = now() - interval '2 hours' where id = ${Number(lateOrder!.id.slice(3))}`)
  const lateDone = await h.statusChanged(water, { work_order_id: lateOrder!.id, status: 'completed', occurred_at: new Date().toISOString() })
  t.equal(lateDone.statusCode, 200, lateDone.body)
  t.ok((await workOrderRow(lateOrder!.id)).overdue, 'completed an hour past due: recorded as a breach')

  const onTime = await h.createRequest('water-main')
  const [onTimeOrder] = await h.workOrders(onTime)
  const onTimeDone = await h.statusChanged(water, { work_order_id: onTimeOrder!.id, status: 'completed', occurred_at: new Date().toISOString() })
  t.equal(onTimeDone.statusCode, 200, onTimeDone.body)
  t.equal((await workOrderRow(onTimeOrder!.id)).overdue, null, 'completed in time: no breach')
  t.equal(await markOverdueWorkOrders(app.db, { now: new Date(Date.now() + 100 * HOUR) }), 0, 'and the sweep leaves finished work alone')
})

t.test('sweeps running at once (several instances) mark each work order exactly once', async (t) => {
  const ids = []
  for (let i = 0; i < 12; i++) ids.push(await h.createRequest('water-main'))
  const later = new Date(Date.now() + 5 * HOUR)
  const counts = await Promise.all([1, 2, 3].map(() => markOverdueWorkOrders(app.db, { now: later, batchSize: 5 })))
  let total = counts.reduce((a, b) => a + b, 0)
  while (true) {
    const more = await markOverdueWorkOrders(app.db, { now: later, batchSize: 5 })
    if (more === 0) break
    total += more
  }
  t.equal(total, 12, 'twelve marked in all')
  const orders = (await Promise.all(ids.map((id) => h.workOrders(id)))).flat()
  const events = (await h.outboxEvents(orders.map((o) => o.id))).filter((e) => e.event_type === 'work_order.overdue')
  t.equal(events.length, 12, 'one event each')
  t.equal(new Set(events.map((e) => e.work_order_id)).size, 12, 'no work order twice')
  const page1 = await overdueList('&limit=5')
  const page2 = await overdueList(`&limit=5&after=${page1.at(-1)!.id}`)
  t.equal(page1.length, 5)
  t.ok(Number(page2[0]!.id.slice(3)) > Number(page1.at(-1)!.id.slice(3)), 'paged by id')
})
