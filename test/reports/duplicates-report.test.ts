/**
 * Duplicates at intake in the reports (issue 15: "a duplicate count per service in reports"):
 * a request linked on POST counts as a duplicate on its creation day; undoing the link takes it
 * out again, and the work orders it then gets carry the routing area that chose them.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'

const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'dupreport.test.example', name: 'Duplicate City', time_zone: 'America/Toronto' },
  services: [{ service_code: 'streetlight', service_name: 'Streetlight out', duplicates: { policy: 'link', radius_m: 50, window_days: 30 } }],
})
const { app, rows } = h
await h.registerDepartment({ code: 'lighting' })
await h.registerDepartment({ code: 'lighting-east' })
const spot = { lat: '43.65', long: '-79.38' }
const d = 0.01
const square = { type: 'Polygon', coordinates: [[[-79.38 - d, 43.65 - d], [-79.38 + d, 43.65 - d], [-79.38 + d, 43.65 + d], [-79.38 - d, 43.65 + d], [-79.38 - d, 43.65 - d]]] }
await h.setRoutes('streetlight', [{ department: 'lighting' }, { department: 'lighting-east', area_name: 'East', area: square }])

const duplicatesToday = async () => {
  const res = await app.inject({ url: '/admin/v1/reports/duplicates.json?by=service', headers: h.asAdmin })
  if (res.statusCode !== 200) throw new Error(res.body)
  return (res.json() as { rows: Record<string, unknown>[] }).rows.map(({ period: _period, ...row }) => row)
}

t.test('linked at intake: a duplicate in the report; unlinked: not, and its work order has its area', async (t) => {
  const original = await h.createRequest('streetlight', spot)
  const second = await h.createRequest('streetlight', spot)
  const [linked] = await rows<{ parent: number | null }>(sql`select parent_request_id as parent from service_requests where public_id = ${second}`)
  t.ok(linked!.parent, 'the second is linked to the first')
  t.same(await duplicatesToday(), [{ service_code: 'streetlight', created: 2, duplicates: 1, duplicate_pct: 50 }], 'per service (a linked duplicate has no work order, so no department or area of its own)')

  const undone = await app.inject({ method: 'DELETE', url: `/admin/v1/requests/${second}/duplicate`, headers: h.asAdmin })
  t.equal(undone.statusCode, 200, undone.body)
  t.same(await duplicatesToday(), [{ service_code: 'streetlight', created: 2, duplicates: 0, duplicate_pct: 0 }])
  const orders = await rows<{ area_name: string | null; code: string }>(
    sql`select w.area_name, d.code from work_orders w join departments d on d.id = w.department_id
        join service_requests r on r.id = w.request_id where r.public_id = ${second}`,
  )
  t.same(orders, [{ area_name: 'East', code: 'lighting-east' }], 'routed again by its location, with the area that chose the department')
  t.not(original, second)
})
