/**
 * The invariant above all: a service request is never closed while a department's work order
 * for it is still open. Routing (work orders opened with the request), auto-close on the last
 * completion, manual close rules, operator closes (409 / forced), the database triggers that
 * refuse an early close by any path, duplicates, department-issued tokens, and a randomised
 * property test over interleavings of callbacks, operator closes and duplicate marks.
 *
 * Promise 12 (webhook-reliability §6): the request closes only when all linked work orders are
 * done, never on a partial set — checked by SQL after every step of every random scenario.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import t, { type Test } from 'tap'
import { toDate } from '../../src/db/database.js'
import { acceptPendingTokens } from '../../src/domain/requests/tokens.js'
import { sqlState } from '../helpers/query.js'
import { buildDepartmentHarness, isTerminal, newWebhookId, type RegisteredDepartment, startReceiver, TERMINAL } from './fixtures/harness.js'

const ledgerReceiver = await startReceiver(t)
// One database per test file; subtests share it and run in order.
const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'close.test.example', name: 'Close Guard City', time_zone: 'UTC' },
  services: [
    { service_code: 'two-dept', service_name: 'Water main break under the road' },
    { service_code: 'zoned', service_name: 'Street light out' },
    { service_code: 'manual', service_name: 'Abandoned vehicle', close_rule: 'manual' },
    { service_code: 'ref-batch', service_name: 'Permit request', type: 'batch', department_issues_reference: true },
    { service_code: 'plain-batch', service_name: 'Bulk pickup', type: 'batch' },
    { service_code: 'p1', service_name: 'Property: one department' },
    { service_code: 'p2', service_name: 'Property: two departments' },
    { service_code: 'p3', service_name: 'Property: three departments' },
    { service_code: 'p2m', service_name: 'Property: two departments, manual close', close_rule: 'manual' },
  ],
})
const { app, rows } = h
const streets = await h.registerDepartment({ code: 'streets', name: 'Streets' })
const water = await h.registerDepartment({ code: 'water', name: 'Water' })
await h.registerDepartment({ code: 'north', name: 'North District' })
await h.registerDepartment({ code: 'south', name: 'South District' })
await h.registerDepartment({ code: 'central', name: 'Central District' })
const ledger = await h.registerDepartment({ code: 'ledger', name: 'Permits Office', webhook_url: ledgerReceiver.url })
await h.setRoutes('two-dept', [{ department: 'streets' }, { department: 'water' }])
await h.setRoutes('manual', [{ department: 'streets' }])
await h.setRoutes('ref-batch', [{ department: 'ledger' }])
await h.setRoutes('plain-batch', [{ department: 'water' }])

const iso = (ms: number) => new Date(ms).toISOString()
const woNumber = (wo: string) => Number(wo.replace(/^WO-/, ''))

/** The SQLSTATE and constraint name of a failed query, through drizzle's and the driver's wrapping. */
function dbError(err: unknown): { state: string | undefined; constraint: string | undefined; message: string } {
  let constraint: string | undefined
  const messages: string[] = []
  for (let e: unknown = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    const c = (e as { constraint?: unknown }).constraint
    if (typeof c === 'string' && !constraint) constraint = c
    const m = (e as { message?: unknown }).message
    if (typeof m === 'string') messages.push(m)
  }
  return { state: sqlState(err), constraint, message: messages.join(' | ') }
}

async function expectGuard(t: Test, run: () => Promise<unknown>, constraint: string, label: string) {
  try {
    await run()
    t.fail(`${label}: the database accepted it`)
  } catch (err) {
    const e = dbError(err)
    t.equal(e.state, '23514', `${label}: SQLSTATE 23514 (check_violation)`)
    t.equal(e.constraint, constraint, `${label}: constraint ${constraint}`)
  }
}

async function workOrderDepartments(serviceRequestId: string) {
  const found = await rows<{ code: string; state: string }>(
    sql`select d.code, w.state from work_orders w join departments d on d.id = w.department_id
        join service_requests sr on sr.id = w.request_id where sr.public_id = ${serviceRequestId} order by w.id`,
  )
  return found.map((r) => r.code)
}

t.test('routing: a service routed to two departments opens two work orders and two outbox rows with the request, in one transaction', async (t) => {
  const id = await h.createRequest('two-dept')
  const orders = await h.workOrders(id)
  t.equal(orders.length, 2, 'two work orders')
  t.same(await workOrderDepartments(id), ['streets', 'water'])
  t.same(orders.map((o) => o.state), ['pending', 'pending'])
  const events = await h.outboxEvents(orders.map((o) => o.id))
  t.same(
    events.map((e) => [e.event_type, e.department, `WO-${e.work_order_id}`]),
    [
      ['work_order.created', 'streets', orders[0]!.id],
      ['work_order.created', 'water', orders[1]!.id],
    ],
    'one work_order.created per department',
  )
  t.ok(events.every((e) => e.payload.data.service_request.service_request_id === id))
  // xmin is the id of the transaction that wrote a row: one value means one transaction.
  const [writers] = await rows<{ request: string; work_orders: string; outbox: string; first_update: string }>(sql`
    select sr.xmin::text as request,
           (select string_agg(distinct w.xmin::text, ',') from work_orders w where w.request_id = sr.id) as work_orders,
           (select string_agg(distinct o.xmin::text, ',') from outbox o join work_orders w on w.id = o.work_order_id where w.request_id = sr.id) as outbox,
           (select string_agg(distinct u.xmin::text, ',') from request_updates u where u.request_id = sr.id) as first_update
    from service_requests sr where sr.public_id = ${id}`)
  t.equal(writers!.work_orders, writers!.request, 'work orders were written in the request’s transaction')
  t.equal(writers!.outbox, writers!.request, 'outbox rows were written in the request’s transaction')
  t.equal(writers!.first_update, writers!.request, 'and its first history entry')
  t.equal((await h.publicRequest(id)).agency_responsible, 'Streets, Water')
})

t.test('area routing: polygon A, polygon B, and the default for points outside both and for address-only requests', async (t) => {
  const square = (long: number, lat: number, d = 0.01) => ({
    type: 'Polygon',
    coordinates: [[[long - d, lat - d], [long + d, lat - d], [long + d, lat + d], [long - d, lat + d], [long - d, lat - d]]],
  })
  const A = { lat: 41.9, long: -87.65 }
  const B = { lat: 41.8, long: -87.6 }
  const noDefault = await app.inject({ method: 'PUT', url: '/admin/v1/services/zoned/routes', headers: h.asAdmin, payload: [{ department: 'north', area: square(A.long, A.lat) }] })
  t.equal(noDefault.statusCode, 400, 'a default route is required')
  t.match(noDefault.json(), [{ code: 400, description: /default/ }])
  const unreadable = { type: 'Polygon', coordinates: [[[-87.66]]] }
  const badArea = await app.inject({ method: 'PUT', url: '/admin/v1/services/zoned/routes', headers: h.asAdmin, payload: [{ department: 'central' }, { department: 'north', area: unreadable }] })
  t.equal(badArea.statusCode, 400, 'an unreadable polygon is refused')
  t.match(badArea.json(), [{ code: 400, description: /routes\[1\]\.area/ }])
  const unknownDept = await app.inject({ method: 'PUT', url: '/admin/v1/services/zoned/routes', headers: h.asAdmin, payload: [{ department: 'nobody' }] })
  t.equal(unknownDept.statusCode, 404)
  const routes = await h.setRoutes('zoned', [
    { department: 'central' },
    { department: 'north', area_name: 'Ward A', area: square(A.long, A.lat) },
    { department: 'south', area_name: 'Ward B', area: square(B.long, B.lat) },
  ])
  t.same(routes, [
    { department: 'central', area_name: null, has_area: false },
    { department: 'north', area_name: 'Ward A', has_area: true },
    { department: 'south', area_name: 'Ward B', has_area: true },
  ])

  const inA = await h.createRequest('zoned', { lat: String(A.lat), long: String(A.long) })
  const inB = await h.createRequest('zoned', { lat: String(B.lat + 0.005), long: String(B.long - 0.005) })
  const outside = await h.createRequest('zoned', { lat: '41.7', long: '-87.7' })
  const addressOnly = await h.createRequest('zoned', { address_string: '100 Main St' })
  t.same(await workOrderDepartments(inA), ['north'], 'inside polygon A: only north')
  t.same(await workOrderDepartments(inB), ['south'], 'inside polygon B: only south')
  t.same(await workOrderDepartments(outside), ['central'], 'outside both: the default')
  t.same(await workOrderDepartments(addressOnly), ['central'], 'address only: the default')
  t.equal((await h.publicRequest(inA)).agency_responsible, 'North District')
  t.equal((await h.publicRequest(addressOnly)).agency_responsible, 'Central District')
})

t.test('auto-close: the request closes only when the LAST work order completes', async (t) => {
  const id = await h.createRequest('two-dept')
  const [streetsWo, waterWo] = (await h.workOrders(id)).map((o) => o.id) as [string, string]
  const expected = '2031-03-02T08:00:00Z'
  t.match((await h.statusChanged(water, { work_order_id: waterWo, status: 'scheduled', expected_datetime: expected, public_note: 'Valve crew booked' })).json(), { applied: true })
  t.match((await h.statusChanged(streets, { work_order_id: streetsWo, status: 'completed', public_note: 'Road patched', occurred_at: iso(Date.now()) })).json(), { applied: true })
  const partial = await h.publicRequest(id)
  t.equal(partial.status, 'open', 'one of two completed: still open')
  t.equal(partial.extended_attributes.detailed_status, 'scheduled', 'the other department’s state speaks')
  t.equal(partial.extended_attributes.closed_datetime, null)
  t.equal(Date.parse(partial.expected_datetime!), Date.parse(expected))
  const early = await h.closeRequest(id, { reason: 'looks done' })
  t.equal(early.statusCode, 409, 'an operator cannot close it either')
  t.match(early.json(), [{ code: 409 }, { code: 'open_work_order', description: `${waterWo} is scheduled` }])
  t.equal(early.json().length, 2, 'only the open work order is listed')

  t.match((await h.statusChanged(water, { work_order_id: waterWo, status: 'completed', public_note: 'Main repaired', occurred_at: iso(Date.now() + 1000) })).json(), { applied: true })
  const closed = await h.publicRequest(id)
  t.equal(closed.status, 'closed', 'both completed: closed')
  t.equal(closed.extended_attributes.detailed_status, 'completed')
  t.ok(closed.extended_attributes.closed_datetime, 'closed_datetime set')
  t.equal(closed.status_notes, 'Main repaired')
  t.match(closed.notes.at(-1), { status: 'closed', detailed_status: 'completed', description: 'Main repaired' })

  // One completed and the other rejected: every work order is final and the work was done.
  const mixed = await h.createRequest('two-dept')
  const [m1, m2] = (await h.workOrders(mixed)).map((o) => o.id) as [string, string]
  await h.statusChanged(water, { work_order_id: m2, status: 'rejected', reason: 'No water involved' })
  t.equal((await h.requestRow(mixed)).status, 'open', 'a rejection alone does not close')
  await h.statusChanged(streets, { work_order_id: m1, status: 'completed', occurred_at: iso(Date.now() + 1000) })
  t.equal((await h.requestRow(mixed)).status, 'closed')

  // Both rejected: nobody did the work — open, needs attention, and 311 decides.
  const nobody = await h.createRequest('two-dept')
  const [n1, n2] = (await h.workOrders(nobody)).map((o) => o.id) as [string, string]
  await h.statusChanged(streets, { work_order_id: n1, status: 'rejected', reason: 'Not a road' })
  await h.statusChanged(water, { work_order_id: n2, status: 'rejected', reason: 'Not a pipe' })
  const stuck = await h.publicRequest(nobody)
  t.equal(stuck.status, 'open')
  t.equal(stuck.extended_attributes.detailed_status, 'needs_attention')
  const operatorClose = await h.closeRequest(nobody, { reason: 'Referred to the state DOT' })
  t.equal(operatorClose.statusCode, 200, 'with every work order final the operator may close without force')
  t.same(operatorClose.json().cancelled_work_orders, [])
  t.equal((await h.requestRow(nobody)).status, 'closed')
})

t.test('close_rule manual: completed work waits for an operator', async (t) => {
  const id = await h.createRequest('manual')
  const [wo] = (await h.workOrders(id)).map((o) => o.id) as [string]
  t.match((await h.statusChanged(streets, { work_order_id: wo, status: 'completed', public_note: 'Vehicle towed' })).json(), { applied: true })
  const waiting = await h.publicRequest(id)
  t.equal(waiting.status, 'open', 'not closed automatically')
  t.equal(waiting.extended_attributes.detailed_status, 'work_completed')
  t.equal(waiting.extended_attributes.closed_datetime, null)
  t.equal(waiting.status_notes, 'Vehicle towed')
  const closed = await h.closeRequest(id, { reason: 'Confirmed with the reporter' })
  t.equal(closed.statusCode, 200)
  t.match(closed.json(), { update_id: /^\d+$/, cancelled_work_orders: [] })
  const after = await h.publicRequest(id)
  t.equal(after.status, 'closed')
  t.ok(after.extended_attributes.closed_datetime)
  t.equal(after.status_notes, 'Confirmed with the reporter')
  t.equal((await rows<{ state: string }>(sql`select state from work_orders where id = ${woNumber(wo)}`))[0]!.state, 'completed', 'the work order stays completed')
})

t.test('operator close with open work orders: 409 listing them; forced with a reason: cancelled, events, closed', async (t) => {
  const id = await h.createRequest('two-dept')
  const [a, b] = (await h.workOrders(id)).map((o) => o.id) as [string, string]
  await h.statusChanged(streets, { work_order_id: a, status: 'in_progress' })
  const updatesBefore = await h.updateCount(id)

  const refused = await h.closeRequest(id, { reason: 'duplicate call' })
  t.equal(refused.statusCode, 409)
  const errors = refused.json() as { code: number | string; description: string }[]
  t.match(errors[0], { code: 409, description: /open work orders/ })
  const byDescription = (x: { description: string }, y: { description: string }) => x.description.localeCompare(y.description)
  t.same([...errors.slice(1)].sort(byDescription), [
    { code: 'open_work_order', description: `${a} is in_progress` },
    { code: 'open_work_order', description: `${b} is pending` },
  ].sort(byDescription), 'both open work orders are listed, with their states')
  t.equal((await h.requestRow(id)).status, 'open')
  t.equal(await h.updateCount(id), updatesBefore, 'a refused close leaves no trace')
  const noReason = await app.inject({ method: 'POST', url: `/admin/v1/requests/${id}/close`, headers: h.asAdmin, payload: { force: true } })
  t.equal(noReason.statusCode, 400, 'force needs a reason')
  const emptyReason = await h.closeRequest(id, { reason: '', force: true })
  t.equal(emptyReason.statusCode, 400)
  t.equal((await h.requestRow(id)).status, 'open')

  const forced = await h.closeRequest(id, { reason: 'Handled by the state, not the city', force: true })
  t.equal(forced.statusCode, 200)
  t.same([...forced.json().cancelled_work_orders].sort(), [a, b].sort())
  const orders = await h.workOrders(id)
  t.same(orders.map((o) => [o.id, o.state, o.reason]), [
    [a, 'cancelled', 'Handled by the state, not the city'],
    [b, 'cancelled', 'Handled by the state, not the city'],
  ])
  const row = await h.requestRow(id)
  t.equal(row.status, 'closed')
  t.ok(row.closed_at)
  const events = await h.outboxEvents([a, b])
  const after = events.filter((e) => e.event_type !== 'work_order.created')
  t.same(after.map((e) => e.event_type), ['work_order.cancelled', 'work_order.cancelled', 'service_request.closed', 'service_request.closed'], 'cancellations, then the close')
  for (const wo of [a, b]) {
    t.same(after.filter((e) => `WO-${e.work_order_id}` === wo).map((e) => e.event_type), ['work_order.cancelled', 'service_request.closed'], `${wo}’s department hears cancelled, then closed`)
  }
  t.ok(after.every((e) => e.payload.data.reason === 'Handled by the state, not the city'), 'with the reason')
  t.equal(after[2]!.payload.data.service_request.status, 'closed')

  const again = await h.closeRequest(id, { reason: 'again', force: true })
  t.equal(again.statusCode, 409, 'closing a closed request: 409')
  t.match(again.json(), [{ description: /already closed/ }])
  const late = await h.statusChanged(streets, { work_order_id: a, status: 'completed' })
  t.match(late.json(), { applied: false, reason: 'final' }, 'a department cannot revive a cancelled work order')
  const unknown = await h.closeRequest('99999999', { reason: 'x' })
  t.equal(unknown.statusCode, 404)
})

t.test('the database refuses an early close by ANY path', async (t) => {
  const id = await h.createRequest('two-dept')
  const [a, b] = (await h.workOrders(id)).map((o) => o.id) as [string, string]
  const { id: requestId } = await h.requestRow(id)

  await expectGuard(t, () => app.db.execute(sql`update service_requests set status = 'closed', closed_at = now() where public_id = ${id}`), 'service_requests_close_guard', 'raw SQL close with two open work orders')
  await expectGuard(
    t,
    () => app.db.transaction(async (tx) => {
      await tx.execute(sql`update work_orders set state = 'completed' where id = ${woNumber(a)}`)
      await tx.execute(sql`update service_requests set status = 'closed', closed_at = now() where id = ${requestId}`)
    }),
    'service_requests_close_guard',
    'raw SQL close with one of two work orders completed (partial set)',
  )
  t.same((await h.workOrders(id)).map((o) => o.state), ['pending', 'pending'], 'the failed transaction rolled back')
  await expectGuard(t, () => app.db.execute(sql`update service_requests set status = 'closed', closed_at = now() where status = 'open'`), 'service_requests_close_guard', 'a bulk close of every open request')
  t.equal((await h.requestRow(id)).status, 'open')

  // Once every work order is final the same statement is allowed: the guard is exact, not blanket.
  await app.db.execute(sql`update work_orders set state = 'completed' where id in (${woNumber(a)}, ${woNumber(b)})`)
  await app.db.execute(sql`update service_requests set status = 'closed', closed_at = now() where id = ${requestId}`)
  t.equal((await h.requestRow(id)).status, 'closed', 'closable with every work order final')

  // The other side: no open work order on a closed request.
  const [dept] = await rows<{ id: number }>(sql`select id from departments where code = 'streets'`)
  await expectGuard(t, () => app.db.execute(sql`insert into work_orders (request_id, department_id) values (${requestId}, ${dept!.id})`), 'work_orders_open_on_closed_request', 'inserting an open work order on a closed request')
  for (const state of ['accepted', 'in_progress', 'on_hold']) {
    await expectGuard(t, () => app.db.execute(sql`insert into work_orders (request_id, department_id, state) values (${requestId}, ${dept!.id}, ${state})`), 'work_orders_open_on_closed_request', `inserting a ${state} work order on a closed request`)
  }
  await expectGuard(t, () => app.db.execute(sql`update work_orders set state = 'in_progress' where id = ${woNumber(a)}`), 'work_orders_open_on_closed_request', 'reopening a work order of a closed request')
  await app.db.execute(sql`insert into work_orders (request_id, department_id, state) values (${requestId}, ${dept!.id}, 'cancelled')`)
  t.equal((await h.workOrders(id)).length, 3, 'a final work order may still be recorded on a closed request')
  t.same((await h.workOrders(id)).map((o) => o.state), ['completed', 'completed', 'cancelled'])

  // Races between two connections (PostgreSQL); the embedded backend has one connection, so
  // there the same two orders of events run one after the other.
  const raced = await h.createRequest('two-dept')
  const racedRow = await h.requestRow(raced)
  await app.db.execute(sql`update work_orders set state = 'cancelled' where request_id = ${racedRow.id}`)
  const openWorkOrder = sql`insert into work_orders (request_id, department_id) values (${racedRow.id}, ${dept!.id})`
  const closeIt = sql`update service_requests set status = 'closed', closed_at = now() where id = ${racedRow.id}`
  if (h.databaseUrl) {
    const one = new pg.Client({ connectionString: h.databaseUrl })
    const two = new pg.Client({ connectionString: h.databaseUrl })
    await one.connect()
    await two.connect()
    t.teardown(async () => {
      await one.end().catch(() => {})
      await two.end().catch(() => {})
    })
    // 1. A work order is opened (not yet committed) while another connection closes the request.
    await one.query('begin')
    await one.query('insert into work_orders (request_id, department_id) values ($1, $2)', [racedRow.id, dept!.id])
    await two.query('begin')
    let closeSettled = false
    const closing = two.query(`update service_requests set status = 'closed', closed_at = now() where id = $1`, [racedRow.id]).finally(() => (closeSettled = true))
    closing.catch(() => {})
    await sleep(300)
    t.notOk(closeSettled, 'the close waits for the transaction that opened a work order')
    await one.query('commit')
    await t.rejects(closing, { code: '23514', constraint: 'service_requests_close_guard' }, 'then sees the committed work order and refuses')
    await two.query('rollback')
    t.equal((await h.requestRow(raced)).status, 'open')
    // 2. The request is closed (not yet committed) while another connection opens a work order.
    await app.db.execute(sql`update work_orders set state = 'cancelled' where request_id = ${racedRow.id}`)
    await two.query('begin')
    await two.query(`update service_requests set status = 'closed', closed_at = now() where id = $1`, [racedRow.id])
    await one.query('begin')
    let openSettled = false
    const opening = one.query('insert into work_orders (request_id, department_id) values ($1, $2)', [racedRow.id, dept!.id]).finally(() => (openSettled = true))
    opening.catch(() => {})
    await sleep(300)
    t.notOk(openSettled, 'opening a work order waits for the closing transaction')
    await two.query('commit')
    await t.rejects(opening, { code: '23514', constraint: 'work_orders_open_on_closed_request' }, 'then sees the close and refuses')
    await one.query('rollback')
  } else {
    await app.db.execute(openWorkOrder)
    await expectGuard(t, () => app.db.execute(closeIt), 'service_requests_close_guard', 'close after a work order was opened')
    await app.db.execute(sql`update work_orders set state = 'cancelled' where request_id = ${racedRow.id}`)
    await app.db.execute(closeIt)
    await expectGuard(t, () => app.db.execute(openWorkOrder), 'work_orders_open_on_closed_request', 'work order after the close')
  }
  const [violations] = await rows<{ n: number }>(sql`select count(*)::int as n from service_requests sr join work_orders w on w.request_id = sr.id
    where sr.status = 'closed' and w.state not in ${TERMINAL}`)
  t.equal(Number(violations!.n), 0, 'no closed request has an open work order')
})

t.test('duplicates: linked, no second crew, closed with the parent’s last work order', async (t) => {
  const parent = await h.createRequest('two-dept')
  const child = await h.createRequest('two-dept')
  const [p1, p2] = (await h.workOrders(parent)).map((o) => o.id) as [string, string]
  const [c1, c2] = (await h.workOrders(child)).map((o) => o.id) as [string, string]
  await h.statusChanged(streets, { work_order_id: c1, status: 'accepted' })

  const self = await h.markDuplicate(child, child)
  t.equal(self.statusCode, 400, 'a request cannot duplicate itself')
  const missing = await h.markDuplicate(child, '99999999')
  t.equal(missing.statusCode, 404)

  const marked = await h.markDuplicate(child, parent)
  t.equal(marked.statusCode, 200)
  t.match(marked.json(), { update_id: /^\d+$/ })
  const childOrders = await h.workOrders(child)
  t.same(childOrders.map((o) => [o.id, o.state, o.reason]), [
    [c1, 'cancelled', `duplicate of ${parent}`],
    [c2, 'cancelled', `duplicate of ${parent}`],
  ], 'the child’s own work orders are cancelled: no second crew')
  const cancelled = (await h.outboxEvents([c1, c2])).filter((e) => e.event_type === 'work_order.cancelled')
  t.same(cancelled.map((e) => `WO-${e.work_order_id}`).sort(), [c1, c2].sort(), 'each department hears it')
  const view = await h.publicRequest(child)
  t.equal(view.status, 'open', 'the child stays open until the parent closes')
  t.match(view.extended_attributes, { duplicate: true, parent_service_request_id: parent, detailed_status: 'duplicate' })
  const list = await app.inject(`/open311/v2/requests.json?extensions=true&service_request_id=${child}`)
  t.match(list.json(), [{ extended_attributes: { duplicate: true, parent_service_request_id: parent } }], 'also in GET requests')
  t.same(await h.workOrders(parent).then((o) => o.map((w) => w.state)), ['pending', 'pending'], 'the parent’s work is untouched')

  const revive = await h.statusChanged(streets, { work_order_id: c1, status: 'in_progress' })
  t.match(revive.json(), { applied: false, reason: 'final' }, 'the child’s crew cannot restart')
  const cycle = await h.markDuplicate(parent, child)
  t.equal(cycle.statusCode, 400, 'the parent cannot become a duplicate of its duplicate')
  t.equal((await h.requestRow(parent)).parent_request_id, null)

  // A duplicate of the duplicate links to the original.
  const grandchild = await h.createRequest('two-dept')
  t.equal((await h.markDuplicate(grandchild, child)).statusCode, 200)
  t.equal((await h.publicRequest(grandchild)).extended_attributes.parent_service_request_id, parent, 'linked to the original request')

  t.match((await h.statusChanged(streets, { work_order_id: p1, status: 'completed', occurred_at: iso(Date.now()) })).json(), { applied: true })
  t.equal((await h.requestRow(parent)).status, 'open')
  t.equal((await h.requestRow(child)).status, 'open', 'the parent’s first completion does not close the child')
  t.match((await h.statusChanged(water, { work_order_id: p2, status: 'completed', public_note: 'Fixed', occurred_at: iso(Date.now() + 1000) })).json(), { applied: true })
  t.equal((await h.requestRow(parent)).status, 'closed')
  for (const [label, dup] of [['child', child], ['grandchild', grandchild]] as const) {
    const closed = await h.publicRequest(dup)
    t.equal(closed.status, 'closed', `the ${label} closed with the parent’s last work order`)
    t.ok(closed.extended_attributes.closed_datetime, `${label}: closed_datetime`)
    t.equal(closed.extended_attributes.detailed_status, 'duplicate')
  }

  // A duplicate of an already closed request closes at once — after its work orders are cancelled.
  const late = await h.createRequest('two-dept')
  const lateMarked = await h.markDuplicate(late, parent)
  t.equal(lateMarked.statusCode, 200)
  t.same((await h.workOrders(late)).map((o) => o.state), ['cancelled', 'cancelled'])
  t.equal((await h.requestRow(late)).status, 'closed')

  // Found by the property test (seed 1813454589): an open request that has its own open
  // duplicate becomes a duplicate of a closed request. Both hang under the closed original
  // now, so both close at once; neither may stay open under it.
  const middle = await h.createRequest('two-dept')
  const below = await h.createRequest('two-dept')
  t.equal((await h.markDuplicate(below, middle)).statusCode, 200)
  t.equal((await h.requestRow(below)).status, 'open', 'below stays open while middle is open')
  t.equal((await h.markDuplicate(middle, parent)).statusCode, 200)
  for (const [label, id] of [['middle', middle], ['its duplicate', below]] as const) {
    const row = await h.requestRow(id)
    t.equal(Number(row.parent_request_id), Number((await h.requestRow(parent)).id), `${label} links to the closed original`)
    t.equal(row.status, 'closed', `${label} closes with it`)
    t.ok((await h.publicRequest(id)).extended_attributes.closed_datetime, `${label}: closed_datetime`)
  }
})

t.test('tokens: with department_issues_reference the token resolves only when the department accepts', async (t) => {
  const post = async (serviceCode: string) => {
    const res = await h.postRequest({ service_code: serviceCode, lat: '41.88', long: '-87.63', description: 'please' })
    t.equal(res.statusCode, 200)
    const [answer] = res.json() as { token?: string; service_request_id?: string }[]
    t.ok(answer?.token, `${serviceCode}: a token`)
    t.notOk(answer?.service_request_id, `${serviceCode}: no id yet`)
    return answer!.token!
  }
  const token = await post('ref-batch')
  const plain = await post('plain-batch')
  const lookup = async (tok: string) => {
    const res = await app.inject(`/open311/v2/tokens/${tok}.json`)
    t.equal(res.statusCode, 200)
    return (res.json() as { token: string; service_request_id?: string }[])[0]!
  }
  t.same(await lookup(token), { token })

  await acceptPendingTokens(app.db)
  await acceptPendingTokens(app.db)
  t.ok((await lookup(plain)).service_request_id, 'an ordinary batch token is accepted by the server')
  t.same(await lookup(token), { token }, 'the department-reference token is still pending')
  const [pendingRow] = await rows<{ state: string; public_id: string }>(
    sql`select t.state, sr.public_id from request_tokens t join service_requests sr on sr.id = t.request_id where t.token = ${token}`,
  )
  t.equal(pendingRow!.state, 'pending')
  const hidden = await app.inject(`/open311/v2/requests/${pendingRow!.public_id}.json`)
  t.equal(hidden.statusCode, 404, 'the request is not public before the department accepts')

  // The department receives the work order over a real HTTP delivery and accepts it.
  for (let round = 0; round < 5 && (await h.deliver()) > 0; round++);
  const created = ledgerReceiver.received.find((d) => d.body.type === 'work_order.created' && d.body.data.service_request.service_request_id === pendingRow!.public_id)
  t.ok(created, 'the department got work_order.created')
  t.equal((await lookup(token)).service_request_id, undefined, 'delivery alone does not accept it')
  const accepted = await h.statusChanged(ledger, { work_order_id: created!.body.data.work_order.id, status: 'accepted', external_ref: 'PERMIT-77' })
  t.match(accepted.json(), { applied: true })
  const resolved = await lookup(token)
  t.equal(resolved.service_request_id, created!.body.data.service_request.service_request_id, 'the token now names the request')
  const xmlLookup = await app.inject(`/open311/v2/tokens/${token}.xml`)
  t.match(xmlLookup.body, new RegExp(`<service_request_id>${resolved.service_request_id}</service_request_id>`))
  t.equal((await app.inject(`/open311/v2/requests/${resolved.service_request_id}.json`)).statusCode, 200, 'and the request is public')
})

t.test('concurrent races (forced and plain closes, completions, reassignments, duplicate marks at once) keep the invariant', async (t) => {
  const ROUNDS = 8
  const deadlockLines = () => h.logs().filter((l) => Number(l.level) >= 50 && JSON.stringify(l.err ?? '').includes('deadlock detected')).length
  const serverErrorLines = () => h.logs().filter((l) => Number(l.level) >= 50 && l.err).length
  const deadlocksBefore = deadlockLines()
  const serverErrorsBefore = serverErrorLines()
  const statuses: Record<string, number[]> = {}
  const record = (what: string, code: number) => (statuses[what] ??= []).push(code)
  const raced: { id: string; duplicate: string }[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const id = await h.createRequest('two-dept')
    const duplicate = await h.createRequest('two-dept')
    raced.push({ id, duplicate })
    const [a, b] = (await h.workOrders(id)).map((o) => o.id) as [string, string]
    const ops: [string, () => Promise<{ statusCode: number }>][] = [
      ['forced close', () => h.closeRequest(id, { reason: 'forced in a race', force: true })],
      ['plain close', () => h.closeRequest(id, { reason: 'plain close in a race' })],
      ['completion', () => h.statusChanged(streets, { work_order_id: a, status: 'completed' })],
      ['reassignment', () => h.statusChanged(water, { work_order_id: b, status: 'reassigned', reassign_to: 'streets' })],
      ['duplicate mark', () => h.markDuplicate(duplicate, id)],
    ]
    // A different order each round, so each operation gets to go first.
    const ordered = ops.map((op, i) => ({ op, key: (i * 7 + round * 3) % ops.length })).sort((x, y) => x.key - y.key).map((x) => x.op)
    const answers = await Promise.all(ordered.map(([, run]) => run()))
    ordered.forEach(([what], i) => record(what, answers[i]!.statusCode))
  }
  t.comment(`race answers: ${JSON.stringify(statuses)}`)
  const all = Object.values(statuses).flat()
  const serverErrors = all.filter((c) => c >= 500).length
  const deadlocks = deadlockLines() - deadlocksBefore
  t.equal(serverErrorLines() - serverErrorsBefore, serverErrors, 'every 5xx answer was logged as an error')
  t.equal(serverErrors - deadlocks, 0, 'no server error other than lock-order deadlocks')
  if (serverErrors !== deadlocks) {
    const messages = h.logs().filter((l) => Number(l.level) >= 50 && l.err).map((l) => String((l.err as { message?: string }).message).slice(-200))
    t.comment(`server errors: ${JSON.stringify([...new Set(messages)])}`)
  }
  t.equal(deadlocks, 0, 'no lock-order deadlock between an operator close and a department callback')
  t.ok(statuses['forced close']!.every((c) => [200, 409].includes(c)), 'a forced close either closes or finds it closed')
  t.ok(statuses['plain close']!.every((c) => [200, 409].includes(c)))
  t.ok(statuses.completion!.every((c) => [200, 500].includes(c)))

  // Whatever won each race, the invariant holds and the outcome is consistent.
  for (const { id, duplicate } of raced) {
    const row = await h.requestRow(id)
    const orders = await h.workOrders(id)
    if (row.status === 'closed') {
      t.ok(orders.every((o) => isTerminal(o.state)), `${id} is closed and every work order is final (${orders.map((o) => o.state)})`)
      const dup = await h.requestRow(duplicate)
      if (Number(dup.parent_request_id) === Number(row.id)) t.equal(dup.status, 'closed', `${duplicate}, its duplicate, closed with it`)
    } else {
      t.ok(orders.some((o) => !isTerminal(o.state)) || !orders.some((o) => o.state === 'completed'), `${id} is open for a reason (${orders.map((o) => o.state)})`)
    }
  }
  const [violations] = await rows<{ n: number }>(sql`select count(*)::int as n from service_requests sr join work_orders w on w.request_id = sr.id
    where sr.status = 'closed' and w.state not in ${TERMINAL}`)
  t.equal(Number(violations!.n), 0, 'no closed request has an open work order')
})

// ---------------------------------------------------------------------------------------------
// The property test.

/** mulberry32: small, fast, good enough to drive scenarios reproducibly. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!
  const chance = (p: number) => next() < p
  return { next, int, pick, chance }
}

const RANK: Record<string, number> = { pending: 0, sent: 1, accepted: 2, scheduled: 3, in_progress: 4, on_hold: 4, completed: 5, cancelled: 5, rejected: 5, reassigned: 5 }
const LIFECYCLE = ['accepted', 'scheduled', 'in_progress', 'on_hold', 'completed', 'cancelled', 'rejected', 'reassigned'] as const
const MYSOCIETY: Record<string, string> = {
  OPEN: 'accepted',
  INVESTIGATING: 'accepted',
  ACTION_SCHEDULED: 'scheduled',
  IN_PROGRESS: 'in_progress',
  FIXED: 'completed',
  CLOSED: 'completed',
  NO_FURTHER_ACTION: 'completed',
  NOT_COUNCILS_RESPONSIBILITY: 'rejected',
  DUPLICATE: 'cancelled',
  CANCELLED: 'cancelled',
  INTERNAL_REFERRAL: 'reassigned',
}
/** d1 has its own codes; the others speak lifecycle names and mySociety words only. */
const D1_MAP: Record<string, string> = { D_SCHED: 'scheduled', D_WORK: 'in_progress', D_DONE: 'completed' }

/** The model of the status mapping: what the department's code should become. */
function mapped(department: string, code: string): string | null {
  if (department === 'd1' && D1_MAP[code]) return D1_MAP[code]!
  if ((LIFECYCLE as readonly string[]).includes(code.toLowerCase())) return code.toLowerCase()
  return MYSOCIETY[code.toUpperCase()] ?? null
}

/** The model of the citizen-facing detailed status of an open, non-duplicate request. */
function expectedDetailed(states: string[], closeRule: string): string {
  const open = states.filter((s) => !isTerminal(s))
  if (open.length > 0) {
    for (const s of ['in_progress', 'scheduled', 'on_hold', 'accepted']) if (open.includes(s)) return s
    return open.includes('sent') ? 'sent_to_department' : 'submitted'
  }
  if (states.includes('completed')) return closeRule === 'manual' ? 'work_completed' : 'completed'
  return 'needs_attention'
}

interface WoState {
  id: number
  request_id: number
  public_id: string
  department: string
  state: string
  last_event_at: string | null
}

t.test('property (promise 12): over random interleavings a request is never closed while a work order is open', async (t) => {
  const seed = Number(process.env.PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31))
  const scenarios = Number(process.env.PROPERTY_SCENARIOS ?? 200)
  t.comment(`property seed=${seed} scenarios=${scenarios} (rerun with PROPERTY_SEED=${seed})`)
  console.log(`# property test seed: ${seed}`)
  const r = prng(seed)

  const depts: Record<string, RegisteredDepartment> = {}
  for (const code of ['d1', 'd2', 'd3', 'd4']) depts[code] = await h.registerDepartment({ code, name: `Department ${code}`, ...(code === 'd1' ? { status_map: D1_MAP } : {}) })
  await h.setRoutes('p1', [{ department: 'd1' }])
  await h.setRoutes('p2', [{ department: 'd1' }, { department: 'd2' }])
  await h.setRoutes('p3', [{ department: 'd1' }, { department: 'd2' }, { department: 'd3' }])
  await h.setRoutes('p2m', [{ department: 'd2' }, { department: 'd3' }])
  const CLOSE_RULE: Record<string, string> = { p1: 'auto', p2: 'auto', p3: 'auto', p2m: 'manual' }

  const pool: string[] = []
  const tally: Record<string, number> = {}
  const count = (key: string) => (tally[key] = (tally[key] ?? 0) + 1)
  let steps = 0
  let failures = 0

  async function workOrdersOf(ids: string[]): Promise<WoState[]> {
    return rows<WoState>(sql`select w.id, w.request_id, sr.public_id, d.code as department, w.state, w.last_event_at::text as last_event_at
      from work_orders w join service_requests sr on sr.id = w.request_id join departments d on d.id = w.department_id
      where sr.public_id in ${ids} order by w.id`)
  }

  async function fingerprintOf(ids: string[]) {
    const [row] = await rows<{ f: string }>(sql`select string_agg(sr.public_id || ':' || sr.status || ':' || sr.detailed_status || ':' || coalesce(sr.parent_request_id::text, '-') || ':' ||
        (select count(*) from request_updates u where u.request_id = sr.id) || ':' ||
        coalesce((select string_agg(w.id || '=' || w.state, ',' order by w.id) from work_orders w where w.request_id = sr.id), ''), ';' order by sr.id) as f
      from service_requests sr where sr.public_id in ${ids}`)
    return row!.f
  }

  /**
   * The invariant, over the whole database, after every step; its companions (auto-close not
   * missed, the public detailed status) for the scenario's requests, the only ones a step touches.
   */
  async function checkInvariants(label: string, scenarioIds: string[]) {
    const [v] = await rows<{ closed_with_open: string | null; closed_partial: string | null; unclosed_done: string | null; open_under_closed: string | null; wrong_detail: string | null }>(sql`
      with wo as (
        select w.request_id,
               count(*) filter (where w.state not in ${TERMINAL}) as open,
               bool_or(w.state = 'completed') as any_completed,
               string_agg(w.state, ',' order by w.id) as states
        from work_orders w join service_requests sr on sr.id = w.request_id
        where sr.public_id in ${scenarioIds} group by w.request_id)
      select
        (select string_agg(distinct sr.public_id, ',') from service_requests sr join work_orders w on w.request_id = sr.id
          where sr.status = 'closed' and w.state not in ${TERMINAL}) as closed_with_open,
        (select string_agg(sr.public_id, ',') from service_requests sr
          where sr.status = 'closed' and exists (select 1 from work_orders w where w.request_id = sr.id and w.state not in ${TERMINAL})) as closed_partial,
        (select string_agg(sr.public_id, ',') from service_requests sr join wo on wo.request_id = sr.id join services s on s.id = sr.service_id
          where sr.status = 'open' and sr.parent_request_id is null and s.close_rule = 'auto' and wo.open = 0 and wo.any_completed) as unclosed_done,
        (select string_agg(sr.public_id, ',') from service_requests sr join service_requests p on p.id = sr.parent_request_id
          where sr.status = 'open' and p.status = 'closed') as open_under_closed,
        (select string_agg(sr.public_id || '=' || sr.detailed_status || '/' || wo.states || '/' || s.close_rule, ' ') from service_requests sr
          join wo on wo.request_id = sr.id join services s on s.id = sr.service_id
          where sr.status = 'open' and sr.parent_request_id is null) as wrong_detail`)
    const problems: string[] = []
    if (v!.closed_with_open) problems.push(`closed with open work orders: ${v!.closed_with_open}`)
    if (v!.closed_partial) problems.push(`closed on a partial set: ${v!.closed_partial}`)
    if (v!.unclosed_done) problems.push(`auto-close missed (every work order final, one completed): ${v!.unclosed_done}`)
    if (v!.open_under_closed) problems.push(`duplicate left open under a closed parent: ${v!.open_under_closed}`)
    for (const entry of (v!.wrong_detail ?? '').split(' ').filter(Boolean)) {
      const [publicId, rest] = entry.split('=') as [string, string]
      const [detailed, states, rule] = rest.split('/') as [string, string, string]
      const want = expectedDetailed(states.split(','), rule)
      if (detailed !== want) problems.push(`${publicId}: detailed_status ${detailed}, expected ${want} for ${states}`)
    }
    if (problems.length > 0) {
      failures++
      t.fail(`${label}: ${problems.join('; ')}`)
    }
  }

  const occurred = { clock: Date.now() - 30 * 86_400_000 }
  const nextTime = () => {
    if (r.chance(0.2)) return { at: occurred.clock - r.int(1, 120) * 60_000, label: 'stale' }
    occurred.clock += r.int(1, 30) * 60_000
    return { at: occurred.clock, label: 'fresh' }
  }

  /** Predicts the answer to a department report on one work order. */
  function predict(wo: WoState, department: string, code: string, at: number, extra: { reason?: string; reassignTo?: string }) {
    const state = mapped(department, code)
    if (!state) return { status: 400 as const, why: 'unknown code' }
    if (department !== wo.department) return { status: 403 as const, why: 'bola' }
    if (isTerminal(wo.state)) return { status: 200 as const, applied: false, reason: 'final' }
    if (wo.last_event_at && at < toDate(wo.last_event_at).getTime()) return { status: 200 as const, applied: false, reason: 'stale' }
    if (RANK[state]! < RANK[wo.state]!) return { status: 200 as const, applied: false, reason: 'backwards' }
    if (state === 'rejected' && !extra.reason) return { status: 400 as const, why: 'rejection without reason' }
    if (state === 'reassigned' && !extra.reassignTo) return { status: 400 as const, why: 'reassignment without target' }
    if (state === 'reassigned' && extra.reassignTo === department) return { status: 400 as const, why: 'reassignment to self' }
    return { status: 200 as const, applied: true, state }
  }

  const codesFor = (department: string) => [
    ...LIFECYCLE,
    ...LIFECYCLE,
    'FIXED',
    'IN_PROGRESS',
    'ACTION_SCHEDULED',
    'CANCELLED',
    'NOT_COUNCILS_RESPONSIBILITY',
    'BOGUS_CODE',
    ...(department === 'd1' ? ['D_SCHED', 'D_WORK', 'D_DONE'] : ['D_DONE']),
  ]

  for (let s = 0; s < scenarios; s++) {
    const scenario: string[] = []
    const services = ['p1', 'p2', 'p3', 'p2m'] as const
    scenario.push(await h.createRequest(r.pick(services)))
    if (r.chance(0.5)) scenario.push(await h.createRequest(r.pick(services)))
    pool.push(...scenario)
    const delivered: { department: RegisteredDepartment; id: string; event: unknown }[] = []
    const mysocIds: { department: RegisteredDepartment; fields: Record<string, string>; updateId: string }[] = []
    const length = r.int(4, 10)

    for (let step = 0; step < length; step++) {
      steps++
      const label = `seed ${seed} scenario ${s} step ${step}`
      const action = r.next()
      const wos = await workOrdersOf(scenario)
      const pickWo = () => {
        const open = wos.filter((w) => !isTerminal(w.state))
        return open.length > 0 && r.chance(0.85) ? r.pick(open) : r.pick(wos)
      }

      if (action < 0.5 || (action < 0.58 && delivered.length === 0)) {
        // A signed department callback (sometimes two identical copies at once).
        const wo = pickWo()
        const foreign = r.chance(0.05)
        const department = foreign ? r.pick(Object.keys(depts).filter((d) => d !== wo.department)) : wo.department
        const code = r.pick(codesFor(department))
        const time = r.chance(0.05) ? null : nextTime()
        const webhookTs = Math.floor(Date.now() / 1000)
        // Without occurred_at the server takes the time it received the callback.
        const at = time ? time.at : Date.now()
        const data: Record<string, string> = { work_order_id: `WO-${wo.id}`, status: code, public_note: `step ${step}` }
        if (time) data.occurred_at = iso(at)
        const reason = r.chance(0.7) ? 'not ours' : undefined
        if (reason) data.reason = reason
        const reassignTo = r.chance(0.85) ? r.pick(Object.keys(depts)) : undefined
        if (reassignTo) data.reassign_to = reassignTo
        if (r.chance(0.3)) data.expected_datetime = iso(at + r.int(1, 20) * 86_400_000)
        const expectation = predict(wo, department, code, at, { ...(reason ? { reason } : {}), ...(reassignTo ? { reassignTo } : {}) })
        const event = { type: 'work_order.status_changed', data }
        const id = newWebhookId()
        const copies = r.chance(0.1) ? 2 : 1
        const answers = await Promise.all(Array.from({ length: copies }, () => h.signed(depts[department]!, event, { id, timestamp: webhookTs })))
        count(`callback ${expectation.status}${'reason' in expectation ? ` ${expectation.reason}` : ''}${'applied' in expectation && expectation.applied ? ' applied' : ''}${copies > 1 ? ' x2' : ''}`)
        const statuses = answers.map((a) => a.statusCode)
        if (expectation.status !== 200) {
          if (!statuses.every((c) => c === expectation.status)) {
            failures++
            t.fail(`${label}: ${code} on WO-${wo.id} (${wo.state}) by ${department}: expected ${expectation.status} (${expectation.why}), got ${statuses} ${answers[0]!.body}`)
          }
        } else {
          const bodies = answers.map((a) => (a.statusCode === 200 ? (a.json() as { applied?: boolean; reason?: string; duplicate?: boolean }) : { status: a.statusCode, body: a.body }))
          const firsts = bodies.filter((b) => !('duplicate' in b && b.duplicate))
          const ok =
            statuses.every((c) => c === 200) &&
            firsts.length === 1 &&
            (firsts[0] as { applied?: boolean }).applied === expectation.applied &&
            (expectation.applied || (firsts[0] as { reason?: string }).reason === expectation.reason)
          if (!ok) {
            failures++
            t.fail(`${label}: ${code} on WO-${wo.id} (${wo.state}, last ${wo.last_event_at}) at ${iso(at)}: expected ${JSON.stringify(expectation)}, got ${JSON.stringify(bodies)}`)
          } else {
            delivered.push({ department: depts[department]!, id, event })
          }
          const [after] = await rows<{ state: string }>(sql`select state from work_orders where id = ${wo.id}`)
          const want = expectation.applied ? expectation.state : wo.state
          if (after!.state !== want) {
            failures++
            t.fail(`${label}: WO-${wo.id} is ${after!.state}, expected ${want}`)
          }
        }
      } else if (action < 0.58) {
        // A replay of an applied webhook-id, sometimes with another body: acknowledged, no change.
        const previous = r.pick(delivered)
        const before = await fingerprintOf(scenario)
        const body = r.chance(0.5) ? previous.event : { type: 'work_order.status_changed', data: { ...(previous.event as { data: object }).data, status: 'completed' } }
        const res = await h.signed(previous.department, body, { id: previous.id })
        count('replay')
        if (res.statusCode !== 200 || !(res.json() as { duplicate?: boolean }).duplicate || (await fingerprintOf(scenario)) !== before) {
          failures++
          t.fail(`${label}: replay of ${previous.id} answered ${res.statusCode} ${res.body} or changed something`)
        }
      } else if (action < 0.7) {
        // mySociety's door: a new update, or a repeated update_id.
        if (mysocIds.length > 0 && r.chance(0.3)) {
          const previous = r.pick(mysocIds)
          const before = await fingerprintOf(scenario)
          const res = await h.postUpdate(previous.department.key, previous.fields)
          count('mysociety repeat')
          const got = res.statusCode === 200 ? (res.json() as { update_id: string }[])[0]?.update_id : undefined
          if (got !== previous.updateId || (await fingerprintOf(scenario)) !== before) {
            failures++
            t.fail(`${label}: repeated update_id answered ${res.statusCode} ${res.body}, expected ${previous.updateId} and no change`)
          }
        } else {
          const target = r.pick(scenario)
          const onTarget = wos.filter((w) => w.public_id === target)
          const department = r.chance(0.9) && onTarget.length > 0 ? r.pick(onTarget).department : r.pick(Object.keys(depts))
          const code = r.pick(['OPEN', 'ACTION_SCHEDULED', 'IN_PROGRESS', 'FIXED', 'CANCELLED', 'NOT_COUNCILS_RESPONSIBILITY', 'completed', 'on_hold', 'BOGUS_CODE'])
          const time = nextTime()
          const own = onTarget.filter((w) => w.department === department)
          const chosen = own.find((w) => !isTerminal(w.state)) ?? own[own.length - 1]
          const predicted = !mapped(department, code)
            ? { status: 400 as const, why: 'unknown code' }
            : !chosen
              ? { status: 403 as const, why: 'no work order of this department' }
              : predict(chosen, department, code, time.at, { reason: `mysoc step ${step}` })
          // mySociety's answer has no "applied" flag: a report that is not applied is a 409, never an update_id.
          const expectation = 'applied' in predicted && !predicted.applied ? { status: 409 as const, why: predicted.reason } : predicted
          // mySociety's description doubles as the reason of a rejection.
          const fields = { service_request_id: target, update_id: `u-${s}-${step}`, status: code, updated_datetime: iso(time.at), description: `mysoc step ${step}` }
          const res = await h.postUpdate(depts[department]!.key, fields)
          count(`mysociety ${expectation.status}`)
          if (res.statusCode !== expectation.status) {
            failures++
            t.fail(`${label}: mySociety ${code} by ${department} on ${target}: expected ${JSON.stringify(expectation)}, got ${res.statusCode} ${res.body}`)
          } else if (res.statusCode === 200) {
            mysocIds.push({ department: depts[department]!, fields, updateId: (res.json() as { update_id: string }[])[0]!.update_id })
            const [after] = await rows<{ state: string }>(sql`select state from work_orders where id = ${chosen!.id}`)
            const want = 'applied' in expectation && expectation.applied ? expectation.state : chosen!.state
            if (after!.state !== want) {
              failures++
              t.fail(`${label}: WO-${chosen!.id} is ${after!.state} after mySociety ${code}, expected ${want}`)
            }
          }
        }
      } else if (action < 0.9) {
        // An operator tries to close (never forced).
        const target = r.pick(scenario)
        const row = await h.requestRow(target)
        const open = wos.filter((w) => w.public_id === target && !isTerminal(w.state))
        const res = await h.closeRequest(target, { reason: `operator step ${step}` })
        const expected = row.status === 'closed' || open.length > 0 ? 409 : 200
        count(`close ${expected}`)
        if (res.statusCode !== expected) {
          failures++
          t.fail(`${label}: operator close of ${target} (${row.status}, open ${open.map((w) => w.id)}): expected ${expected}, got ${res.statusCode} ${res.body}`)
        } else if (expected === 409 && row.status === 'open') {
          const listed = (res.json() as { code: string | number; description: string }[]).filter((e) => e.code === 'open_work_order').map((e) => e.description.split(' ')[0])
          if (JSON.stringify(listed.sort()) !== JSON.stringify(open.map((w) => `WO-${w.id}`).sort())) {
            failures++
            t.fail(`${label}: 409 listed ${listed}, open are ${open.map((w) => `WO-${w.id}`)}`)
          }
        } else if (expected === 200 && (await h.requestRow(target)).status !== 'closed') {
          failures++
          t.fail(`${label}: 200 but ${target} is not closed`)
        }
      } else {
        // A duplicate mark: within the scenario, onto an earlier request, or onto itself.
        const child = r.pick(scenario)
        const parent = r.chance(0.1) ? child : r.chance(0.5) && scenario.length > 1 ? scenario.find((id) => id !== child)! : r.pick(pool)
        const childRow = await h.requestRow(child)
        const parentRow = await h.requestRow(parent)
        const expected = child === parent || parentRow.parent_request_id === childRow.id ? 400 : 200
        const res = await h.markDuplicate(child, parent)
        count(`duplicate ${expected}`)
        if (res.statusCode !== expected) {
          failures++
          t.fail(`${label}: duplicate ${child} of ${parent}: expected ${expected}, got ${res.statusCode} ${res.body}`)
        } else if (expected === 200) {
          const after = await h.requestRow(child)
          const root = parentRow.parent_request_id ?? parentRow.id
          const [rootRow] = await rows<{ status: string }>(sql`select status from service_requests where id = ${root}`)
          const childWos = await workOrdersOf([child])
          const problems = [
            Number(after.parent_request_id) !== Number(root) ? `linked to ${after.parent_request_id}, expected ${root}` : '',
            childWos.some((w) => !isTerminal(w.state)) ? 'the child still has open work orders' : '',
            rootRow!.status === 'closed' && after.status !== 'closed' ? 'the parent is closed but the child is open' : '',
          ].filter(Boolean)
          if (problems.length > 0) {
            failures++
            t.fail(`${label}: duplicate ${child} of ${parent}: ${problems.join('; ')}`)
          }
        }
      }
      await checkInvariants(label, scenario)
      if (failures > 20) break
    }
    if (failures > 20) {
      t.fail('stopping after 20 failures')
      break
    }
  }

  const [summary] = await rows<{ requests: number; closed: number; work_orders: number; reassigned: number; duplicates: number }>(sql`
    select (select count(*) from service_requests sr join services s on s.id = sr.service_id where s.service_code like 'p%')::int as requests,
           (select count(*) from service_requests sr join services s on s.id = sr.service_id where s.service_code like 'p%' and sr.status = 'closed')::int as closed,
           (select count(*) from work_orders w join departments d on d.id = w.department_id where d.code like 'd_')::int as work_orders,
           (select count(*) from work_orders w join departments d on d.id = w.department_id where d.code like 'd_' and w.state = 'reassigned')::int as reassigned,
           (select count(*) from service_requests where parent_request_id is not null)::int as duplicates`)
  t.comment(`property: ${scenarios} scenarios, ${steps} steps, ${JSON.stringify(summary)}`)
  t.comment(`property outcomes: ${JSON.stringify(Object.fromEntries(Object.entries(tally).sort()))}`)
  t.equal(failures, 0, `${steps} steps over ${scenarios} scenarios (seed ${seed}) kept the invariant and matched the model`)
  // The run must have exercised what it claims to: closes by completion, refusals, reassignments, duplicates.
  t.ok(summary!.closed > 0 && summary!.closed < summary!.requests, 'some requests closed, some stayed open')
  t.ok(summary!.reassigned > 0, 'reassignments happened')
  t.ok(summary!.duplicates > 0, 'duplicate marks happened')
  t.ok((tally['close 409'] ?? 0) > 0 && (tally['close 200'] ?? 0) > 0, 'operator closes were both refused and allowed')
  t.ok(Object.keys(tally).some((k) => k.includes('stale')) && Object.keys(tally).some((k) => k.includes('backwards')) && Object.keys(tally).some((k) => k.includes('final')), 'stale, backwards and final reports occurred')
  t.ok((tally.replay ?? 0) > 0, 'replays occurred')
})
