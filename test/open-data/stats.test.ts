/**
 * Public statistics (issue 15, `/open-data/v1/stats`): counts and medians per period and service
 * from the report rollups, public requests only, a count from 1 to 4 and a median over fewer
 * than 5 values suppressed; CSV and JSON carry the same rows. A hand-computed fixture in
 * November 2026, Europe/Paris (UTC+1 then).
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'

const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'stats.test.example', name: 'Stats City', time_zone: 'Europe/Paris' },
  services: [
    { service_code: 'litter', service_name: 'Litter' },
    { service_code: 'noise', service_name: 'Noise' },
  ],
})
const { app } = h
const cleansing = await h.registerDepartment({ code: 'cleansing' })
await h.setRoutes('litter', [{ department: 'cleansing' }])
await h.setRoutes('noise', [{ department: 'cleansing' }])

const at = (day: string, time: string) => `2026-11-${day}T${time}:00+01:00`
async function litter(day: string, ackMinutes: number | null, closeHours: number | null) {
  const id = await h.createRequest('litter')
  const [order] = await h.workOrders(id)
  if (ackMinutes !== null) {
    const res = await h.statusChanged(cleansing, { work_order_id: order!.id, status: closeHours === null ? 'accepted' : 'completed' })
    if (res.statusCode !== 200) throw new Error(res.body)
  }
  const came = at(day, '08:00')
  await app.db.execute(sql`update service_requests set requested_at = ${came}::timestamptz,
      closed_at = case when closed_at is null then null else ${came}::timestamptz + ${`${closeHours ?? 0} hours`}::interval end
    where public_id = ${id}`)
  await app.db.execute(sql`update work_orders set created_at = ${came}::timestamptz,
      acknowledged_at = case when acknowledged_at is null then null else ${came}::timestamptz + ${`${ackMinutes ?? 0} minutes`}::interval end,
      completed_at = case when completed_at is null then null else ${came}::timestamptz + ${`${closeHours ?? 0} hours`}::interval end
    where id = ${Number(order!.id.slice(3))}`)
  return id
}

// Litter: six public requests, five acknowledged (10, 20, 30, 40, 50 min) and closed (1–5 h),
// one open; and a seventh, taken out of public view: never in the statistics.
for (const [i, day] of ['02', '03', '04', '05', '06'].entries()) await litter(day, (i + 1) * 10, i + 1)
await litter('07', null, null)
const hidden = await litter('08', 5, 1)
const madePrivate = await app.inject({ method: 'POST', url: `/admin/v1/requests/${hidden}/public-view`, headers: h.asAdmin, payload: { public: false, reason: 'a resident asked' } })
if (madePrivate.statusCode !== 200) throw new Error(madePrivate.body)
// Noise: two requests — too few to publish.
for (const day of ['10', '11']) {
  const id = await h.createRequest('noise')
  await app.db.execute(sql`update service_requests set requested_at = ${at(day, '22:00')}::timestamptz where public_id = ${id}`)
}

const NOV = 'from=2026-11-01&to=2026-11-30'

t.test('per month and service: public counts and medians, small cells suppressed', async (t) => {
  const res = await app.inject({ url: `/open-data/v1/stats.json?${NOV}` })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['cache-control'], 'public, max-age=300')
  t.match(res.headers['access-control-allow-origin'], '*', 'open data: any origin')
  const body = res.json()
  t.match(body, { report: 'stats', from: '2026-11-01', to: '2026-11-30', group: 'month', by: ['service'] })
  t.same(body.columns, ['period', 'service_code', 'created', 'closed', 'close_median_seconds', 'acknowledged', 'ack_median_seconds', 'suppressed'])
  t.same(body.rows, [
    // Medians (percentile_disc) of 1–5 h and 10–50 min: 3 h and 30 min.
    { period: '2026-11-01', service_code: 'litter', created: 6, closed: 5, close_median_seconds: 10800, acknowledged: 5, ack_median_seconds: 1800, suppressed: false },
    { period: '2026-11-01', service_code: 'noise', created: null, closed: 0, close_median_seconds: null, acknowledged: 0, ack_median_seconds: null, suppressed: true },
  ], 'the private request is not counted; noise’s 2 is suppressed')

  const weekly = (await app.inject({ url: `/open-data/v1/stats.json?${NOV}&group=week&service=litter` })).json()
  t.same(weekly.rows, [
    { period: '2026-11-02', service_code: 'litter', created: 6, closed: 5, close_median_seconds: 10800, acknowledged: 5, ack_median_seconds: 1800, suppressed: false },
  ])
  const daily = (await app.inject({ url: `/open-data/v1/stats.json?from=2026-11-02&to=2026-11-02&group=day&service=litter` })).json()
  t.same(daily.rows, [
    { period: '2026-11-02', service_code: 'litter', created: null, closed: null, close_median_seconds: null, acknowledged: null, ack_median_seconds: null, suppressed: true },
  ], 'a single request’s day: nothing of it is published')

  const admin = (await app.inject({ url: `/admin/v1/reports/volume.json?${NOV}&group=month`, headers: h.asAdmin })).json()
  t.match(admin.rows, [{ service_code: 'litter', created: 7 }, { service_code: 'noise', created: 2 }], 'operators see every request')
})

t.test('CSV carries the same rows; bad input is a 400', async (t) => {
  const json = (await app.inject({ url: `/open-data/v1/stats.json?${NOV}` })).json() as { columns: string[]; rows: Record<string, unknown>[] }
  const csv = await app.inject({ url: `/open-data/v1/stats.csv?${NOV}` })
  t.equal(csv.statusCode, 200)
  t.match(csv.headers['content-type'], /^text\/csv/)
  const [header, ...lines] = csv.body.trimEnd().split('\r\n')
  t.same(header!.split(','), json.columns)
  t.same(lines.map((l) => l.split(',')), json.rows.map((row) => json.columns.map((c) => (row[c] === null ? '' : String(row[c])))))
  for (const query of ['from=2026-12-01&to=2026-11-01', 'group=year', 'service=nope', 'to=yesterday']) {
    const res = await app.inject({ url: `/open-data/v1/stats.json?${query}` })
    t.equal(res.statusCode, 400, query)
    t.match(res.json(), [{ code: 400 }])
  }
})
