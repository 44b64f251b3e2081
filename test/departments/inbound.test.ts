/**
 * What departments report back, through both doors: the Standard Webhooks-signed
 * POST /departments/v1/{code}/events and mySociety's POST servicerequestupdates.
 *
 * Promises (docs/reference webhook-reliability §6): 14 (inbound verification), 15 (replay
 * inside the window applies once), 16 (concurrent duplicates apply once), 21 (403 with an
 * Open311 error array), 23 (BOLA/BFLA), 24 (internal fields never in public responses), plus
 * out-of-order handling, status mapping, reassignment and the public view of progress.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { verify } from '../../src/integrations/webhooks/standard-webhooks.js'
import { buildDepartmentHarness, newWebhookId, startReceiver, xml } from './fixtures/harness.js'

const JURISDICTION = 'departments.test.example'
const TZ = 'America/Chicago'

// One database per test file; subtests share it and run in order.
const streetsReceiver = await startReceiver(t)
const parksReceiver = await startReceiver(t)
const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: JURISDICTION, name: 'Department Test City', time_zone: TZ },
  services: [
    { service_code: 'pothole', service_name: 'Pothole', group: 'Streets' },
    { service_code: 'tree', service_name: 'Fallen tree', group: 'Parks' },
    { service_code: 'shared', service_name: 'Blocked sidewalk', group: 'Streets' },
  ],
})
const { app, rows } = h
const streets = await h.registerDepartment({ code: 'streets', name: 'Streets Dept', webhook_url: streetsReceiver.url })
const parks = await h.registerDepartment({ code: 'parks', name: 'Parks Dept', webhook_url: parksReceiver.url })
const water = await h.registerDepartment({ code: 'water', name: 'Water Dept' })
await h.setRoutes('pothole', [{ department: 'streets' }])
await h.setRoutes('tree', [{ department: 'parks' }])
await h.setRoutes('shared', [{ department: 'streets' }, { department: 'parks' }])

const iso = (ms: number) => new Date(ms).toISOString()
const HOUR = 3_600_000

/** Everything a callback could change about a request, as text, to compare before and after. */
async function fingerprint(serviceRequestId: string) {
  const [row] = await rows<Record<string, string>>(sql`
    select sr.status, sr.detailed_status, coalesce(sr.status_notes, '') as status_notes, sr.updated_at::text as updated_at,
           coalesce(sr.expected_at::text, '') as expected_at,
           (select count(*) from request_updates u where u.request_id = sr.id)::text as updates,
           (select string_agg(w.id || ':' || w.state || ':' || coalesce(w.external_status_code, '') || ':' || w.updated_at::text, ',' order by w.id)
              from work_orders w where w.request_id = sr.id) as work_orders,
           (select count(*) from outbox o join work_orders w on w.id = o.work_order_id where w.request_id = sr.id)::text as outbox
    from service_requests sr where sr.public_id = ${serviceRequestId}`)
  return row!
}

async function inboundEventCount() {
  const [row] = await rows<{ n: number }>(sql`select count(*)::int as n from inbound_events`)
  return Number(row!.n)
}

async function workOrderRow(workOrder: string) {
  const [row] = await rows<{ state: string; external_status_code: string | null; reason: string | null; reassigned_to_id: number | null; expected_at: string | null; external_ref: string | null }>(
    sql`select state, external_status_code, reason, reassigned_to_id, expected_at, external_ref from work_orders where id = ${Number(workOrder.slice(3))}`,
  )
  return row!
}

/** The only work order of a single-department request. */
async function onlyWorkOrder(serviceRequestId: string) {
  const orders = await h.workOrders(serviceRequestId)
  if (orders.length !== 1) throw new Error(`expected one work order on ${serviceRequestId}, got ${orders.length}`)
  return orders[0]!.id
}

t.test('promise 14: unsigned, mis-signed and out-of-window callbacks get 401 in the Open311 format and change nothing', async (t) => {
  const id = await h.createRequest('pothole')
  const wo = await onlyWorkOrder(id)
  const data = { work_order_id: wo, status: 'accepted' }
  const event = { type: 'work_order.status_changed', data }
  const before = await fingerprint(id)
  const inboundBefore = await inboundEventCount()
  const now = Math.floor(Date.now() / 1000)
  const reusedId = newWebhookId()
  const validSignature = (ts: number) => h.signed(streets, event, { id: reusedId, timestamp: ts })

  const attempts: [string, () => ReturnType<typeof h.signed>, RegExp][] = [
    ['no webhook-id', () => h.signed(streets, event, { id: reusedId, omit: ['webhook-id'] }), /missing/],
    ['no webhook-timestamp', () => h.signed(streets, event, { id: reusedId, omit: ['webhook-timestamp'] }), /missing/],
    ['no webhook-signature', () => h.signed(streets, event, { id: reusedId, signature: null }), /missing/],
    ['no headers at all', () => h.signed(streets, event, { id: reusedId, omit: ['webhook-id', 'webhook-timestamp', 'webhook-signature'] }), /missing/],
    ['signed with another department’s secret', () => h.signed(streets, event, { id: reusedId, secret: parks.secret }), /no matching signature/],
    ['signed with a random secret', () => h.signed(streets, event, { id: reusedId, secret: 'whsec_' + Buffer.alloc(32, 1).toString('base64') }), /no matching signature/],
    ['signature over another body (tampered)', () => h.signed(streets, event, { id: reusedId, signedBody: JSON.stringify({ ...event, data: { ...data, status: 'rejected' } }) }), /no matching signature/],
    ['signature truncated', () => h.signed(streets, event, { id: reusedId, signature: 'v1,' + 'A'.repeat(20) }), /no matching signature/],
    ['signature with an unknown scheme', () => h.signed(streets, event, { id: reusedId, signature: 'v2,' + Buffer.alloc(32).toString('base64') }), /no matching signature/],
    ['empty v1 signature', () => h.signed(streets, event, { id: reusedId, signature: 'v1,' }), /no matching signature/],
    ['non-numeric timestamp', () => app.inject({
      method: 'POST',
      url: '/departments/v1/streets/events',
      headers: { 'content-type': 'application/json', 'webhook-id': reusedId, 'webhook-timestamp': 'yesterday', 'webhook-signature': 'v1,AAAA' },
      payload: JSON.stringify(event),
    }), /invalid webhook-timestamp/],
    ['timestamp 6 minutes old (correctly signed)', () => validSignature(now - 360), /too old/],
    ['timestamp 1 hour old (correctly signed)', () => validSignature(now - 3600), /too old/],
    ['timestamp 6 minutes in the future (correctly signed)', () => validSignature(now + 360), /too new/],
    ['timestamp 1 day in the future (correctly signed)', () => validSignature(now + 86_400), /too new/],
  ]
  for (const [label, attempt, problem] of attempts) {
    const res = await attempt()
    t.equal(res.statusCode, 401, `${label}: 401`)
    t.match(res.headers['content-type'], /^application\/json/, `${label}: JSON`)
    const body = res.json()
    t.ok(Array.isArray(body) && body.length === 1, `${label}: an Open311 error list`)
    t.match(body[0], { code: 401, description: problem }, `${label}: says why`)
  }
  t.same(await fingerprint(id), before, 'the request, its work order, history and outbox are unchanged')
  t.equal(await inboundEventCount(), inboundBefore, 'no webhook-id was recorded by a refused callback')
  t.ok(h.rawLogs().includes('inbound webhook refused'), 'refusals are logged')

  // Within the window (either side) the correctly signed callback applies — and the webhook-id
  // used by every refused attempt was not burnt by them.
  const ok = await validSignature(now - 240)
  t.equal(ok.statusCode, 200, 'a 4-minute-old timestamp is inside the window')
  t.match(ok.json(), { received: true, applied: true, update_id: String })
  t.equal((await workOrderRow(wo)).state, 'accepted')
  const future = await h.statusChanged(streets, { work_order_id: wo, status: 'scheduled' }, { timestamp: now + 240 })
  t.equal(future.statusCode, 200, 'a timestamp 4 minutes ahead is inside the window')
  t.equal((await workOrderRow(wo)).state, 'scheduled')
})

t.test('promise 15: a valid callback applies once; the same webhook-id again is acknowledged and changes nothing', async (t) => {
  const id = await h.createRequest('pothole')
  const wo = await onlyWorkOrder(id)
  const webhookId = newWebhookId()
  const event = { type: 'work_order.status_changed', data: { work_order_id: wo, status: 'accepted', external_ref: 'ST-1001', public_note: 'We have it' } }
  const first = await h.signed(streets, event, { id: webhookId })
  t.equal(first.statusCode, 200)
  const answer = first.json()
  t.match(answer, { received: true, applied: true, update_id: String })
  t.notOk('duplicate' in answer, 'a first delivery is not a duplicate')
  t.match(await workOrderRow(wo), { state: 'accepted', external_status_code: 'accepted', external_ref: 'ST-1001' })
  const afterFirst = await fingerprint(id)
  t.equal(afterFirst.detailed_status, 'accepted')
  t.equal(afterFirst.status_notes, 'We have it')

  // The same message again, re-signed a little later (a retry inside the window) …
  const replay = await h.signed(streets, event, { id: webhookId, timestamp: Math.floor(Date.now() / 1000) + 30 })
  t.equal(replay.statusCode, 200, 'the replay is acknowledged with 2xx, so the department stops retrying')
  t.same(replay.json(), { received: true, duplicate: true })
  // … and the same webhook-id carrying another body is still the same message: nothing applies.
  const hijack = await h.signed(streets, { type: 'work_order.status_changed', data: { work_order_id: wo, status: 'completed' } }, { id: webhookId })
  t.equal(hijack.statusCode, 200)
  t.same(hijack.json(), { received: true, duplicate: true })
  t.same(await fingerprint(id), afterFirst, 'no second change, no second request update, no outbox row')
  t.equal((await h.requestRow(id)).status, 'open', 'the replayed id did not complete the work')
  const [seen] = await rows<{ n: number }>(sql`select count(*)::int as n from inbound_events where event_id = ${webhookId}`)
  t.equal(Number(seen!.n), 1, 'the webhook-id is stored once')
  // webhook-ids are per department: parks may use the same id for its own message.
  const treeId = await h.createRequest('tree')
  const parksWo = await onlyWorkOrder(treeId)
  const parksAnswer = await h.statusChanged(parks, { work_order_id: parksWo, status: 'accepted' }, { id: webhookId })
  t.match(parksAnswer.json(), { received: true, applied: true }, 'another department’s message with the same id applies')
})

t.test('promise 16: identical callbacks sent concurrently are both acknowledged and apply exactly once', async (t) => {
  for (const copies of [2, 6]) {
    const id = await h.createRequest('pothole')
    const wo = await onlyWorkOrder(id)
    const updatesBefore = await h.updateCount(id)
    const webhookId = newWebhookId()
    const timestamp = Math.floor(Date.now() / 1000)
    const event = { type: 'work_order.status_changed', data: { work_order_id: wo, status: 'in_progress', public_note: `crew on site (${copies})` } }
    const answers = await Promise.all(Array.from({ length: copies }, () => h.signed(streets, event, { id: webhookId, timestamp })))
    t.same(answers.map((a) => a.statusCode), Array(copies).fill(200), `${copies} copies: every copy answered 200`)
    const bodies = answers.map((a) => a.json() as { applied?: boolean; duplicate?: boolean })
    t.equal(bodies.filter((b) => b.applied === true).length, 1, `${copies} copies: exactly one applied`)
    t.equal(bodies.filter((b) => b.duplicate === true).length, copies - 1, `${copies} copies: the others are duplicates`)
    t.equal(await h.updateCount(id), updatesBefore + 1, `${copies} copies: exactly one request update`)
    const departmentUpdates = await rows<{ n: number }>(
      sql`select count(*)::int as n from request_updates u join service_requests sr on sr.id = u.request_id
          where sr.public_id = ${id} and u.source = 'department'`,
    )
    t.equal(Number(departmentUpdates[0]!.n), 1)
    t.equal((await workOrderRow(wo)).state, 'in_progress', 'exactly one state change')
  }

  // The mySociety door, concurrently with the same update_id: one change, the same update_id to all.
  const id = await h.createRequest('pothole')
  const updatesBefore = await h.updateCount(id)
  const fields = { service_request_id: id, update_id: 'conc-1', status: 'IN_PROGRESS', updated_datetime: new Date().toISOString(), description: 'Crew out' }
  const answers = await Promise.all([h.postUpdate(streets.key, fields), h.postUpdate(streets.key, fields), h.postUpdate(streets.key, fields)])
  t.same(answers.map((a) => a.statusCode), [200, 200, 200])
  const updateIds = new Set(answers.map((a) => (a.json() as { update_id: string }[])[0]!.update_id))
  t.equal(updateIds.size, 1, 'every copy answers the same update_id')
  t.equal(await h.updateCount(id), updatesBefore + 1, 'one request update for three copies')
})

t.test('out of order: stale and backwards reports never move a work order back; completed is final', async (t) => {
  const id = await h.createRequest('pothole')
  const wo = await onlyWorkOrder(id)
  const t0 = Date.now() - 10 * HOUR
  const t2 = t0 + 2 * HOUR
  const t1 = t0 + HOUR

  const progress = await h.statusChanged(streets, { work_order_id: wo, status: 'in_progress', occurred_at: iso(t2), public_note: 'Crew started' })
  t.match(progress.json(), { received: true, applied: true })
  const afterProgress = await fingerprint(id)

  const stale = await h.statusChanged(streets, { work_order_id: wo, status: 'scheduled', occurred_at: iso(t1), public_note: 'Booked' })
  t.equal(stale.statusCode, 200, 'a stale report is acknowledged')
  t.match(stale.json(), { received: true, applied: false, reason: 'stale' })
  t.equal((await workOrderRow(wo)).state, 'in_progress', 'state stays in_progress')
  const publicView = await h.publicRequest(id)
  t.equal(publicView.extended_attributes.detailed_status, 'in_progress')
  t.equal(publicView.status_notes, 'Crew started', 'the stale note is not the public note')
  t.notOk(publicView.notes.some((n) => n.description === 'Booked' || /not applied/.test(n.description)), 'nothing of the stale report is public')
  const kept = await rows<{ is_public: boolean; description: string; external_status_code: string }>(
    sql`select u.is_public, u.description, u.external_status_code from request_updates u join service_requests sr on sr.id = u.request_id
        where sr.public_id = ${id} and u.description like '%not applied: stale%'`,
  )
  t.equal(kept.length, 1, 'the stale report is kept in the internal history')
  t.match(kept[0], { is_public: false, external_status_code: 'scheduled' })

  const backwards = await h.statusChanged(streets, { work_order_id: wo, status: 'accepted', occurred_at: iso(t2 + HOUR) })
  t.match(backwards.json(), { received: true, applied: false, reason: 'backwards' })
  t.equal((await workOrderRow(wo)).state, 'in_progress')
  const sameTime = await h.statusChanged(streets, { work_order_id: wo, status: 'scheduled', occurred_at: iso(t2) })
  t.match(sameTime.json(), { applied: false, reason: 'backwards' }, 'a report at the same instant cannot move it back either')
  const unchanged = await fingerprint(id)
  t.equal(unchanged.work_orders, afterProgress.work_orders, 'the work order row was not touched by refused reports')
  t.equal(unchanged.detailed_status, 'in_progress')

  // Sideways between in_progress and on_hold is allowed.
  t.match((await h.statusChanged(streets, { work_order_id: wo, status: 'on_hold', occurred_at: iso(t2 + 2 * HOUR) })).json(), { applied: true })
  t.equal((await h.publicRequest(id)).extended_attributes.detailed_status, 'on_hold')
  t.match((await h.statusChanged(streets, { work_order_id: wo, status: 'in_progress', occurred_at: iso(t2 + 3 * HOUR) })).json(), { applied: true })

  const done = await h.statusChanged(streets, { work_order_id: wo, status: 'completed', occurred_at: iso(t2 + 4 * HOUR), public_note: 'Filled' })
  t.match(done.json(), { applied: true })
  t.equal((await h.requestRow(id)).status, 'closed', 'the only work order completed: the request closed')
  const closed = await fingerprint(id)
  for (const status of ['in_progress', 'cancelled', 'reassigned', 'completed']) {
    const late = await h.statusChanged(streets, { work_order_id: wo, status, occurred_at: iso(t2 + 5 * HOUR), reassign_to: 'parks' })
    t.equal(late.statusCode, 200)
    t.match(late.json(), { applied: false, reason: 'final' }, `${status} after completed: final`)
  }
  const finalState = await fingerprint(id)
  t.equal(finalState.work_orders, closed.work_orders, 'completed stays completed')
  t.equal(finalState.status, 'closed')
  t.equal(finalState.outbox, closed.outbox, 'no reassignment happened after completion')
})

t.test('an unknown status code is refused with 400 naming it, logged, never guessed; the status_map maps a department’s own codes', async (t) => {
  const id = await h.createRequest('pothole')
  const wo = await onlyWorkOrder(id)
  const before = await fingerprint(id)
  const inboundBefore = await inboundEventCount()
  const webhookId = newWebhookId()
  const event = { type: 'work_order.status_changed', data: { work_order_id: wo, status: 'CREW_OUT', public_note: 'Crew is out' } }

  const refused = await h.signed(streets, event, { id: webhookId })
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), [{ code: 400, description: /"CREW_OUT".*streets/ }])
  t.match(h.rawLogs(), /unknown department status code/, 'the refusal is logged')
  const logged = h.logs().find((l) => l.msg === 'unknown department status code refused' && l.statusCode === 'CREW_OUT')
  t.ok(logged, 'the log line names the code')
  t.equal(logged?.department, 'streets')
  for (const guessable of ['Completed-ish', 'DONE', 'finished', 'open_but_busy', 'IN PROGRESS']) {
    const res = await h.statusChanged(streets, { work_order_id: wo, status: guessable })
    t.equal(res.statusCode, 400, `"${guessable}" is not guessed`)
  }
  const viaMySociety = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'unk-1', status: 'CREW_OUT', updated_datetime: new Date().toISOString() })
  t.equal(viaMySociety.statusCode, 400, 'the mySociety door refuses it too')
  t.match(viaMySociety.json(), [{ code: 400, description: /"CREW_OUT"/ }])
  t.same(await fingerprint(id), before, 'nothing changed')
  t.equal(await inboundEventCount(), inboundBefore, 'the refused webhook-id was not recorded, so a retry can apply')

  // A department's status_map is not an escape hatch for non-lifecycle states.
  const badMap = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: h.asAdmin, payload: { status_map: { CREW_OUT: 'closed' } } })
  t.equal(badMap.statusCode, 400)
  t.match(badMap.body, /status_map\.CREW_OUT/)

  const patched = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: h.asAdmin, payload: { status_map: { CREW_OUT: 'in_progress', DONE: 'completed' } } })
  t.equal(patched.statusCode, 200)
  t.same(patched.json().status_map, { CREW_OUT: 'in_progress', DONE: 'completed' })

  // The department retries the very message that was refused: now it maps and applies.
  const retried = await h.signed(streets, event, { id: webhookId })
  t.equal(retried.statusCode, 200)
  t.match(retried.json(), { received: true, applied: true })
  t.match(await workOrderRow(wo), { state: 'in_progress', external_status_code: 'CREW_OUT' }, 'mapped state, raw code kept')
  const updates = await app.inject(`/open311/v2/servicerequestupdates.json?start_date=${encodeURIComponent(iso(Date.now() - HOUR))}`)
  const mine = (updates.json() as { service_request_id: string; external_status_code: string | null; extended_attributes: { detailed_status: string } }[]).filter(
    (u) => u.service_request_id === id && u.external_status_code === 'CREW_OUT',
  )
  t.equal(mine.length, 1, 'the public update carries external_status_code')
  t.equal(mine[0]?.extended_attributes.detailed_status, 'in_progress')
  // Parks has no such code in its map: the map is per department.
  const treeId = await h.createRequest('tree')
  const parksCrew = await h.statusChanged(parks, { work_order_id: await onlyWorkOrder(treeId), status: 'CREW_OUT' })
  t.equal(parksCrew.statusCode, 400, 'another department’s map does not apply')
  // The mapped code works through the mySociety door too.
  const done = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'map-1', status: 'DONE', updated_datetime: new Date().toISOString(), description: 'Done' })
  t.equal(done.statusCode, 200)
  t.match(await workOrderRow(wo), { state: 'completed', external_status_code: 'DONE' })
})

t.test('promise 23: a department touches only its own work orders (BOLA) and never an admin route (BFLA)', async (t) => {
  const treeId = await h.createRequest('tree')
  const parksWo = await onlyWorkOrder(treeId)
  const before = await fingerprint(treeId)

  const bola = await h.statusChanged(streets, { work_order_id: parksWo, status: 'completed', public_note: 'not yours' })
  t.equal(bola.statusCode, 403, 'streets naming parks’s work order: 403')
  t.match(bola.json(), [{ code: 403, description: /another department/ }])
  const swapped = await h.statusChanged(streets, { work_order_id: parksWo, status: 'completed' }, { urlDepartment: 'parks' })
  t.equal(swapped.statusCode, 401, 'streets’ signature on parks’s endpoint: 401')
  const dup = await h.signed(streets, { type: 'service_request.duplicate_of', data: { service_request_id: treeId, parent_service_request_id: await h.createRequest('pothole') } })
  t.equal(dup.statusCode, 403, 'streets cannot mark parks’s request as a duplicate')
  const missing = await h.statusChanged(streets, { work_order_id: 'WO-99999999', status: 'accepted' })
  t.equal(missing.statusCode, 404)
  const mysoc = await h.postUpdate(streets.key, { service_request_id: treeId, update_id: 'bola-1', status: 'FIXED', updated_datetime: new Date().toISOString() })
  t.equal(mysoc.statusCode, 403, 'streets’ api_key on a request it has no work order on: 403')
  t.match(mysoc.json(), [{ code: 403, description: /no work order for this department/ }])
  const mysocXml = await h.postUpdate(streets.key, { service_request_id: treeId, update_id: 'bola-2', status: 'FIXED', updated_datetime: new Date().toISOString() }, 'xml')
  t.equal(mysocXml.statusCode, 403)
  t.match(xml.parse(mysocXml.body).errors.error[0], { code: '403' }, 'in XML too')
  t.same(await fingerprint(treeId), before, 'parks’s work order and the request are untouched')

  // Other credentials on the mySociety door.
  const fields = { service_request_id: treeId, update_id: 'bola-3', status: 'FIXED', updated_datetime: new Date().toISOString() }
  // A client key is a citizen's comment at most: it can never move the work or the request.
  const citizen = await h.postUpdate(h.citizen.key, { ...fields, description: 'Still blocked, please hurry' })
  t.equal(citizen.statusCode, 200, 'a client key adds a citizen comment')
  const afterComment = await fingerprint(treeId)
  t.equal(afterComment.work_orders, before.work_orders, 'a client key’s FIXED does not touch the work order')
  t.equal(afterComment.status, 'open', 'nor close the request')
  t.equal(afterComment.detailed_status, before.detailed_status)
  const [comment] = await rows<{ source: string; department_id: number | null }>(
    sql`select u.source, u.department_id from request_updates u join service_requests sr on sr.id = u.request_id
        where sr.public_id = ${treeId} order by u.id desc limit 1`,
  )
  t.same(comment, { source: 'citizen', department_id: null }, 'recorded as the citizen’s, not a department’s')
  const citizenBefore = await fingerprint(treeId)
  const operator = await h.postUpdate(h.admin.key, fields)
  t.equal(operator.statusCode, 403, 'nor is an admin key')
  const noKey = await app.inject({
    method: 'POST',
    url: '/open311/v2/servicerequestupdates.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(fields).toString(),
  })
  t.equal(noKey.statusCode, 403, 'no key: 403')
  t.match(noKey.json(), [{ code: 403 }])
  t.same(await fingerprint(treeId), citizenBefore)

  // BFLA: department keys never reach /admin/v1.
  const potholeId = await h.createRequest('pothole')
  const potholeBefore = await fingerprint(potholeId)
  const deptAuth = { authorization: `Bearer ${streets.key}` }
  const adminRoutes = [
    { method: 'GET' as const, url: '/admin/v1/departments' },
    { method: 'PATCH' as const, url: '/admin/v1/departments/streets', payload: { status_map: { ANY: 'completed' } } },
    { method: 'POST' as const, url: '/admin/v1/departments', payload: { code: 'rogue', name: 'Rogue' } },
    { method: 'POST' as const, url: '/admin/v1/departments/parks/rotate-secret', payload: {} },
    { method: 'PUT' as const, url: '/admin/v1/services/tree/routes', payload: [{ department: 'streets' }] },
    { method: 'GET' as const, url: `/admin/v1/requests/${potholeId}/work-orders` },
    { method: 'POST' as const, url: `/admin/v1/requests/${potholeId}/close`, payload: { reason: 'done', force: true } },
    { method: 'POST' as const, url: `/admin/v1/requests/${treeId}/duplicate`, payload: { parent_service_request_id: potholeId } },
    { method: 'GET' as const, url: '/admin/v1/deliveries' },
    { method: 'POST' as const, url: '/admin/v1/deliveries/replay', payload: { failed_since: iso(0) } },
    { method: 'GET' as const, url: '/admin/v1/alerts' },
    { method: 'GET' as const, url: '/admin/v1/keys' },
    { method: 'POST' as const, url: '/admin/v1/keys', payload: { name: 'escalate', scopes: ['admin'] } },
    { method: 'GET' as const, url: '/admin/v1/services' },
  ]
  for (const route of adminRoutes) {
    for (const [how, request] of [
      ['bearer', { ...route, headers: deptAuth }],
      ['api_key query', { ...route, url: `${route.url}?api_key=${encodeURIComponent(streets.key)}` }],
    ] as const) {
      const res = await app.inject(request)
      t.equal(res.statusCode, 403, `${route.method} ${route.url} with a department key (${how}): 403`)
      t.match(res.json(), [{ code: 403 }])
    }
  }
  t.same(await fingerprint(potholeId), potholeBefore, 'the admin calls changed nothing')
  t.same(await fingerprint(treeId), citizenBefore)
  const departments = await app.inject({ url: '/admin/v1/departments', headers: h.asAdmin })
  t.notOk((departments.json() as { code: string }[]).some((d) => d.code === 'rogue'), 'no department was created')
  t.notOk('ANY' in ((departments.json() as { code: string; status_map: Record<string, string> }[]).find((d) => d.code === 'streets')?.status_map ?? {}))
  const routes = await rows<{ code: string }>(
    sql`select d.code from service_routes r join services s on s.id = r.service_id join departments d on d.id = r.department_id where s.service_code = 'tree'`,
  )
  t.same(routes.map((r) => r.code), ['parks'], 'routes unchanged')
  const [keys] = await rows<{ n: number }>(sql`select count(*)::int as n from api_keys where name = 'escalate'`)
  t.equal(Number(keys!.n), 0, 'no key was minted')
})

t.test('mySociety POST servicerequestupdates: JSON and XML answers, idempotent on update_id', async (t) => {
  const id = await h.createRequest('pothole')
  const wo = await onlyWorkOrder(id)
  const started = new Date(Date.now() - 30 * 60_000).toISOString()
  const progress = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'st-100', status: 'IN_PROGRESS', updated_datetime: started, description: 'Crew dispatched' })
  t.equal(progress.statusCode, 200)
  t.match(progress.headers['content-type'], /^application\/json/)
  const body = progress.json() as { update_id: string }[]
  t.equal(body.length, 1)
  t.same(Object.keys(body[0]!), ['update_id'])
  t.match(body[0]!.update_id, /^\d+$/)
  t.match(await workOrderRow(wo), { state: 'in_progress', external_status_code: 'IN_PROGRESS' })
  const afterFirst = await fingerprint(id)
  t.equal(afterFirst.status_notes, 'Crew dispatched', 'description is the public note')

  const repeat = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'st-100', status: 'IN_PROGRESS', updated_datetime: started, description: 'Crew dispatched' })
  t.equal(repeat.statusCode, 200)
  t.same(repeat.json(), body, 'a repeated update_id answers the first update_id')
  t.equal(repeat.headers['idempotent-replayed'], 'true')
  const repeatXml = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'st-100', status: 'FIXED', updated_datetime: new Date().toISOString() }, 'xml')
  t.equal(repeatXml.statusCode, 200)
  t.equal(String(xml.parse(repeatXml.body).service_request_updates.request_update[0].update_id), body[0]!.update_id, 'even carrying another status')
  t.same(await fingerprint(id), afterFirst, 'no second change')
  t.equal((await h.requestRow(id)).status, 'open')

  const fixed = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'st-101', status: 'FIXED', updated_datetime: new Date().toISOString(), description: 'Filled and rolled' }, 'xml')
  t.equal(fixed.statusCode, 200)
  t.match(fixed.headers['content-type'], /^text\/xml/)
  t.match(fixed.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
  const parsed = xml.parse(fixed.body)
  const xmlUpdates = parsed.service_request_updates.request_update
  t.equal(xmlUpdates.length, 1)
  t.match(xmlUpdates[0].update_id, /^\d+$/)
  t.not(xmlUpdates[0].update_id, body[0]!.update_id, 'a new update gets a new update_id')
  t.match(await workOrderRow(wo), { state: 'completed', external_status_code: 'FIXED' })
  const closed = await h.publicRequest(id)
  t.equal(closed.status, 'closed')
  t.equal(closed.status_notes, 'Filled and rolled')
  const notes = closed.notes.map((n) => n.update_id)
  t.ok(notes.includes(body[0]!.update_id) && notes.includes(String(xmlUpdates[0].update_id)), 'both update_ids are public notes')

  // update_ids are per department: parks reusing "st-100" on its own request is a new update.
  const treeId = await h.createRequest('tree')
  const parksUpdate = await h.postUpdate(parks.key, { service_request_id: treeId, update_id: 'st-100', status: 'OPEN', updated_datetime: new Date().toISOString() })
  t.equal(parksUpdate.statusCode, 200)
  t.not((parksUpdate.json() as { update_id: string }[])[0]!.update_id, body[0]!.update_id)

  // Malformed updates.
  const badDate = await h.postUpdate(streets.key, { service_request_id: treeId, update_id: 'x', status: 'OPEN', updated_datetime: 'last tuesday' })
  t.equal(badDate.statusCode, 400)
  t.match(badDate.json(), [{ code: 400, description: /updated_datetime/ }])
  const missingFields = await h.postUpdate(streets.key, { service_request_id: id })
  t.equal(missingFields.statusCode, 400)
  const unknownRequest = await h.postUpdate(streets.key, { service_request_id: '99999999', update_id: 'y', status: 'OPEN', updated_datetime: new Date().toISOString() })
  t.equal(unknownRequest.statusCode, 404)
})

t.test('rejected requires a reason; reassignment opens a new work order for the other department', async (t) => {
  // Rejection.
  const rejectId = await h.createRequest('pothole')
  const rejectWo = await onlyWorkOrder(rejectId)
  const before = await fingerprint(rejectId)
  const noReason = await h.statusChanged(streets, { work_order_id: rejectWo, status: 'rejected' })
  t.equal(noReason.statusCode, 400)
  t.match(noReason.json(), [{ code: 400, description: /reason/ }])
  const mysocNoReason = await h.postUpdate(streets.key, { service_request_id: rejectId, update_id: 'rej-1', status: 'NOT_COUNCILS_RESPONSIBILITY', updated_datetime: new Date().toISOString() })
  t.equal(mysocNoReason.statusCode, 400, 'the mySociety rejection word without any text is refused too')
  t.same(await fingerprint(rejectId), before, 'a refused rejection changes nothing')
  const rejected = await h.statusChanged(streets, { work_order_id: rejectWo, status: 'rejected', reason: 'Private road', public_note: 'This is a private road' })
  t.match(rejected.json(), { applied: true })
  t.match(await workOrderRow(rejectWo), { state: 'rejected', reason: 'Private road' })
  const rejectedView = await h.publicRequest(rejectId)
  t.equal(rejectedView.status, 'open', 'a rejection does not close the request')
  t.equal(rejectedView.extended_attributes.detailed_status, 'needs_attention')

  // Reassignment.
  const id = await h.createRequest('pothole')
  const streetsWo = await onlyWorkOrder(id)
  const event = (data: Record<string, string>) => h.statusChanged(streets, { work_order_id: streetsWo, status: 'reassigned', ...data })
  const noTarget = await event({})
  t.equal(noTarget.statusCode, 400)
  t.match(noTarget.json(), [{ description: /reassign_to/ }])
  const self = await event({ reassign_to: 'streets' })
  t.equal(self.statusCode, 400, 'reassigning to oneself is refused')
  const unknown = await event({ reassign_to: 'nowhere' })
  t.equal(unknown.statusCode, 404, 'an unknown department is refused')
  t.equal((await h.workOrders(id)).length, 1, 'refused reassignments opened nothing')
  t.equal((await workOrderRow(streetsWo)).state, 'pending')

  const moved = await event({ reassign_to: 'parks', reason: 'Tree roots, not asphalt', public_note: 'Passed to Parks' })
  t.equal(moved.statusCode, 200)
  t.match(moved.json(), { applied: true })
  const orders = await h.workOrders(id)
  t.equal(orders.length, 2, 'a new work order was opened')
  const parksWo = orders[1]!
  t.match(orders[0], { id: streetsWo, state: 'reassigned', reason: 'Tree roots, not asphalt' })
  t.match(parksWo, { state: 'pending' })
  const [parksRow] = await rows<{ code: string }>(sql`select d.code from work_orders w join departments d on d.id = w.department_id where w.id = ${Number(parksWo.id.slice(3))}`)
  t.equal(parksRow!.code, 'parks', 'the new work order belongs to parks')
  t.equal((await workOrderRow(streetsWo)).reassigned_to_id, Number(parksWo.id.slice(3)))
  const view = await h.publicRequest(id)
  t.equal(view.status, 'open', 'the request stays open: parks has the work now')
  t.equal(view.status_notes, 'Passed to Parks')

  const events = await h.outboxEvents([streetsWo, parksWo.id])
  t.same(
    events.map((e) => [e.event_type, e.department, `WO-${e.work_order_id}`]),
    [
      ['work_order.created', 'streets', streetsWo],
      ['work_order.reassigned', 'streets', streetsWo],
      ['work_order.created', 'parks', parksWo.id],
    ],
  )
  t.equal(events[1]!.payload.data.reassigned_to, parksWo.id)
  t.equal(events[1]!.payload.data.reassigned_to_department, 'parks', 'the department code beside the work-order id')
  t.equal(events[2]!.payload.data.reassigned_from, streetsWo)
  t.equal(events[2]!.payload.data.reassigned_from_department, 'streets')

  // Delivered for real: each department's receiver gets its own events, signed with its own secret.
  const streetsSeen = streetsReceiver.received.length
  const parksSeen = parksReceiver.received.length
  // Events of one work order go out in commit order: `reassigned` waits for `created`.
  for (let round = 0; round < 5 && (await h.deliver()) > 0; round++);
  const streetsGot = streetsReceiver.received.slice(streetsSeen).filter((d) => d.body.data.work_order.id === streetsWo)
  const parksGot = parksReceiver.received.slice(parksSeen).filter((d) => d.body.data.work_order.id === parksWo.id)
  t.same(streetsGot.map((d) => d.body.type), ['work_order.created', 'work_order.reassigned'], 'streets hears created then reassigned, in order')
  t.same(parksGot.map((d) => d.body.type), ['work_order.created'])
  t.equal(parksGot[0]?.body.data.reassigned_from, streetsWo)
  t.equal(parksGot[0]?.body.data.reassigned_from_department, 'streets', 'delivered with the code of the department it came from')
  t.equal(parksGot[0]?.body.data.service_request.service_request_id, id)
  t.doesNotThrow(() => verify([parks.secret], parksGot[0]!.headers, parksGot[0]!.raw), 'signed with parks’s secret')
  t.throws(() => verify([streets.secret], parksGot[0]!.headers, parksGot[0]!.raw), 'not with streets’s')

  // Streets can no longer act on it; parks finishes and the request closes.
  const late = await h.statusChanged(streets, { work_order_id: streetsWo, status: 'completed' })
  t.match(late.json(), { applied: false, reason: 'final' })
  t.equal((await h.requestRow(id)).status, 'open')
  const parksDone = await h.statusChanged(parks, { work_order_id: parksWo.id, status: 'completed', public_note: 'Roots cut, path relaid' })
  t.match(parksDone.json(), { applied: true })
  t.equal((await h.requestRow(id)).status, 'closed')
})

t.test('promise 24: department progress reaches the public view; internal notes never do', async (t) => {
  const INTERNAL = 'INTERNAL-needs-the-big-truck-7f3a'
  const id = await h.createRequest('shared')
  const orders = await h.workOrders(id)
  t.equal(orders.length, 2)
  const [streetsWo, parksWo] = orders.map((o) => o.id) as [string, string]
  const expected = '2030-06-01T14:00:00Z'
  const scheduled = await h.statusChanged(streets, {
    work_order_id: streetsWo,
    status: 'scheduled',
    expected_datetime: expected,
    external_ref: 'ST-2231',
    public_note: 'Crew booked for June 1',
    internal_note: INTERNAL,
  })
  t.equal(scheduled.statusCode, 200)
  const scheduledUpdate = (scheduled.json() as { update_id: string }).update_id
  const accepted = await h.postUpdate(parks.key, { service_request_id: id, update_id: 'pk-1', status: 'OPEN', updated_datetime: new Date().toISOString(), description: 'Parks will check the trees' })
  const acceptedUpdate = (accepted.json() as { update_id: string }[])[0]!.update_id
  // A refused (stale) report with its own internal note.
  const stale = await h.statusChanged(streets, { work_order_id: streetsWo, status: 'accepted', occurred_at: iso(Date.now() - 24 * HOUR), internal_note: `${INTERNAL}-stale` })
  t.match(stale.json(), { applied: false, reason: 'stale' })

  const view = await h.publicRequest(id)
  t.equal(view.extended_attributes.detailed_status, 'scheduled', 'the most advanced open work order speaks for the request')
  t.equal(view.status_notes, 'Parks will check the trees', 'status_notes is the latest public note')
  t.ok(view.expected_datetime, 'expected_datetime is set')
  t.equal(Date.parse(view.expected_datetime!), Date.parse(expected), 'expected_datetime is the scheduled date')
  t.match(view.expected_datetime, /-0[56]:00$/, 'in the jurisdiction’s time zone')
  t.equal(view.agency_responsible, 'Streets Dept, Parks Dept')
  const noteIds = view.notes.map((n) => n.update_id)
  t.ok(noteIds.includes(scheduledUpdate), 'the scheduled callback’s update_id is a public note')
  t.ok(noteIds.includes(acceptedUpdate), 'the mySociety update_id is a public note')
  t.match(view.notes.find((n) => n.update_id === scheduledUpdate), { status: 'open', detailed_status: 'scheduled', description: 'Crew booked for June 1' })
  t.same(noteIds, [...noteIds].sort((a, b) => Number(a) - Number(b)), 'notes in order')

  // The internal notes exist — internally.
  const internal = await rows<{ description: string; is_public: boolean }>(
    sql`select u.description, u.is_public from request_updates u join service_requests sr on sr.id = u.request_id
        where sr.public_id = ${id} and u.description like ${`%${INTERNAL}%`}`,
  )
  t.ok(internal.length >= 1, 'the applied report’s internal note is in the history')
  t.ok(internal.every((u) => !u.is_public), 'marked internal')

  const since = encodeURIComponent(iso(Date.now() - HOUR))
  const publicUrls = [
    '/open311/v2/requests.json',
    '/open311/v2/requests.json?extensions=true',
    '/open311/v2/requests.xml?extensions=true',
    `/open311/v2/requests.json?extensions=true&service_request_id=${id}`,
    `/open311/v2/requests/${id}.json`,
    `/open311/v2/requests/${id}.json?extensions=true`,
    `/open311/v2/requests/${id}.xml?extensions=true`,
    `/open311/v2/servicerequestupdates.json?start_date=${since}`,
    `/open311/v2/servicerequestupdates.xml?start_date=${since}`,
  ]
  for (const url of publicUrls) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, `${url}: 200`)
    t.ok(res.body.includes(id), `${url}: shows the request`)
    t.notOk(res.body.includes(INTERNAL), `${url}: no internal note`)
    t.notOk(res.body.includes('not applied'), `${url}: no refused-report history`)
    t.notOk(res.body.includes('internal_note'), `${url}: no internal_note field`)
  }
  const updatesXml = xml.parse((await app.inject(`/open311/v2/servicerequestupdates.xml?start_date=${since}`)).body)
  const mine = updatesXml.service_request_updates.request_update.filter((u: { service_request_id: string }) => String(u.service_request_id) === id)
  t.ok(mine.some((u: { update_id: string; external_status_code: string }) => String(u.update_id) === scheduledUpdate && u.external_status_code === 'scheduled'))
  const requestXml = xml.parse((await app.inject(`/open311/v2/requests/${id}.xml?extensions=true`)).body)
  const xmlRequest = requestXml.service_requests.request[0]
  t.equal(xmlRequest.extended_attributes.detailed_status, 'scheduled')
  t.equal(xmlRequest.status_notes, 'Parks will check the trees')
  t.equal(Date.parse(xmlRequest.expected_datetime), Date.parse(expected))

  // Parks completes first: still open, streets’ schedule speaks; then streets completes: closed.
  t.match((await h.statusChanged(parks, { work_order_id: parksWo, status: 'completed', public_note: 'Trees fine', occurred_at: iso(Date.now()) })).json(), { applied: true })
  const halfway = await h.publicRequest(id)
  t.equal(halfway.status, 'open')
  t.equal(halfway.extended_attributes.detailed_status, 'scheduled')
  t.equal(Date.parse(halfway.expected_datetime!), Date.parse(expected))
  t.match((await h.statusChanged(streets, { work_order_id: streetsWo, status: 'completed', public_note: 'Sidewalk cleared', occurred_at: iso(Date.now()) })).json(), { applied: true })
  const done = await h.publicRequest(id)
  t.equal(done.status, 'closed')
  t.equal(done.extended_attributes.detailed_status, 'completed')
  t.equal(done.status_notes, 'Sidewalk cleared')
  t.equal(done.expected_datetime, null, 'no open work order, no expected date')
  t.ok(done.extended_attributes.closed_datetime)
  t.equal(done.notes.at(-1)?.status, 'closed')
})

t.test('promise 21: POST requests needs a client key — none, a wrong one or a department key get 403; GETs need none', async (t) => {
  const [before] = await rows<{ n: number }>(sql`select count(*)::int as n from service_requests`)
  const post = (headers: Record<string, string>, fields: Record<string, string>, format = 'json') =>
    app.inject({
      method: 'POST',
      url: `/open311/v2/requests.${format}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: new URLSearchParams({ service_code: 'pothole', lat: '41.88', long: '-87.63', ...fields }).toString(),
    })
  const attempts: [string, Promise<Awaited<ReturnType<typeof post>>>][] = [
    ['no key', post({}, {})],
    ['a malformed key', post({}, { api_key: 'not-a-key' })],
    ['a forged key', post({}, { api_key: `o311_${'a'.repeat(12)}_${'B'.repeat(43)}` })],
    ['a department’s inbound key', post({}, { api_key: streets.key })],
    ['a department’s inbound key as bearer', post({ authorization: `Bearer ${streets.key}` }, {})],
    ['a department’s signing secret', post({}, { api_key: streets.secret })],
  ]
  for (const [label, attempt] of attempts) {
    const res = await attempt
    t.equal(res.statusCode, 403, `${label}: 403`)
    t.match(res.json(), [{ code: 403, description: String }], `${label}: an Open311 error list`)
  }
  const xmlRes = await post({}, {}, 'xml')
  t.equal(xmlRes.statusCode, 403)
  t.match(xml.parse(xmlRes.body).errors.error[0], { code: '403' }, 'in XML too')
  const [after] = await rows<{ n: number }>(sql`select count(*)::int as n from service_requests`)
  t.equal(Number(after!.n), Number(before!.n), 'no request was created')
  for (const url of ['/open311/v2/services.json', '/open311/v2/requests.json', '/open311/v2/servicerequestupdates.json']) {
    t.equal((await app.inject(url)).statusCode, 200, `GET ${url} without a key: 200`)
  }
})

t.test('promise 24: unknown inbound fields are rejected; reporters’ contact details reach neither the public nor departments without receives_contact', async (t) => {
  const id = await h.createRequest('shared', { lat: '41.88', long: '-87.63', email: 'reporter@example.org', first_name: 'Rita', last_name: 'Reporter', phone: '+1 555 0100' })
  const [streetsWo, parksWo] = (await h.workOrders(id)).map((o) => o.id) as [string, string]
  const before = await fingerprint(id)
  const extra = await h.statusChanged(streets, { work_order_id: streetsWo, status: 'completed', close_request: 'true' })
  t.equal(extra.statusCode, 400, 'an unknown property in data is refused, not ignored')
  t.match(extra.json(), [{ code: 400 }])
  const badType = await h.signed(streets, { type: 'work_order.deleted', data: { work_order_id: streetsWo } })
  t.equal(badType.statusCode, 400, 'an unknown event type is refused')
  const notJson = await app.inject({ method: 'POST', url: '/departments/v1/streets/events', headers: { 'content-type': 'application/json', 'webhook-id': 'x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' }, payload: '{not json' })
  t.equal(notJson.statusCode, 400)
  const patch = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: h.asAdmin, payload: { secret: 'mine' } })
  t.equal(patch.statusCode, 400, 'unknown admin body properties are refused')
  t.same(await fingerprint(id), before, 'nothing changed')

  const PII = ['reporter@example.org', 'Rita', 'Reporter', '555 0100']
  for (const url of [`/open311/v2/requests/${id}.json?extensions=true`, `/open311/v2/requests/${id}.xml?extensions=true`, '/open311/v2/requests.json?extensions=true', `/open311/v2/servicerequestupdates.json?start_date=${encodeURIComponent(iso(Date.now() - HOUR))}`]) {
    const body = (await app.inject(url)).body
    t.ok(body.includes(id), `${url}: shows the request`)
    t.notOk(PII.some((p) => body.includes(p)), `${url}: no reporter details`)
  }
  const core = (await app.inject(`/open311/v2/requests/${id}.json`)).json()[0]
  t.same(Object.keys(core).sort(), [
    'address', 'address_id', 'agency_responsible', 'description', 'expected_datetime', 'lat', 'long', 'media_url', 'requested_datetime',
    'service_code', 'service_name', 'service_notice', 'service_request_id', 'status', 'status_notes', 'updated_datetime', 'zipcode',
  ], 'the core representation has exactly the spec’s fields')

  // Departments: contact details only with receives_contact.
  const created = await h.outboxEvents([streetsWo, parksWo])
  t.ok(created.every((e) => !('reporter' in e.payload.data)), 'no reporter in events for departments without receives_contact')
  t.notOk(JSON.stringify(created).includes('reporter@example.org'))
  t.equal((await app.inject({ method: 'PATCH', url: '/admin/v1/departments/parks', headers: h.asAdmin, payload: { receives_contact: true } })).statusCode, 200)
  const contactId = await h.createRequest('shared', { lat: '41.88', long: '-87.63', email: 'second@example.org' })
  const events = await h.outboxEvents((await h.workOrders(contactId)).map((o) => o.id))
  t.same(events.map((e) => [e.department, (e.payload.data.reporter as { email?: string } | undefined)?.email ?? null]), [
    ['streets', null],
    ['parks', 'second@example.org'],
  ], 'only the department allowed to see contact details gets them')
  t.equal((await app.inject({ method: 'PATCH', url: '/admin/v1/departments/parks', headers: h.asAdmin, payload: { receives_contact: false } })).statusCode, 200)
})
