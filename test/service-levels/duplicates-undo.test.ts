/**
 * Duplicates at intake (issue 15), the operator's side: undoing a link (`DELETE
 * /admin/v1/requests/{id}/duplicate`) opens work orders as if the request had just come in —
 * routed by its location now, due from now, announced — for intake links and operator-confirmed
 * duplicates alike; refusals change nothing. And the policy's configuration: the catalog file
 * (every bad value refused with its field), the admin listing, not in public services.json,
 * the database's own checks, and other jurisdictions' requests never found.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { importCatalog } from '../../src/domain/catalog/catalog.js'
import { CatalogError, validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'
import { sqlState } from '../helpers/query.js'
import { eventsAbout, pointAt, postAt, spot } from './duplicates-fixtures.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const JURISDICTION = { id: 'undo.test.example', name: 'Undo City', time_zone: 'UTC' }
const SERVICES = [
  { service_code: 'streetlight', service_name: 'Street light out', service_level: { hours: 48 }, duplicates: { policy: 'link', radius_m: 100, window_days: 7 } },
  { service_code: 'pothole', service_name: 'Pothole', duplicates: { policy: 'suggest', radius_m: 50, window_days: 30 } },
  { service_code: 'graffiti', service_name: 'Graffiti', duplicates: { policy: 'off' } },
  { service_code: 'tree', service_name: 'Fallen tree', duplicates: { policy: 'off', radius_m: 80, window_days: 3 } },
]
const h = await buildDepartmentHarness(t, { jurisdiction: JURISDICTION, services: SERVICES })
const { app, rows } = h
const lights = await h.registerDepartment({ code: 'lights', name: 'Lighting' })
await h.registerDepartment({ code: 'north', name: 'North Lighting' })
await h.registerDepartment({ code: 'streets', name: 'Streets' })
// Lighting by default; the north district (everything north of spot 20) has its own crew.
const north = { type: 'Polygon', coordinates: [[[-88, 42.2], [-87, 42.2], [-87, 43], [-88, 43], [-88, 42.2]]] }
await h.setRoutes('streetlight', [{ department: 'lights' }, { department: 'north', area: north, area_name: 'North' }])
await h.setRoutes('pothole', [{ department: 'streets' }])

const created = (answer: { service_request_id?: string }) => answer.service_request_id!
const unlink = (id: string, headers: Record<string, string> = h.asAdmin) => app.inject({ method: 'DELETE', url: `/admin/v1/requests/${id}/duplicate`, headers })

/** What a refused change must leave as it was. */
async function snapshot(id: string) {
  return { row: await h.requestRow(id), orders: await h.workOrders(id), updates: await h.updateCount(id), events: await eventsAbout(h, id) }
}

t.test('undoing an intake link: work orders as if just submitted, announced, with a history entry', async (t) => {
  const base = spot(1)
  const original = created(await postAt(h, 'streetlight', base))
  const child = created(await postAt(h, 'streetlight', await pointAt(h, base, 30, 0)))
  t.same(await h.workOrders(child), [], 'linked at intake: no work order')
  const before = Date.now()
  const res = await unlink(child)
  t.equal(res.statusCode, 200, res.body)
  const body = res.json() as { update_id: string; work_orders: string[] }
  const orders = await h.workOrders(child)
  t.same(body.work_orders, orders.map((o) => o.id), 'the answer names the work orders opened')
  t.same(orders.map((o) => o.state), ['pending'], 'one pending work order, for the default route')
  t.same((await eventsAbout(h, child)).map((e) => e.event_type), ['work_order.created'], 'announced to the department')
  const [event] = await h.outboxEvents(body.work_orders)
  t.equal(event!.department, 'lights')
  t.match(event!.payload.data.service_request, { service_request_id: child, status: 'open' })

  const row = await h.requestRow(child)
  t.match(row, { status: 'open', detailed_status: 'submitted', parent_request_id: null, status_notes: `Not a duplicate of ${original}: handled on its own` })
  const [due] = await rows<{ due_at: string | Date; expected_at: string | Date; agency_responsible: string; service_notice: string | null }>(
    sql`select w.due_at, sr.expected_at, sr.agency_responsible, sr.service_notice from work_orders w join service_requests sr on sr.id = w.request_id where sr.public_id = ${child}`,
  )
  const dueAt = new Date(due!.due_at).getTime()
  t.ok(dueAt >= before + 48 * 3_600_000 - 1000, 'due 48 hours from the undo, not from the report')
  t.equal(new Date(due!.expected_at).getTime(), dueAt, 'expected_at is the due date, as on submission')
  t.equal(due!.agency_responsible, 'Lighting')
  t.equal(due!.service_notice, null, 'the notice naming the original is gone')
  const view = await h.publicRequest(child)
  t.match(view.extended_attributes, { duplicate: false, parent_service_request_id: null, detailed_status: 'submitted' })
  t.match(view.notes.at(-1), { update_id: body.update_id, status: 'open', detailed_status: 'submitted', description: `Not a duplicate of ${original}: handled on its own` })

  // It is an original now: closing the old original no longer closes it.
  const [originalOrder] = await h.workOrders(original)
  t.match((await h.statusChanged(lights, { work_order_id: originalOrder!.id, status: 'completed' })).json(), { applied: true })
  t.equal((await h.requestRow(original)).status, 'closed')
  t.equal((await h.requestRow(child)).status, 'open', 'on its own')
})

t.test('routing is by the request’s location now: a north request goes to the north crew', async (t) => {
  const base = { lat: '42.5', long: '-87.63' }
  await postAt(h, 'streetlight', base)
  const child = created(await postAt(h, 'streetlight', await pointAt(h, base, 10, 0)))
  const res = await unlink(child)
  t.equal(res.statusCode, 200)
  const [event] = await h.outboxEvents(res.json().work_orders)
  t.equal(event!.department, 'north', 'the area route')
  t.equal((await h.requestRow(child)).status, 'open')
  t.equal((await h.publicRequest(child)).agency_responsible, 'North Lighting')
})

t.test('undoing an operator-confirmed duplicate: its cancelled work orders stay, new ones open', async (t) => {
  const original = await h.createRequest('pothole')
  const copy = await h.createRequest('pothole')
  const [cancelled] = await h.workOrders(copy)
  t.equal((await h.markDuplicate(copy, original)).statusCode, 200)
  const res = await unlink(copy)
  t.equal(res.statusCode, 200, res.body)
  const orders = await h.workOrders(copy)
  t.same(orders.map((o) => [o.id, o.state]), [[cancelled!.id, 'cancelled'], [res.json().work_orders[0], 'pending']])
  t.same((await eventsAbout(h, copy)).map((e) => e.event_type), ['work_order.created', 'work_order.cancelled', 'work_order.created'])
  t.match(await h.requestRow(copy), { detailed_status: 'submitted', parent_request_id: null })
  t.equal((await h.publicRequest(copy)).expected_datetime ?? null, null, 'pothole has no service level: no expected date')
})

t.test('refused, nothing changed: not a duplicate, closed, unknown, no admin key', async (t) => {
  const alone = await h.createRequest('pothole')
  const before = await snapshot(alone)
  const notDuplicate = await unlink(alone)
  t.equal(notDuplicate.statusCode, 409)
  t.same(notDuplicate.json(), [{ code: 409, description: `service request ${alone} is not a duplicate` }])
  t.same(await snapshot(alone), before, 'unchanged')

  const base = spot(3)
  const original = created(await postAt(h, 'streetlight', base))
  const child = created(await postAt(h, 'streetlight', await pointAt(h, base, 5, 0)))
  const [order] = await h.workOrders(original)
  await h.statusChanged(lights, { work_order_id: order!.id, status: 'completed' })
  t.equal((await h.requestRow(child)).status, 'closed', 'closed with its original')
  const closedBefore = await snapshot(child)
  const closed = await unlink(child)
  t.equal(closed.statusCode, 409)
  t.match(closed.json(), [{ code: 409, description: /is closed/ }])
  t.same(await snapshot(child), closedBefore, 'unchanged')

  const unknown = await unlink('99999999')
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json(), [{ code: 404, description: 'service_request_id "99999999" does not exist' }])
  const citizen = await unlink(child, { authorization: `Bearer ${h.citizen.key}` })
  t.equal(citizen.statusCode, 403, 'a citizen key may not')
  t.equal((await unlink(child, {})).statusCode, 403, 'nor no key')
})

t.test('the catalog: duplicates configured, listed for operators, not in public services', async (t) => {
  const listed = (await app.inject({ url: '/admin/v1/services', headers: h.asAdmin })).json() as { service_code: string; duplicates?: unknown }[]
  const byCode = Object.fromEntries(listed.map((s) => [s.service_code, s.duplicates]))
  t.same(byCode, {
    streetlight: { policy: 'link', radius_m: 100, window_days: 7 },
    pothole: { policy: 'suggest', radius_m: 50, window_days: 30 },
    graffiti: undefined,
    tree: { policy: 'off', radius_m: 80, window_days: 3 },
  }, 'as configured; off with nothing kept is absent, like a service without a level')
  const [graffiti] = await rows<{ duplicate_policy: string }>(sql`select duplicate_policy from services where service_code = 'graffiti'`)
  t.equal(graffiti!.duplicate_policy, 'off')
  const again = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: h.asAdmin, payload: { jurisdiction: JURISDICTION, services: SERVICES } })
  t.equal(again.statusCode, 200, again.body)
  t.same(again.json().updated, [], 're-importing the same file changes nothing (policy off included)')
  const publicList = await app.inject('/open311/v2/services.json')
  t.notMatch(publicList.body, /duplicate|radius|window/, 'public services.json does not show operator settings')
  const definition = await app.inject('/open311/v2/services/pothole.json')
  t.notMatch(definition.body, /duplicate|radius|window/, 'nor does the service definition')

  // Through the admin API: a change of policy takes effect on the next POST.
  const changed = SERVICES.map((s) => (s.service_code === 'graffiti' ? { ...s, duplicates: { policy: 'suggest', radius_m: 20, window_days: 1 } } : s))
  const put = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: h.asAdmin, payload: { jurisdiction: JURISDICTION, services: changed } })
  t.same(put.json().updated, ['graffiti'])
  const base = spot(4)
  const first = created(await postAt(h, 'graffiti', base))
  t.match((await postAt(h, 'graffiti', await pointAt(h, base, 19, 0))).service_notice, new RegExp(`request ${first}, reported 19 m away`))
})

t.test('bad policies are refused, each with its field, and nothing is imported', async (t) => {
  const withDuplicates = (...values: unknown[]) => ({
    jurisdiction: JURISDICTION,
    services: values.map((duplicates, i) => ({ service_code: `s${i}`, service_name: `Service ${i}`, duplicates })),
  })
  const bad = withDuplicates(
    { policy: 'sometimes', radius_m: 50, window_days: 30 },
    { policy: 'suggest' },
    { policy: 'link', radius_m: 50 },
    { policy: 'suggest', radius_m: 0, window_days: 30 },
    { policy: 'suggest', radius_m: 5001, window_days: 30 },
    { policy: 'suggest', radius_m: 50, window_days: 366 },
    { policy: 'suggest', radius_m: 12.5, window_days: 30 },
    { policy: 'suggest', radius_m: 50, window_days: 30, metres: 3 },
    { radius_m: 50, window_days: 30 },
    'suggest',
  )
  const faults = (() => {
    try {
      validateCatalog(structuredClone(bad), 'dups.json')
      return []
    } catch (err) {
      t.ok(err instanceof CatalogError)
      return (err as CatalogError).faults.map((f) => `${f.field} ${f.detail}`)
    }
  })()
  t.same(faults.sort(), [
    'services[0].duplicates.policy must be one of off, suggest, link (got "sometimes")',
    'services[1].duplicates.radius_m is required when the policy is suggest',
    'services[1].duplicates.window_days is required when the policy is suggest',
    'services[2].duplicates.window_days is required when the policy is link',
    'services[3].duplicates.radius_m must be a whole number from 1 to 5000 (got 0)',
    'services[4].duplicates.radius_m must be a whole number from 1 to 5000 (got 5001)',
    'services[5].duplicates.window_days must be a whole number from 1 to 365 (got 366)',
    'services[6].duplicates.radius_m must be a whole number from 1 to 5000 (got 12.5)',
    'services[7].duplicates.metres is not a known field (known: policy, radius_m, window_days)',
    'services[8].duplicates.policy is required',
    'services[9].duplicates must be an object (got "suggest")',
  ].sort())
  const refused = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: h.asAdmin, payload: bad })
  t.equal(refused.statusCode, 400)
  t.equal((refused.json() as unknown[]).length, faults.length, 'over HTTP: one error per fault')
  t.match(refused.json(), [{ code: 400, description: /^request body: services\[/ }])
  const [count] = await rows<{ n: number }>(sql`select count(*)::int as n from services where service_code like 's%' and service_code ~ '^s[0-9]$'`)
  t.equal(Number(count!.n), 0, 'nothing imported')
})

t.test('the database refuses what the file format would: a searching policy without radius or window, or out of bounds', async (t) => {
  for (const [label, change] of [
    ['suggest without a radius', sql`duplicate_policy = 'suggest', duplicate_radius_m = null, duplicate_window_days = 3`],
    ['link without a window', sql`duplicate_policy = 'link', duplicate_radius_m = 10, duplicate_window_days = null`],
    ['a radius of 0', sql`duplicate_policy = 'suggest', duplicate_radius_m = 0, duplicate_window_days = 3`],
    ['a radius over 5000 m', sql`duplicate_policy = 'off', duplicate_radius_m = 5001`],
    ['a window over 365 days', sql`duplicate_policy = 'suggest', duplicate_radius_m = 10, duplicate_window_days = 366`],
    ['an unknown policy', sql`duplicate_policy = 'always'`],
  ] as const) {
    const err = await app.db.execute(sql`update services set ${change} where service_code = 'tree'`).then(() => null, (e: unknown) => e)
    t.equal(sqlState(err), '23514', `${label}: a check violation`)
  }
})

t.test('other jurisdictions’ requests are never found', async (t) => {
  // Last: a second jurisdiction makes jurisdiction_id required on every GeoReport request.
  const other = { id: 'other.test.example', name: 'Other City', time_zone: 'UTC' }
  await importCatalog(app.db, validateCatalog({ jurisdiction: other, services: SERVICES }, 'other.json'), {}, SERVER_ACTOR)
  const base = spot(5)
  const theirs = created(await postAt(h, 'pothole', base, { fields: { jurisdiction_id: other.id } }))
  const near = await pointAt(h, base, 10, 0)
  const ours = await postAt(h, 'pothole', near, { extensions: true, fields: { jurisdiction_id: JURISDICTION.id } })
  t.equal(ours.service_notice, null, 'the other city’s pothole 10 m away is not named')
  t.same(ours.possible_duplicates, [])
  const theirSecond = await postAt(h, 'pothole', near, { extensions: true, fields: { jurisdiction_id: other.id } })
  t.same(theirSecond.possible_duplicates!.map((d) => d.service_request_id), [theirs], 'in its own city it is')
})
