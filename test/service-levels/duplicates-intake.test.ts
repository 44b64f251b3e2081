/**
 * Duplicates at intake (issue 15): a service's policy `off | suggest | link` with its radius and
 * window, tested at their edges — just inside and just outside the radius (points computed on
 * the spheroid and checked with ST_Distance) and the window (a candidate's requested_at set by
 * hand) — and what each policy answers and writes: suggest's notice and possible_duplicates
 * (JSON and XML), link's duplicate child without a work order or an event, closing with its
 * original through the cascade, and the races around a link (PostgreSQL: two connections).
 */
import { sql } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { activeService } from '../../src/domain/catalog/catalog-cache.js'
import { resolveJurisdiction } from '../../src/domain/jurisdictions.js'
import { submitServiceRequest } from '../../src/domain/requests/submit-request.js'
import { validateSubmission } from '../../src/domain/requests/submission.js'
import { buildDepartmentHarness, xml } from '../departments/fixtures/harness.js'
import { eventually } from '../helpers/eventually.js'
import { distanceOf, eventsAbout, type Point, pointAt, postAt, spot } from './duplicates-fixtures.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const TZ = 'America/Chicago'
const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'dups.test.example', name: 'Duplicate City', time_zone: TZ },
  services: [
    { service_code: 'pothole', service_name: 'Pothole', duplicates: { policy: 'suggest', radius_m: 50, window_days: 30 } },
    { service_code: 'streetlight', service_name: 'Street light out', service_level: { hours: 48 }, duplicates: { policy: 'link', radius_m: 100, window_days: 7 } },
    { service_code: 'graffiti', service_name: 'Graffiti' },
    { service_code: 'noise', service_name: 'Noise at a home', privacy: 'sensitive', duplicates: { policy: 'suggest', radius_m: 50, window_days: 30 } },
    { service_code: 'bulk', service_name: 'Bulk pickup', type: 'batch', duplicates: { policy: 'suggest', radius_m: 50, window_days: 30 } },
  ],
})
const { app, rows } = h
const streets = await h.registerDepartment({ code: 'streets', name: 'Streets' })
const lights = await h.registerDepartment({ code: 'lights', name: 'Lighting' })
await h.setRoutes('pothole', [{ department: 'streets' }])
await h.setRoutes('streetlight', [{ department: 'lights' }])
await h.setRoutes('graffiti', [{ department: 'streets' }])

const created = (answer: { service_request_id?: string }) => answer.service_request_id!

/** The day a request was requested on, in the jurisdiction's zone (what the notice says). */
async function dayOf(serviceRequestId: string): Promise<string> {
  const [row] = await rows<{ day: string }>(sql`select to_char(requested_at at time zone ${TZ}, 'YYYY-MM-DD') as day from service_requests where public_id = ${serviceRequestId}`)
  return row!.day
}

async function setRequestedAt(serviceRequestId: string, ago: string) {
  await app.db.execute(sql`update service_requests set requested_at = now() - ${ago}::interval where public_id = ${serviceRequestId}`)
}

t.test('the test points are where they say: radius ± 1 m by ST_Distance', async (t) => {
  const inside = await pointAt(h, spot(0), 49, 0)
  const outside = await pointAt(h, spot(0), 51, 90)
  t.ok(Math.abs(inside.distance - 49) < 0.01, `49 m north measures ${inside.distance}`)
  t.ok(Math.abs(outside.distance - 51) < 0.01, `51 m east measures ${outside.distance}`)
})

t.test('suggest: just inside the radius is named, just outside is not; the request is created as usual', async (t) => {
  const base = spot(1)
  const original = created(await postAt(h, 'pothole', base))
  const inside = await pointAt(h, base, 49, 0)
  const answer = await postAt(h, 'pothole', inside)
  const id = created(answer)
  t.not(id, original, 'a request of its own')
  t.equal(
    answer.service_notice,
    `This looks like request ${original}, reported 49 m away on ${await dayOf(original)}; if it is the same problem, you can follow that request instead.`,
  )
  t.notOk('possible_duplicates' in answer, 'no extension fields without extensions=true')
  t.equal((await h.workOrders(id)).length, 1, 'its work order opened as for any request')
  t.same((await eventsAbout(h, id)).map((e) => e.event_type), ['work_order.created'], 'and was announced')
  const row = await h.requestRow(id)
  t.match(row, { status: 'open', detailed_status: 'submitted', parent_request_id: null }, 'not linked: suggest only names')
  t.equal((await h.publicRequest(id)).extended_attributes.duplicate, false)

  // 51 m south of the original: 100 m from the one just made, so neither is within 50 m.
  const outside = await pointAt(h, base, 51, 180)
  t.ok((await distanceOf(h, id, outside)) > 50)
  const far = await postAt(h, 'pothole', outside, { extensions: true })
  t.equal(far.service_notice, null, 'just outside the radius: nothing named')
  t.same(far.possible_duplicates, [], 'extensions=true: an empty list')
})

t.test('suggest with extensions=true: up to 5, nearest first, in JSON and XML', async (t) => {
  const base = spot(2)
  // Six originals 10 to 48 m from the spot, in different directions.
  const ids: string[] = []
  for (const [metres, azimuth] of [[10, 0], [20, 72], [30, 144], [40, 216], [45, 288], [48, 30]] as const) {
    ids.push(created(await postAt(h, 'pothole', await pointAt(h, base, metres, azimuth))))
  }
  // Each of those was itself a POST near the others: what matters is what the next one finds.
  const answer = await postAt(h, 'pothole', base, { extensions: true })
  const found = answer.possible_duplicates!
  t.equal(found.length, 5, 'at most five')
  t.same(found.map((d) => d.service_request_id), ids.slice(0, 5), 'nearest first; the sixth (48 m) left out')
  t.same(found.map((d) => d.distance_m), [10, 20, 30, 40, 45], 'distances in whole metres')
  t.match(found[0]!.requested_datetime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[56]:00$/, 'W3C, in the jurisdiction’s zone')
  t.match(answer.service_notice, new RegExp(`^This looks like request ${ids[0]}, reported 10 m away on `))
  const atSpot = created(answer)

  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.xml?extensions=true',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ api_key: h.citizen.key, service_code: 'pothole', lat: base.lat, long: base.long }).toString(),
  })
  t.equal(res.statusCode, 200)
  const doc = xml.parse(res.body) as { service_requests: { request: { service_request_id: string; service_notice: string; possible_duplicates: { possible_duplicate: { service_request_id: string; distance_m: string }[] } }[] } }
  const [request] = doc.service_requests.request
  t.match(request!.service_notice, new RegExp(`request ${atSpot}, reported 0 m away`), 'the JSON POST’s request is at the spot itself')
  t.same(
    request!.possible_duplicates.possible_duplicate.map((d) => [d.service_request_id, d.distance_m]),
    [[atSpot, '0'], ...ids.slice(0, 4).map((id, i) => [id, String([10, 20, 30, 40][i])])],
    'XML: <possible_duplicates><possible_duplicate>…, nearest first',
  )
})

t.test('the window: a candidate just inside is named, just outside is not', async (t) => {
  const inside = spot(3)
  const outside = spot(4)
  const recent = created(await postAt(h, 'pothole', inside))
  const old = created(await postAt(h, 'pothole', outside))
  await setRequestedAt(recent, '30 days - 5 minutes')
  await setRequestedAt(old, '30 days 5 minutes')
  const near = await pointAt(h, inside, 10, 0)
  t.match((await postAt(h, 'pothole', near)).service_notice, new RegExp(`request ${recent}, reported 10 m away on ${await dayOf(recent)}`), '29 days 23 h 55 min ago: named')
  t.equal((await postAt(h, 'pothole', await pointAt(h, outside, 10, 0))).service_notice, null, '30 days 5 min ago: not')
})

t.test('what is never a candidate: closed, another service, a duplicate, not public; no point, no search', async (t) => {
  const base = spot(5)
  const closed = created(await postAt(h, 'pothole', base))
  t.equal((await h.closeRequest(closed, { reason: 'Filled', force: true })).statusCode, 200)
  const graffiti = created(await postAt(h, 'graffiti', await pointAt(h, base, 5, 90)))
  const answer = await postAt(h, 'pothole', await pointAt(h, base, 3, 0), { extensions: true })
  t.equal(answer.service_notice, null, 'a closed request of the service and an open one of another service are not named')
  t.same(answer.possible_duplicates, [])
  const third = created(answer)

  // A policy-off service never searches: the graffiti next to it and the pothole are ignored.
  const off = await postAt(h, 'graffiti', await pointAt(h, base, 4, 90), { extensions: true })
  t.equal(off.service_notice, null, 'policy off: nothing named')
  t.same(off.possible_duplicates, [], 'and nothing listed')
  t.ok(graffiti)

  // A duplicate (marked by an operator) is never the one named: its original is.
  const spot6 = spot(6)
  const original = created(await postAt(h, 'pothole', spot6))
  const copy = created(await postAt(h, 'pothole', await pointAt(h, spot6, 40, 0)))
  t.equal((await h.markDuplicate(copy, original)).statusCode, 200)
  const nextToCopy = await postAt(h, 'pothole', await pointAt(h, spot6, 45, 0), { extensions: true })
  t.same(nextToCopy.possible_duplicates!.map((d) => [d.service_request_id, d.distance_m]), [[original, 45]], 'the original, though the duplicate is 5 m away')

  // Out of public view: not named to the public.
  const spot7 = spot(7)
  const hidden = created(await postAt(h, 'pothole', spot7))
  const withdraw = await app.inject({ method: 'POST', url: `/admin/v1/requests/${hidden}/public-view`, headers: h.asAdmin, payload: { public: false, reason: 'names a person' } })
  t.equal(withdraw.statusCode, 200)
  t.same((await postAt(h, 'pothole', await pointAt(h, spot7, 5, 0), { extensions: true })).possible_duplicates, [], 'a withdrawn request is not named')

  // No point: no search, whatever is there.
  const noPoint = await postAt(h, 'pothole', null, { extensions: true })
  t.equal(noPoint.service_notice, null, 'a request without a point is not searched for')
  t.same(noPoint.possible_duplicates, [])
  t.ok(third)
})

t.test('a batch service: pending tokens have no id to name; accepted ones do', async (t) => {
  const base = spot(8)
  const first = await postAt(h, 'bulk', base)
  t.ok(first.token, 'a token')
  const near = await pointAt(h, base, 10, 0)
  t.equal((await postAt(h, 'bulk', near)).service_notice, null, 'a request whose token is pending is not named')
  await app.db.execute(sql`update request_tokens set state = 'accepted', resolved_at = now()`)
  const [row] = await rows<{ public_id: string }>(sql`select sr.public_id from request_tokens t join service_requests sr on sr.id = t.request_id where t.token = ${first.token!}`)
  const answer = await postAt(h, 'bulk', near, { extensions: true })
  t.ok(answer.token, 'still a token')
  t.same(answer.possible_duplicates!.map((d) => d.distance_m), [0, 10], 'accepted ones are: the second at this spot, the first 10 m away')
  t.equal(answer.possible_duplicates![1]!.service_request_id, row!.public_id)
})

t.test('sensitive services: the distance is not shown', async (t) => {
  const base = spot(9)
  const original = created(await postAt(h, 'noise', base))
  const answer = await postAt(h, 'noise', await pointAt(h, base, 12, 0), { extensions: true })
  t.equal(answer.service_notice, `This looks like request ${original}, reported within 50 m on ${await dayOf(original)}; if it is the same problem, you can follow that request instead.`)
  t.same(answer.possible_duplicates!.map((d) => [d.service_request_id, d.distance_m]), [[original, null]])
})

t.test('GET one request with extensions=true: its possible duplicates, live', async (t) => {
  const base = spot(10)
  const first = created(await postAt(h, 'pothole', base))
  const second = created(await postAt(h, 'pothole', await pointAt(h, base, 20, 0)))
  const view = async (id: string) => (await app.inject(`/open311/v2/requests/${id}.json?extensions=true`)).json()[0] as { possible_duplicates?: { service_request_id: string; distance_m: number }[] }
  t.same((await view(second)).possible_duplicates!.map((d) => [d.service_request_id, d.distance_m]), [[first, 20]], 'the later one names the earlier')
  t.same((await view(first)).possible_duplicates, [], 'the earlier names nothing: the window reaches back from its own time')
  const plain = (await app.inject(`/open311/v2/requests/${second}.json`)).json()[0] as Record<string, unknown>
  t.notOk('possible_duplicates' in plain, 'not without extensions=true')
  const list = (await app.inject(`/open311/v2/requests.json?extensions=true&service_request_id=${second}`)).json()[0] as Record<string, unknown>
  t.notOk('possible_duplicates' in list, 'not in GET requests (a search per row)')
  const xmlView = await app.inject(`/open311/v2/requests/${second}.xml?extensions=true`)
  t.match(xmlView.body, new RegExp(`<possible_duplicates><possible_duplicate><service_request_id>${first}</service_request_id><distance_m>20</distance_m>`))
  t.equal((await h.closeRequest(first, { reason: 'Filled', force: true })).statusCode, 200)
  t.same((await view(second)).possible_duplicates, [], 'once the earlier closes, it is no longer named')
  t.equal((await h.closeRequest(second, { reason: 'Filled', force: true })).statusCode, 200)
  t.notOk('possible_duplicates' in (await view(second)), 'a closed request lists none')
})

t.test('an Idempotency-Key retry gets the first answer, with or without extensions', async (t) => {
  const base = spot(11)
  const original = created(await postAt(h, 'pothole', base))
  const near = await pointAt(h, base, 7, 0)
  const send = (extensions: boolean) =>
    app.inject({
      method: 'POST',
      url: `/open311/v2/requests.json${extensions ? '?extensions=true' : ''}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': 'dup-retry-1' },
      payload: new URLSearchParams({ api_key: h.citizen.key, service_code: 'pothole', lat: near.lat, long: near.long }).toString(),
    })
  const first = (await send(false)).json()[0]
  const retry = await send(true)
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.equal(retry.json()[0].service_request_id, first.service_request_id)
  t.equal(retry.json()[0].service_notice, first.service_notice)
  t.same(retry.json()[0].possible_duplicates.map((d: { service_request_id: string }) => d.service_request_id), [original])
})

/** Every history entry of a request, oldest first. */
async function history(id: string) {
  return rows<{ status: string; detailed_status: string; description: string; source: string }>(
    sql`select u.status, u.detailed_status, u.description, u.source from request_updates u join service_requests sr on sr.id = u.request_id
        where sr.public_id = ${id} order by u.created_at, u.id`,
  )
}

t.test('link: a duplicate child of the nearest open original, with no work order, closed with it', async (t) => {
  const base = spot(12)
  const original = created(await postAt(h, 'streetlight', base))
  const [originalOrder] = await h.workOrders(original)
  const near = await pointAt(h, base, 60, 0)
  const answer = await postAt(h, 'streetlight', near, { extensions: true })
  const child = created(answer)
  t.not(child, original, 'the reporter gets an id of their own')
  t.equal(
    answer.service_notice,
    `This report was added to request ${original}, reported 60 m away on ${await dayOf(original)}, which is already being handled; it will be closed when that request is.`,
  )
  t.same(answer.possible_duplicates!.map((d) => [d.service_request_id, d.distance_m]), [[original, 60]], 'extensions: the one it was linked to')
  t.same(await h.workOrders(child), [], 'no work order of its own')
  t.same(await eventsAbout(h, child), [], 'no event: no department hears of it')
  const row = await h.requestRow(child)
  t.equal(Number(row.parent_request_id), Number((await h.requestRow(original)).id))
  t.match(row, { status: 'open', detailed_status: 'duplicate', status_notes: `Duplicate of ${original}` })
  t.same(
    (await history(child)).map((e) => [e.detailed_status, e.description, e.source]),
    [
      ['submitted', 'Request received', 'citizen'],
      ['duplicate', `Duplicate of ${original}, found when it was reported`, 'system'],
    ],
  )
  const view = await h.publicRequest(child)
  t.match(view.extended_attributes, { duplicate: true, parent_service_request_id: original, detailed_status: 'duplicate' })
  t.equal(view.expected_datetime ?? null, null, 'no due date: no work order')
  t.match(view, { service_notice: answer.service_notice }, 'the notice stays on the request')

  // A third report near the child, nearer to it than to the original: still linked to the original.
  const beyond = await pointAt(h, base, 90, 0)
  t.ok((await distanceOf(h, child, beyond)) < 31, 'the child is 30 m away, the original 90 m')
  const third = created(await postAt(h, 'streetlight', beyond))
  t.equal(Number((await h.requestRow(third)).parent_request_id), Number((await h.requestRow(original)).id), 'a duplicate is never the one linked to')

  // The original's department completes the work: the original closes, and its duplicates with it.
  const done = await h.statusChanged(lights, { work_order_id: originalOrder!.id, status: 'completed', public_note: 'Lamp replaced' })
  t.match(done.json(), { applied: true })
  t.equal((await h.requestRow(original)).status, 'closed')
  for (const id of [child, third]) {
    const closed = await h.requestRow(id)
    t.match(closed, { status: 'closed', detailed_status: 'duplicate' }, `${id} closed with the original`)
    t.ok(closed.closed_at)
  }
  // Closed originals are not candidates: the next report there is a request of its own.
  const after = await postAt(h, 'streetlight', near)
  t.equal(after.service_notice, null)
  t.equal((await h.workOrders(created(after))).length, 1, 'with its own work order')
  t.ok(streets)
})

t.test('link: outside the radius or the window, a request of its own', async (t) => {
  const base = spot(13)
  const original = created(await postAt(h, 'streetlight', base))
  const outside = await postAt(h, 'streetlight', await pointAt(h, base, 101, 0))
  t.equal(outside.service_notice, null, '101 m: not linked')
  t.equal((await h.requestRow(created(outside))).parent_request_id, null)
  await setRequestedAt(original, '7 days 5 minutes')
  const late = await postAt(h, 'streetlight', await pointAt(h, base, 10, 180))
  t.equal((await h.requestRow(created(late))).parent_request_id, null, 'older than the 7-day window: not linked')
})

/** A streetlight submission through the domain function, as the POST route makes it. */
async function streetlightSubmission(at: Point) {
  const jurisdiction = await resolveJurisdiction(app.db, undefined)
  const service = (await activeService(app.db, jurisdiction, 'streetlight'))!
  const submission = validateSubmission({ service_code: 'streetlight', lat: at.lat, long: at.long }, service, jurisdiction.timeZone)
  return { jurisdiction, service, submission, actor: SERVER_ACTOR, channel: 'app' as const }
}

t.test('link races: the original closing while a report comes in', async (t) => {
  // 1. The original is closed (not yet committed) when the report comes in: the report waits
  // for that transaction, sees the original closed, and is a request of its own.
  const base = spot(14)
  const original = created(await postAt(h, 'streetlight', base))
  const originalId = Number((await h.requestRow(original)).id)
  const near = await pointAt(h, base, 20, 0)
  await app.db.execute(sql`update work_orders set state = 'cancelled' where request_id = ${originalId}`)
  const closeIt = `update service_requests set status = 'closed', closed_at = now() where id = $1`
  if (h.databaseUrl) {
    const closer = new pg.Client({ connectionString: h.databaseUrl })
    await closer.connect()
    t.teardown(() => closer.end().catch(() => {}))
    await closer.query('begin')
    await closer.query(closeIt, [originalId])
    const posting = postAt(h, 'streetlight', near)
    await eventually('the POST to wait for the closing transaction', async () => (await lockWaiters(closer)) > 0)
    await closer.query('commit')
    const answer = await posting
    t.equal(answer.service_notice, null, 'the original closed first: not linked')
    t.equal((await h.requestRow(created(answer))).parent_request_id, null)
    t.equal((await h.workOrders(created(answer))).length, 1, 'a work order of its own')
  } else {
    await app.db.execute(sql.raw(closeIt.replace('$1', String(originalId))))
    const answer = await postAt(h, 'streetlight', near)
    t.equal((await h.requestRow(created(answer))).parent_request_id, null, 'the original closed first: not linked')
  }

  // 2. The report is linked (not yet committed) when the original closes: the close waits for
  // it, and its cascade then closes the new duplicate too.
  const base2 = spot(15)
  const original2 = created(await postAt(h, 'streetlight', base2))
  const [order2] = await h.workOrders(original2)
  const input = await streetlightSubmission(await pointAt(h, base2, 30, 0))
  if (h.databaseUrl) {
    let closing: Promise<unknown> | undefined
    const child = await app.db.transaction(async (tx) => {
      const linked = await submitServiceRequest(tx, input)
      t.equal(linked.parentServiceRequestId, original2, 'linked, not yet committed')
      const watcher = new pg.Client({ connectionString: h.databaseUrl })
      await watcher.connect()
      try {
        closing = h.statusChanged(lights, { work_order_id: order2!.id, status: 'completed' })
        await eventually('the close to wait for the linking transaction', async () => (await lockWaiters(watcher)) > 0)
      } finally {
        await watcher.end()
      }
      return linked.serviceRequestId
    })
    await closing
    t.equal((await h.requestRow(original2)).status, 'closed')
    t.match(await h.requestRow(child), { status: 'closed', detailed_status: 'duplicate' }, 'the duplicate committed first, so it closed with the original')
  } else {
    const linked = await submitServiceRequest(app.db, input)
    t.equal(linked.parentServiceRequestId, original2)
    t.match((await h.statusChanged(lights, { work_order_id: order2!.id, status: 'completed' })).json(), { applied: true })
    t.match(await h.requestRow(linked.serviceRequestId), { status: 'closed', detailed_status: 'duplicate' })
  }
})

t.test('two reports at once at the same spot both link to the original, never to each other', async (t) => {
  const base = spot(16)
  const original = created(await postAt(h, 'streetlight', base))
  const originalId = Number((await h.requestRow(original)).id)
  const at = await pointAt(h, base, 25, 90)
  const answers = await Promise.all([postAt(h, 'streetlight', at), postAt(h, 'streetlight', at)])
  for (const answer of answers) {
    t.equal(Number((await h.requestRow(created(answer))).parent_request_id), originalId, `${created(answer)} → the original`)
  }
})

/** Backends of this test's database waiting for a lock (PostgreSQL). */
async function lockWaiters(client: pg.Client): Promise<number> {
  const res = await client.query<{ n: string }>(
    `select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
  )
  return Number(res.rows[0]!.n)
}
