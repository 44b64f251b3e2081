/**
 * Reports (issue 15): every figure of every report checked against a hand-computed fixture with
 * known timestamps. The requests go through the real paths (POST, routing, department reports,
 * operator notes, closing, duplicates); their times are then set to the fixture's, as they would
 * be in a city's history, and the triggers' pending cells recompute the rollups the reports read.
 *
 * The city is in America/Chicago, on standard time in November 2026 (UTC−6). Weeks start Monday:
 * 2026-11-02 and 2026-11-09.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { markOverdueWorkOrders } from '../../src/domain/service-levels/overdue.js'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'
import { inProcessCli } from '../helpers/cli.js'

const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'reports.test.example', name: 'Report City', time_zone: 'America/Chicago' },
  services: [
    { service_code: 'pothole', service_name: 'Pothole', service_level: { hours: 48 } },
    { service_code: 'graffiti', service_name: 'Graffiti' },
  ],
})
const { app, rows } = h
const square = (long: number, lat: number, d = 0.01) => ({
  type: 'Polygon',
  coordinates: [[[long - d, lat - d], [long + d, lat - d], [long + d, lat + d], [long - d, lat + d], [long - d, lat - d]]],
})
const A = { lat: '41.9', long: '-87.65' }
const B = { lat: '41.8', long: '-87.6' }
const north = await h.registerDepartment({ code: 'north' })
const roads = await h.registerDepartment({ code: 'roads' })
await h.registerDepartment({ code: 'streets' })
await h.setRoutes('pothole', [{ department: 'roads' }, { department: 'north', area_name: 'Ward A', area: square(Number(A.long), Number(A.lat)) }])
await h.setRoutes('graffiti', [{ department: 'streets' }])
// Roads answers for potholes within 24 h, not the service's 48 h.
const roadsLevel = await app.inject({ method: 'PUT', url: '/admin/v1/departments/roads/service-levels', headers: h.asAdmin, payload: { service_levels: [{ service_code: 'pothole', hours: 24 }] } })
if (roadsLevel.statusCode !== 200) throw new Error(roadsLevel.body)
const template = await app.inject({ method: 'PUT', url: '/admin/v1/templates/received', headers: h.asAdmin, payload: { public_text: 'Thank you: request {service_request_id} is with our crews.' } })
if (template.statusCode !== 200) throw new Error(template.body)

/** A local time in the city, November 2026 (UTC−6). */
const local = (day: string, time: string) => `2026-11-${day}T${time}:00-06:00`

async function report(name: string, query: string, format: 'json' | 'csv' = 'json') {
  const res = await app.inject({ url: `/admin/v1/reports/${name}.${format}?${query}`, headers: h.asAdmin })
  if (res.statusCode !== 200) throw new Error(`${name}: ${res.statusCode} ${res.body}`)
  return res
}
const reportRows = async (name: string, query: string) => (await report(name, query)).json().rows as Record<string, unknown>[]

const requestId = async (publicId: string) => Number((await rows<{ id: number }>(sql`select id from service_requests where public_id = ${publicId}`))[0]!.id)

/** Sets a request's creation (and its work orders' opening, due dates moved with it) and channel, as if it came in then. */
async function cameIn(publicId: string, at: string, channel: string) {
  const id = await requestId(publicId)
  await app.db.execute(sql`update service_requests set requested_at = ${at}::timestamptz, channel = ${channel} where id = ${id}`)
  await app.db.execute(sql`update work_orders set due_at = due_at + (${at}::timestamptz - created_at), created_at = ${at}::timestamptz where request_id = ${id}`)
}
const setWorkOrder = async (publicId: string, column: 'acknowledged_at' | 'completed_at' | 'overdue_at', at: string) =>
  app.db.execute(sql`update work_orders set ${sql.identifier(column)} = ${at}::timestamptz where request_id = ${await requestId(publicId)}`)
const setClosed = async (publicId: string, at: string) =>
  app.db.execute(sql`update service_requests set closed_at = ${at}::timestamptz where id = ${await requestId(publicId)}`)

async function note(publicId: string, body: Record<string, unknown>, at: string) {
  const res = await app.inject({ method: 'POST', url: `/admin/v1/requests/${publicId}/notes`, headers: h.asAdmin, payload: { public: true, ...body } })
  if (res.statusCode !== 200) throw new Error(res.body)
  const { update_id } = res.json() as { update_id: string }
  await app.db.execute(sql`update request_updates set created_at = ${at}::timestamptz where update_id = ${update_id}`)
}
const workOrderOf = async (publicId: string) => (await h.workOrders(publicId))[0]!.id
async function report311(department: typeof north, publicId: string, status: string) {
  const res = await h.statusChanged(department, { work_order_id: await workOrderOf(publicId), status })
  if (res.statusCode !== 200) throw new Error(res.body)
}

// R1: pothole in Ward A (north), web, 11-02 09:00; acknowledged an hour later; completed and
// closed a day after it came in, within its 48 h.
const r1 = await h.createRequest('pothole', A)
await note(r1, { template: 'received' }, local('02', '11:00'))
await report311(north, r1, 'accepted')
await report311(north, r1, 'completed')
await cameIn(r1, local('02', '09:00'), 'web')
await setWorkOrder(r1, 'acknowledged_at', local('02', '10:00'))
await setWorkOrder(r1, 'completed_at', local('03', '09:00'))
await setClosed(r1, local('03', '09:00'))
// R2: pothole in Ward A, phone, 11-03 08:00; acknowledged after 2 h; completed 72 h after it
// came in: late (due 11-05 08:00), a breach on 11-05.
const r2 = await h.createRequest('pothole', A)
await note(r2, { description: 'We are on it.' }, local('03', '11:00'))
await report311(north, r2, 'accepted')
await report311(north, r2, 'completed')
await cameIn(r2, local('03', '08:00'), 'phone')
await setWorkOrder(r2, 'acknowledged_at', local('03', '10:00'))
await setWorkOrder(r2, 'completed_at', local('06', '08:00'))
await setWorkOrder(r2, 'overdue_at', local('05', '08:00'))
await setClosed(r2, local('06', '08:00'))
// R3: pothole at B (no area: roads' default route), app, 11-04 12:00, due in roads' 24 h;
// acknowledged a day later; still open and overdue since 11-05 12:00.
const r3 = await h.createRequest('pothole', B)
await report311(roads, r3, 'accepted')
await cameIn(r3, local('04', '12:00'), 'app')
await setWorkOrder(r3, 'acknowledged_at', local('05', '12:00'))
// Its due date passes (11-05 12:00): the sweep, on a fake clock a second later, marks the breach.
const sweptR3 = await markOverdueWorkOrders(app.db, { now: new Date(Date.parse(local('05', '12:00')) + 1000) })
// R4: graffiti (streets), web, Monday 11-09 09:00; an operator note from the template, then
// closed by an operator half an hour after it came in, never acknowledged.
const r4 = await h.createRequest('graffiti', A)
await note(r4, { template: 'received' }, local('09', '09:15'))
const closed = await h.closeRequest(r4, { reason: 'Removed by the desk', force: true })
if (closed.statusCode !== 200) throw new Error(closed.body)
await cameIn(r4, local('09', '09:00'), 'web')
await setClosed(r4, local('09', '09:30'))
// R5: pothole in Ward A, web, 11-10 09:00, confirmed a duplicate of R3: open until R3 closes.
const r5 = await h.createRequest('pothole', A)
const duplicate = await h.markDuplicate(r5, r3)
if (duplicate.statusCode !== 200) throw new Error(duplicate.body)
await cameIn(r5, local('10', '09:00'), 'web')

const NOV = 'from=2026-11-01&to=2026-11-15'

const zeroChannels = { created_web: 0, created_app: 0, created_phone: 0, created_chat: 0, created_email: 0, created_walk_in: 0, created_text: 0, created_social: 0, created_internal: 0 }

t.test('volume: created, closed, still open and by channel, per week and service', async (t) => {
  t.same(await reportRows('volume', `${NOV}&group=week&by=service`), [
    { period: '2026-11-02', service_code: 'pothole', created: 3, closed: 2, still_open: 1, ...zeroChannels, created_web: 1, created_phone: 1, created_app: 1 },
    { period: '2026-11-09', service_code: 'graffiti', created: 1, closed: 1, still_open: 0, ...zeroChannels, created_web: 1 },
    { period: '2026-11-09', service_code: 'pothole', created: 1, closed: 0, still_open: 1, ...zeroChannels, created_web: 1 },
  ])
  t.same(
    (await reportRows('volume', `${NOV}&group=week&by=department`)).map(({ period, department_code, created, closed, still_open }) => ({ period, department_code, created, closed, still_open })),
    [
      { period: '2026-11-02', department_code: 'north', created: 2, closed: 2, still_open: 0 },
      { period: '2026-11-02', department_code: 'roads', created: 1, closed: 0, still_open: 1 },
      { period: '2026-11-09', department_code: 'north', created: 1, closed: 0, still_open: 1 },
      { period: '2026-11-09', department_code: 'streets', created: 1, closed: 1, still_open: 0 },
    ],
    'by department: the request’s latest work order’s',
  )
  t.same(
    (await reportRows('volume', `${NOV}&group=month&by=service`)).map(({ period, service_code, created, closed, still_open }) => ({ period, service_code, created, closed, still_open })),
    [
      { period: '2026-11-01', service_code: 'graffiti', created: 1, closed: 1, still_open: 0 },
      { period: '2026-11-01', service_code: 'pothole', created: 4, closed: 2, still_open: 2 },
    ],
  )
  t.same(
    (await reportRows('volume', `${NOV}&service=pothole`)).map(({ period, created, closed }) => ({ period, created, closed })),
    [
      { period: '2026-11-02', created: 1, closed: 0 },
      { period: '2026-11-03', created: 1, closed: 1 },
      { period: '2026-11-04', created: 1, closed: 0 },
      { period: '2026-11-06', created: 0, closed: 1 },
      { period: '2026-11-10', created: 1, closed: 0 },
    ],
    'per local day by default (11-05: only an acknowledgement, no volume row); the service filter',
  )
  t.same(
    (await reportRows('volume', `${NOV}&group=week&channel=phone&by=channel,area`)).map(({ period, channel, area, created, closed }) => ({ period, channel, area, created, closed })),
    [{ period: '2026-11-02', channel: 'phone', area: 'Ward A', created: 1, closed: 1 }],
    'the channel filter, grouped by channel and area',
  )
  const today = (await rows<{ today: string }>(sql`select (now() at time zone 'America/Chicago')::date::text as today`))[0]!.today
  t.same(await reportRows('volume', `from=${today}&to=${today}`), [], 'the day the requests were really posted: moved away, nothing left there')
})

t.test('timeliness: acknowledgement and closing times, SLA compliance, breaches and overdue now', async (t) => {
  const [r3Order] = await rows<{ hours: number }>(sql`select extract(epoch from due_at - created_at)::int / 3600 as hours from work_orders where request_id = ${await requestId(r3)}`)
  t.equal(r3Order!.hours, 24, 'R3 is due in roads’ own 24 h')
  t.equal(sweptR3, 1, 'the sweep marked R3 overdue on its fake clock')
  const none = { acknowledged: 0, ack_median_seconds: null, ack_p90_seconds: null, closed: 0, close_median_seconds: null, close_p90_seconds: null, completed_with_due: 0, completed_within_due: 0, sla_compliance_pct: null, went_overdue: 0 }
  t.same(await reportRows('timeliness', `${NOV}&group=week&by=service`), [
    {
      period: '2026-11-02', service_code: 'pothole',
      acknowledged: 3, ack_median_seconds: 7200, ack_p90_seconds: 86400,
      closed: 2, close_median_seconds: 86400, close_p90_seconds: 259000,
      completed_with_due: 2, completed_within_due: 1, sla_compliance_pct: 50, went_overdue: 2, overdue_open_now: 1,
    },
    { period: '2026-11-09', service_code: 'graffiti', ...none, closed: 1, close_median_seconds: 1800, close_p90_seconds: 1800, overdue_open_now: 0 },
  ], 'R2’s 72 h (259,200 s) kept to 3 significant digits; R2 completed late and R3 swept past roads’ 24 h: two breaches; R3 overdue now')
  t.same(await reportRows('timeliness', `${NOV}&group=week&by=service&area=Ward%20A`), [
    {
      period: '2026-11-02', service_code: 'pothole',
      acknowledged: 2, ack_median_seconds: 3600, ack_p90_seconds: 7200,
      closed: 2, close_median_seconds: 86400, close_p90_seconds: 259000,
      completed_with_due: 2, completed_within_due: 1, sla_compliance_pct: 50, went_overdue: 1, overdue_open_now: 0,
    },
  ], 'Ward A only: R3 is roads’ (no area)')
  t.same(
    await reportRows('timeliness', `from=2026-11-09&to=2026-11-15&group=week&by=department&department=roads`),
    [{ period: '2026-11-09', department_code: 'roads', ...none, overdue_open_now: 1 }],
    'overdue work with nothing else in the range still shows, on the last period',
  )
  const overdueEvents = await rows<{ n: number }>(sql`select count(*)::int as n from outbox where event_type = 'work_order.overdue'`)
  t.equal(overdueEvents[0]!.n, 1, 'the department was told (work_order.overdue)')
  const alerts = (await app.inject({ url: '/admin/v1/alerts', headers: h.asAdmin })).json() as { kind: string }[]
  t.equal(alerts.filter((a) => a.kind === 'work_order_overdue').length, 1, 'and the operators alerted')
})

t.test('backlog: open requests now by age, per service and department', async (t) => {
  const today = (await rows<{ today: string }>(sql`select (now() at time zone 'America/Chicago')::date::text as today`))[0]!.today
  const bucket = (created: string) => {
    const age = (Date.parse(`${today}T00:00:00Z`) - Date.parse(`${created}T00:00:00Z`)) / 86_400_000
    const counts = { open_0_2_days: 0, open_3_7_days: 0, open_8_30_days: 0, open_over_30_days: 0 }
    counts[age <= 2 ? 'open_0_2_days' : age <= 7 ? 'open_3_7_days' : age <= 30 ? 'open_8_30_days' : 'open_over_30_days'] = 1
    return { ...counts, open_total: 1 }
  }
  const answer = (await report('backlog', 'from=2026-11-01&to=2026-11-02&group=month')).json()
  t.same(answer.rows, [
    { service_code: 'pothole', department_code: 'north', ...bucket('2026-11-10') },
    { service_code: 'pothole', department_code: 'roads', ...bucket('2026-11-04') },
  ], 'R5 (north) and R3 (roads), aged from their local creation day; range and period do not apply')
  t.match(answer, { from: null, to: null, group: null, by: ['service', 'department'] })
})

t.test('duplicates and templates', async (t) => {
  t.same(await reportRows('duplicates', `${NOV}&group=week`), [
    { period: '2026-11-02', service_code: 'pothole', created: 3, duplicates: 0, duplicate_pct: 0 },
    { period: '2026-11-09', service_code: 'graffiti', created: 1, duplicates: 0, duplicate_pct: 0 },
    { period: '2026-11-09', service_code: 'pothole', created: 1, duplicates: 1, duplicate_pct: 100 },
  ])
  t.same(await reportRows('templates', `${NOV}&group=week`), [
    { period: '2026-11-02', service_code: 'pothole', public_notes: 2, from_template: 1, template_pct: 50 },
    { period: '2026-11-09', service_code: 'graffiti', public_notes: 1, from_template: 1, template_pct: 100 },
  ], 'answers only: the departments’ status lines, the closing reason and the duplicate line are not')
})

t.test('CSV carries the same figures, streamed with a header row', async (t) => {
  for (const name of ['volume', 'timeliness', 'backlog', 'duplicates', 'templates']) {
    const json = (await report(name, `${NOV}&group=week`)).json() as { columns: string[]; rows: Record<string, unknown>[] }
    const csv = await report(name, `${NOV}&group=week`, 'csv')
    t.match(csv.headers['content-type'], /^text\/csv; charset=utf-8/)
    const [header, ...lines] = csv.body.trimEnd().split('\r\n')
    t.same(header!.split(','), json.columns, `${name}: the columns`)
    t.same(
      lines.map((line) => line.split(',')),
      json.rows.map((row) => json.columns.map((c) => (row[c] === null ? '' : String(row[c])))),
      `${name}: the rows`,
    )
  }
})

t.test('bad input is a 400 in the error format; nothing is written', async (t) => {
  for (const [query, pattern] of [
    ['from=2026-11-10&to=2026-11-01', /from: 2026-11-10 is after to/],
    ['from=2020-01-01&to=2026-11-01', /at most 1827 days/],
    ['service=nope', /no service "nope"/],
    ['department=nope', /no department "nope"/],
    ['by=ward', /by/],
    ['group=year', /group/],
    ['from=11/01/2026', /from/],
    ['channel=fax', /channel/],
  ] as const) {
    const res = await app.inject({ url: `/admin/v1/reports/volume.json?${query}`, headers: h.asAdmin })
    t.equal(res.statusCode, 400, query)
    t.match(res.json(), [{ code: 400, description: pattern }], query)
  }
  const unauthenticated = await app.inject({ url: '/admin/v1/reports/volume.json' })
  t.equal(unauthenticated.statusCode, 403, 'the admin scope is required')
})

t.test('the per-channel and per-service rows are the full cells summed, their histograms merged', async (t) => {
  const counts = sql.raw(['created', 'still_open', 'duplicates', 'closed', 'acknowledged', 'completed_with_due', 'completed_within_due', 'went_overdue', 'public_notes', 'from_template'].map((c) => `sum(${c})::int as ${c}`).join(', '))
  const key = (by: string) => sql.raw(`jurisdiction_id, service_id, day, public${by}`)
  for (const [grain, keyColumns] of [['channel', ', channel'], ['department', ', department_id'], ['service', '']] as const) {
    const coarse = await rows(sql`select ${key(keyColumns)}, ${counts} from report_daily where grain = ${grain} group by ${key(keyColumns)} order by ${key(keyColumns)}`)
    const summed = await rows(sql`select ${key(keyColumns)}, ${counts} from report_daily where grain = 'full' group by ${key(keyColumns)} order by ${key(keyColumns)}`)
    t.ok(summed.length > 3, `${grain}: the fixture has cells to sum`)
    t.same(coarse, summed, `${grain}: the counts`)
    for (const kind of ['close', 'ack']) {
      // Each histogram as a multiset of (value, count) per key: merged values are summed, none lost.
      const values = (which: string) =>
        rows(sql`select ${key(keyColumns)}, v.value, sum(v.n)::int as n
          from report_daily, unnest(${sql.raw(`${kind}_seconds`)}, ${sql.raw(`${kind}_counts`)}) v(value, n)
          where grain = ${which} group by ${key(keyColumns)}, v.value order by ${key(keyColumns)}, v.value`)
      const merged = await values(grain)
      t.ok(merged.length > 0, `${grain}: ${kind} durations to merge`)
      t.same(merged, await values('full'), `${grain}: the ${kind} histograms`)
    }
  }
  // Each row's created requests by channel, summed over the cells: {"web": n, …} per key.
  const byChannel = (grain: string) =>
    rows(sql`select jurisdiction_id, service_id, day, public, c.key as channel, sum(c.value::int)::int as created
      from report_daily, jsonb_each_text(created_channels) c where grain = ${grain}
      group by jurisdiction_id, service_id, day, public, c.key order by jurisdiction_id, service_id, day, public, c.key`)
  const split = await byChannel('full')
  t.ok(split.length > 3, 'the cells split their created requests by channel')
  t.same(await byChannel('channel'), split, 'channel: created by channel')
  t.same(await byChannel('department'), split, 'department: created by channel')
  t.same(await byChannel('service'), split, 'service: created by channel, every channel in one row')
  const [channels] = await rows<{ n: number }>(sql`select count(distinct channel)::int as n from report_daily where grain = 'full'`)
  t.ok(channels!.n > 1, 'the fixture has several channels, so per-channel rows differ from per-service ones')
})

t.test('`reports rebuild` recomputes the same rollups from the base tables', async (t) => {
  const before = await rows(sql`select * from report_daily order by jurisdiction_id, day, service_id, grain, department_id, channel, area, public`)
  await app.db.execute(sql`delete from report_daily`)
  const rebuilt = await inProcessCli(h.database, app.config)('reports', 'rebuild', '--from', '2026-11-01', '--to', '2026-11-30')
  t.equal(rebuilt.code, 0, rebuilt.stderr)
  t.match(rebuilt.stdout, /^rebuilt 30 days \(60 cells\) in [\d.]+ s\n$/, 'every service on every day')
  const refused = await inProcessCli(h.database, app.config)('reports', 'rebuild', '--from', '11/01/2026')
  t.equal(refused.code, 2)
  t.match(refused.stderr, /--from must be a date/)
  t.same(await rows(sql`select * from report_daily order by jurisdiction_id, day, service_id, grain, department_id, channel, area, public`), before)
})
