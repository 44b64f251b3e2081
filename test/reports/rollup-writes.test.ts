/**
 * The rollups' write path (docs/reports.md, "Rollups"): each case makes a known state, does one
 * kind of write, then checks (a) the report figures against hand-computed values and (b) that
 * they equal what a full `rebuildRollups` gives from the base tables — the triggers marked every
 * cell the write changed, and the incremental refresh and the rebuild agree.
 *
 * Each case has its own service and its own month, so the cases do not see each other's
 * figures. The city is in America/Chicago: CDT (UTC−5) from 2026-03-08 to 2026-11-01, CST
 * (UTC−6) outside. Weeks start Monday.
 */
import { sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { resolveJurisdiction } from '../../src/domain/jurisdictions.js'
import { resolveReportQuery } from '../../src/domain/reports/report-query.js'
import { REPORTS, runReportDefinition } from '../../src/domain/reports/reports.js'
import { rebuildRollups, refreshRollups } from '../../src/domain/reports/rollups.js'
import { buildDepartmentHarness, type RegisteredDepartment } from '../departments/fixtures/harness.js'

const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'rollup-writes.test.example', name: 'Write City', time_zone: 'America/Chicago' },
  services: [
    { service_code: 'litter', service_name: 'Litter' },
    { service_code: 'pothole', service_name: 'Pothole' },
    { service_code: 'graffiti', service_name: 'Graffiti' },
    { service_code: 'bins', service_name: 'Bins' },
    { service_code: 'streetlight', service_name: 'Streetlight' },
    { service_code: 'noise', service_name: 'Noise' },
  ],
})
const { app, rows } = h
const north = await h.registerDepartment({ code: 'north' })
const roads = await h.registerDepartment({ code: 'roads' })
const streets = await h.registerDepartment({ code: 'streets' })
for (const [service, department] of [['litter', 'north'], ['pothole', 'roads'], ['graffiti', 'streets'], ['bins', 'streets'], ['streetlight', 'north'], ['noise', 'north']]) {
  await h.setRoutes(service!, [{ department }])
}
const template = await app.inject({ method: 'PUT', url: '/admin/v1/templates/received', headers: h.asAdmin, payload: { public_text: 'Thank you: request {service_request_id} is with our crews.' } })
if (template.statusCode !== 200) throw new Error(template.body)

async function reportRows(name: string, query: string, columns?: string[]) {
  const res = await app.inject({ url: `/admin/v1/reports/${name}.json?${query}`, headers: h.asAdmin })
  if (res.statusCode !== 200) throw new Error(`${name}: ${res.statusCode} ${res.body}`)
  const all = res.json().rows as Record<string, unknown>[]
  return columns ? all.map((row) => Object.fromEntries(columns.map((c) => [c, row[c]]))) : all
}
const requestId = async (publicId: string) => Number((await rows<{ id: number }>(sql`select id from service_requests where public_id = ${publicId}`))[0]!.id)
const workOrderIds = async (publicId: string) =>
  (await rows<{ id: number }>(sql`select id from work_orders where request_id = ${await requestId(publicId)} order by id`)).map((r) => Number(r.id))

/** A request that came in at `at` (its work orders opened then too). */
async function cameIn(serviceCode: string, at: string, channel = 'web') {
  const id = await h.createRequest(serviceCode)
  const rid = await requestId(id)
  await app.db.execute(sql`update service_requests set requested_at = ${at}::timestamptz, channel = ${channel} where id = ${rid}`)
  await app.db.execute(sql`update work_orders set created_at = ${at}::timestamptz where request_id = ${rid}`)
  return id
}
async function departmentReports(department: RegisteredDepartment, publicId: string, status: string, extra: Record<string, string> = {}) {
  const ids = await workOrderIds(publicId)
  const res = await h.statusChanged(department, { work_order_id: `WO-${ids.at(-1)}`, status, ...extra })
  if (res.statusCode !== 200) throw new Error(res.body)
}
const setWorkOrder = async (workOrderId: number, column: 'acknowledged_at' | 'completed_at' | 'created_at', at: string) =>
  app.db.execute(sql`update work_orders set ${sql.identifier(column)} = ${at}::timestamptz where id = ${workOrderId}`)
/** Completed by its department and closed at `at`. */
async function completedAndClosed(department: RegisteredDepartment, publicId: string, at: string) {
  await departmentReports(department, publicId, 'completed')
  const [wo] = (await workOrderIds(publicId)).slice(-1)
  await setWorkOrder(wo!, 'completed_at', at)
  const row = await h.requestRow(publicId)
  if (row.status !== 'closed') throw new Error(`${publicId} did not close on completion`)
  await app.db.execute(sql`update service_requests set closed_at = ${at}::timestamptz where id = ${row.id}`)
}
async function note(publicId: string, body: Record<string, unknown>, at: string) {
  const res = await app.inject({ method: 'POST', url: `/admin/v1/requests/${publicId}/notes`, headers: h.asAdmin, payload: { public: true, ...body } })
  if (res.statusCode !== 200) throw new Error(res.body)
  const { update_id } = res.json() as { update_id: string }
  await app.db.execute(sql`update request_updates set created_at = ${at}::timestamptz where update_id = ${update_id}`)
  return update_id
}

const KEY = sql`order by jurisdiction_id, day, service_id, grain, department_id, channel, area, public`
/**
 * (b): the rollups as the incremental path left them (after a refresh: nothing pending) equal a
 * rebuild of every day from the base tables — no missing, stale or extra cell anywhere.
 */
async function agreesWithRebuild(t: Test, what: string) {
  await refreshRollups(app.db)
  const [pending] = await rows<{ n: number }>(sql`select count(*)::int as n from report_rollup_pending`)
  t.equal(pending!.n, 0, `${what}: nothing left pending after a refresh`)
  const incremental = await rows(sql`select * from report_daily ${KEY}`)
  await app.db.execute(sql`delete from report_daily`)
  await rebuildRollups(app.db)
  t.same(await rows(sql`select * from report_daily ${KEY}`), incremental, `${what}: the incremental rollups equal a full rebuild`)
}

t.test('1. a public note made private and public again; its request withdrawn from public view and back', async (t) => {
  const OCT = 'from=2026-10-01&to=2026-10-31&service=litter'
  const litter: string[] = []
  for (const day of ['05', '06', '07', '08', '09']) litter.push(await cameIn('litter', `2026-10-${day}T09:00:00-05:00`))
  const fromTemplate = await note(litter[0]!, { template: 'received' }, '2026-10-05T10:00:00-05:00')
  await note(litter[0]!, { description: 'On our list for Tuesday.' }, '2026-10-06T11:00:00-05:00')
  const jurisdiction = await resolveJurisdiction(app.db, undefined)
  /** The templates report as the public-only rollups give it (the `public` key the open-data stats filter on). */
  const publicTemplates = async () =>
    (await runReportDefinition(app.db, REPORTS.templates, await resolveReportQuery(app.db, jurisdiction, { from: '2026-10-01', to: '2026-10-31', group: 'week' }, { by: ['service'], publicOnly: true }))).rows
  const stats = async () => {
    await refreshRollups(app.db) // the stats read the rollups as the worker leaves them
    const res = await app.inject({ url: '/open-data/v1/stats.json?from=2026-10-01&to=2026-10-31&service=litter' })
    if (res.statusCode !== 200) throw new Error(res.body)
    return res.json().rows
  }
  const both = [
    { period: '2026-10-05', service_code: 'litter', public_notes: 1, from_template: 1, template_pct: 100 },
    { period: '2026-10-06', service_code: 'litter', public_notes: 1, from_template: 0, template_pct: 0 },
  ]
  const weekBoth = [{ period: '2026-10-05', service_code: 'litter', public_notes: 2, from_template: 1, template_pct: 50 }]
  const statsAll = [{ period: '2026-10-01', service_code: 'litter', created: 5, closed: 0, close_median_seconds: null, acknowledged: 0, ack_median_seconds: null, suppressed: false }]
  t.same(await reportRows('templates', OCT), both, 'before: two answers, one pre-approved')
  t.same(await publicTemplates(), weekBoth, 'the same in the public-only rollups')
  t.same(await stats(), statsAll, 'five public requests, published')
  await agreesWithRebuild(t, 'before')

  await app.db.execute(sql`update request_updates set is_public = false where update_id = ${fromTemplate}`)
  t.same(await reportRows('templates', OCT), [both[1]], 'the template note made private: no longer an answer given in public')
  t.same(await reportRows('templates', `${OCT}&group=week`), [{ period: '2026-10-05', service_code: 'litter', public_notes: 1, from_template: 0, template_pct: 0 }])
  t.same(await publicTemplates(), [{ period: '2026-10-05', service_code: 'litter', public_notes: 1, from_template: 0, template_pct: 0 }])
  t.same(await stats(), statsAll, 'the statistics count requests, not notes: unchanged')
  await agreesWithRebuild(t, 'note private')

  await app.db.execute(sql`update request_updates set is_public = true where update_id = ${fromTemplate}`)
  t.same(await reportRows('templates', OCT), both, 'public again: counted again')
  t.same(await publicTemplates(), weekBoth)
  await agreesWithRebuild(t, 'note public again')

  const view = (value: boolean) => app.inject({ method: 'POST', url: `/admin/v1/requests/${litter[0]}/public-view`, headers: h.asAdmin, payload: { public: value, reason: 'a resident asked' } })
  t.equal((await view(false)).statusCode, 200)
  t.same(await reportRows('templates', OCT), both, 'operators still see every answer')
  t.same(await publicTemplates(), [], 'the public-only rollups lose the withdrawn request’s answers')
  t.same(await stats(), [{ ...statsAll[0], created: null, suppressed: true }], 'four public requests: suppressed')
  t.same(await reportRows('volume', OCT, ['period', 'created']), ['05', '06', '07', '08', '09'].map((d) => ({ period: `2026-10-${d}`, created: 1 })))
  await agreesWithRebuild(t, 'request withdrawn')

  t.equal((await view(true)).statusCode, 200)
  t.same(await publicTemplates(), weekBoth)
  t.same(await stats(), statsAll)
  await agreesWithRebuild(t, 'request public again')
})

t.test('2. a request moved to another service: the old and the new service’s cells', async (t) => {
  const SEP = 'from=2026-09-01&to=2026-09-30'
  const moved = await cameIn('pothole', '2026-09-08T09:00:00-05:00')
  const stays = await cameIn('pothole', '2026-09-08T12:00:00-05:00', 'phone')
  await departmentReports(roads, moved, 'accepted')
  await setWorkOrder((await workOrderIds(moved))[0]!, 'acknowledged_at', '2026-09-08T10:00:00-05:00')
  await note(moved, { description: 'Filled.' }, '2026-09-09T08:00:00-05:00')
  await completedAndClosed(roads, moved, '2026-09-09T09:00:00-05:00')
  const volume = () => reportRows('volume', SEP, ['period', 'service_code', 'created', 'closed', 'still_open', 'created_web', 'created_phone'])
  const timeliness = () => reportRows('timeliness', `${SEP}&group=month`, ['period', 'service_code', 'acknowledged', 'ack_median_seconds', 'closed', 'close_median_seconds'])
  const templates = () => reportRows('templates', SEP, ['period', 'service_code', 'public_notes'])
  t.same(await volume(), [
    { period: '2026-09-08', service_code: 'pothole', created: 2, closed: 0, still_open: 1, created_web: 1, created_phone: 1 },
    { period: '2026-09-09', service_code: 'pothole', created: 0, closed: 1, still_open: 0, created_web: 0, created_phone: 0 },
  ])
  t.same(await timeliness(), [{ period: '2026-09-01', service_code: 'pothole', acknowledged: 1, ack_median_seconds: 3600, closed: 1, close_median_seconds: 86400 }])
  t.same(await templates(), [{ period: '2026-09-09', service_code: 'pothole', public_notes: 1 }])
  await agreesWithRebuild(t, 'before')

  await app.db.execute(sql`update service_requests set service_id = (select id from services where service_code = 'graffiti') where id = ${await requestId(moved)}`)
  t.same(await volume(), [
    { period: '2026-09-08', service_code: 'graffiti', created: 1, closed: 0, still_open: 0, created_web: 1, created_phone: 0 },
    { period: '2026-09-08', service_code: 'pothole', created: 1, closed: 0, still_open: 1, created_web: 0, created_phone: 1 },
    { period: '2026-09-09', service_code: 'graffiti', created: 0, closed: 1, still_open: 0, created_web: 0, created_phone: 0 },
  ], 'its creation and closing under graffiti; the pothole that stays, alone under pothole')
  t.same(await timeliness(), [{ period: '2026-09-01', service_code: 'graffiti', acknowledged: 1, ack_median_seconds: 3600, closed: 1, close_median_seconds: 86400 }], 'its work order’s acknowledgement moves too (the pothole left was never acknowledged)')
  t.same(await templates(), [{ period: '2026-09-09', service_code: 'graffiti', public_notes: 1 }], 'and its note')
  const [potholeCells] = await rows<{ n: number }>(sql`select count(*)::int as n from report_daily d join services s on s.id = d.service_id
      where d.grain = 'full' and s.service_code = 'pothole' and d.day between '2026-09-01' and '2026-09-30' and (d.closed > 0 or d.acknowledged > 0 or d.public_notes > 0)`)
  t.equal(potholeCells!.n, 0, 'no figure of the moved request left in a pothole cell')
  t.ok(stays)
  await agreesWithRebuild(t, 'after the move')
})

t.test('3. a request deleted: refused while its work orders have outbox events; once those are gone, its cells are recomputed', async (t) => {
  const AUG = 'from=2026-08-01&to=2026-08-31'
  const deleted = await cameIn('bins', '2026-08-03T09:00:00-05:00')
  await cameIn('bins', '2026-08-03T10:00:00-05:00')
  await departmentReports(streets, deleted, 'accepted')
  await setWorkOrder((await workOrderIds(deleted))[0]!, 'acknowledged_at', '2026-08-03T11:00:00-05:00')
  await note(deleted, { template: 'received' }, '2026-08-04T09:00:00-05:00')
  await completedAndClosed(streets, deleted, '2026-08-04T10:00:00-05:00')
  const figures = async () => ({
    volume: await reportRows('volume', `${AUG}&service=bins`, ['period', 'created', 'closed', 'still_open']),
    timeliness: await reportRows('timeliness', `${AUG}&service=bins&group=month`, ['period', 'acknowledged', 'closed']),
    templates: await reportRows('templates', `${AUG}&service=bins`, ['period', 'public_notes', 'from_template']),
  })
  const before = {
    volume: [{ period: '2026-08-03', created: 2, closed: 0, still_open: 1 }, { period: '2026-08-04', created: 0, closed: 1, still_open: 0 }],
    timeliness: [{ period: '2026-08-01', acknowledged: 1, closed: 1 }],
    templates: [{ period: '2026-08-04', public_notes: 1, from_template: 1 }],
  }
  t.same(await figures(), before)
  await agreesWithRebuild(t, 'before')

  const id = await requestId(deleted)
  type PgError = { code?: string; constraint?: string; cause?: PgError }
  const refused = await app.db.execute(sql`delete from service_requests where id = ${id}`).then(() => null, (err: PgError) => err.cause ?? err)
  t.ok(refused, 'a plain DELETE of a request whose work orders have outbox events is refused')
  t.match(refused, { code: '23503', constraint: 'outbox_work_order_id_work_orders_id_fk' }, 'by the outbox’s foreign key on work orders (the schema’s only guard)')
  t.same(await figures(), before, 'nothing changed')

  // What a retention job would do first: the delivered events of its work orders.
  await app.db.execute(sql`delete from outbox where work_order_id in (select id from work_orders where request_id = ${id})`)
  await app.db.execute(sql`delete from service_requests where id = ${id}`)
  t.same(await figures(), {
    volume: [{ period: '2026-08-03', created: 1, closed: 0, still_open: 1 }],
    timeliness: [],
    templates: [],
  }, 'its creation, closing, acknowledgement and answer are gone from their days')
  await agreesWithRebuild(t, 'after the delete')
})

t.test('4. a work order reassigned to another department: department figures move', async (t) => {
  const JUL = 'from=2026-07-01&to=2026-07-31&service=streetlight&by=department'
  const light = await cameIn('streetlight', '2026-07-06T09:00:00-05:00')
  await departmentReports(north, light, 'accepted')
  const [northOrder] = await workOrderIds(light)
  await setWorkOrder(northOrder!, 'acknowledged_at', '2026-07-06T10:00:00-05:00')
  await note(light, { template: 'received' }, '2026-07-06T11:00:00-05:00')
  const templates = () => reportRows('templates', JUL, ['period', 'department_code', 'public_notes', 'from_template'])
  const volume = () => reportRows('volume', JUL, ['period', 'department_code', 'created', 'still_open'])
  const timeliness = () => reportRows('timeliness', `${JUL}&group=month`, ['period', 'department_code', 'acknowledged', 'ack_median_seconds'])
  const backlog = () => reportRows('backlog', 'service=streetlight&by=department', ['department_code', 'open_over_30_days', 'open_total'])
  t.same(await volume(), [{ period: '2026-07-06', department_code: 'north', created: 1, still_open: 1 }])
  t.same(await timeliness(), [{ period: '2026-07-01', department_code: 'north', acknowledged: 1, ack_median_seconds: 3600 }])
  t.same(await backlog(), [{ department_code: 'north', open_over_30_days: 1, open_total: 1 }])
  t.same(await templates(), [{ period: '2026-07-06', department_code: 'north', public_notes: 1, from_template: 1 }])
  await agreesWithRebuild(t, 'before')

  await departmentReports(north, light, 'reassigned', { reassign_to: 'roads', reason: 'a road sign, not a light' })
  const orders = await workOrderIds(light)
  t.equal(orders.length, 2, 'reassignment opened roads’ work order')
  t.same(await volume(), [{ period: '2026-07-06', department_code: 'roads', created: 1, still_open: 1 }], 'the request counts for its latest work order’s department')
  t.same(await timeliness(), [{ period: '2026-07-01', department_code: 'north', acknowledged: 1, ack_median_seconds: 3600 }], 'north’s acknowledgement stays north’s')
  t.same(await backlog(), [{ department_code: 'roads', open_over_30_days: 1, open_total: 1 }])
  t.same(await templates(), [{ period: '2026-07-06', department_code: 'roads', public_notes: 1, from_template: 1 }], 'its answers too (a request figure)')
  await agreesWithRebuild(t, 'reassigned')

  // Roads' clock starts when the work reached it (07-07 09:00); it acknowledges two hours later.
  await setWorkOrder(orders[1]!, 'created_at', '2026-07-07T09:00:00-05:00')
  await departmentReports(roads, light, 'accepted')
  await setWorkOrder(orders[1]!, 'acknowledged_at', '2026-07-07T11:00:00-05:00')
  t.same(await timeliness(), [
    { period: '2026-07-01', department_code: 'north', acknowledged: 1, ack_median_seconds: 3600 },
    { period: '2026-07-01', department_code: 'roads', acknowledged: 1, ack_median_seconds: 7200 },
  ])
  t.same(await reportRows('timeliness', 'from=2026-07-07&to=2026-07-07&service=streetlight&by=department', ['period', 'department_code', 'acknowledged']), [
    { period: '2026-07-07', department_code: 'roads', acknowledged: 1 },
  ], 'on the day roads acknowledged')
  await agreesWithRebuild(t, 'acknowledged by roads')
})

t.test('5. days around the DST changes land on the right local day', async (t) => {
  // Spring forward 2026-03-08 02:00 CST → 03:00 CDT (a 23-hour day); fall back 2026-11-01
  // 02:00 CDT → 01:00 CST (25 hours: 01:30 happens twice).
  const spring = ['2026-03-07T23:30:00-06:00', '2026-03-08T00:30:00-06:00', '2026-03-08T01:30:00-06:00', '2026-03-08T03:30:00-05:00', '2026-03-08T23:30:00-05:00', '2026-03-09T00:30:00-05:00']
  const fall = ['2026-10-31T23:30:00-05:00', '2026-11-01T00:30:00-05:00', '2026-11-01T01:30:00-05:00', '2026-11-01T01:30:00-06:00', '2026-11-01T23:30:00-06:00', '2026-11-02T00:30:00-06:00']
  const springIds: string[] = []
  const fallIds: string[] = []
  for (const at of spring) springIds.push(await cameIn('noise', at))
  for (const at of fall) fallIds.push(await cameIn('noise', at))
  // 01:30 CST closed at 03:30 CDT, and the first 01:30 closed at the second: an hour each.
  await completedAndClosed(north, springIds[2]!, '2026-03-08T03:30:00-05:00')
  await completedAndClosed(north, fallIds[2]!, '2026-11-01T01:30:00-06:00')
  const [marked] = await rows<{ days: string[] }>(sql`select array_agg(distinct day::text order by day::text) as days from report_rollup_pending where day < '2026-12-01'`)
  t.same(marked!.days, ['2026-03-07', '2026-03-08', '2026-03-09', '2026-10-31', '2026-11-01', '2026-11-02'], 'the triggers marked the local days')

  const cols = ['period', 'created', 'closed', 'still_open']
  t.same(await reportRows('volume', 'from=2026-03-01&to=2026-03-31&service=noise', cols), [
    { period: '2026-03-07', created: 1, closed: 0, still_open: 1 },
    { period: '2026-03-08', created: 4, closed: 1, still_open: 3 },
    { period: '2026-03-09', created: 1, closed: 0, still_open: 1 },
  ], 'the 23-hour day holds 00:30, 01:30, 03:30 and 23:30')
  t.same(await reportRows('volume', 'from=2026-10-25&to=2026-11-07&service=noise', cols), [
    { period: '2026-10-31', created: 1, closed: 0, still_open: 1 },
    { period: '2026-11-01', created: 4, closed: 1, still_open: 3 },
    { period: '2026-11-02', created: 1, closed: 0, still_open: 1 },
  ], 'the 25-hour day holds both 01:30s and 23:30 CST')
  t.same(await reportRows('volume', 'from=2026-03-01&to=2026-11-30&service=noise&group=week', ['period', 'created']), [
    { period: '2026-03-02', created: 5 },
    { period: '2026-03-09', created: 1 },
    { period: '2026-10-26', created: 5 },
    { period: '2026-11-02', created: 1 },
  ], 'weeks from Monday: each Sunday of a change ends its week')
  t.same(await reportRows('timeliness', 'from=2026-03-01&to=2026-11-30&service=noise&group=month', ['period', 'closed', 'close_median_seconds']), [
    { period: '2026-03-01', closed: 1, close_median_seconds: 3600 },
    { period: '2026-11-01', closed: 1, close_median_seconds: 3600 },
  ], 'durations are real seconds across the change')
  const dayRows = await rows<{ day: string; created: number }>(sql`select d.day::text as day, sum(d.created)::int as created from report_daily d
      join services s on s.id = d.service_id where d.grain = 'full' and s.service_code = 'noise' group by d.day having sum(d.created) > 0 order by d.day`)
  t.same(dayRows, [
    { day: '2026-03-07', created: 1 }, { day: '2026-03-08', created: 4 }, { day: '2026-03-09', created: 1 },
    { day: '2026-10-31', created: 1 }, { day: '2026-11-01', created: 4 }, { day: '2026-11-02', created: 1 },
  ], 'the day rows of report_daily')
  await agreesWithRebuild(t, 'DST')
})
