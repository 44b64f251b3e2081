/**
 * Outbound delivery through the transactional outbox (promises 1–11 of
 * docs/webhook-reliability §6): atomic emit, no phantom emit, a 24-hour outage, the retry
 * schedule, Retry-After and throttling, what counts as success, 410 and long-failure
 * disabling, dead letters and replay, per-work-order ordering, crash recovery, concurrent
 * workers, and the `sent` bookkeeping after a work order is delivered.
 *
 * Long outages run on a fake clock: deliverDue takes `now`, and each step moves it to the
 * next row's next_attempt_at. Receivers are real HTTP servers on 127.0.0.1.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { and, asc, eq, inArray, sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { departmentSecrets, outbox, serviceRequests } from '../../src/db/schema.js'
import { loadCatalogServices } from '../../src/domain/catalog/catalog.js'
import { resolveJurisdiction } from '../../src/domain/jurisdictions.js'
import { submitServiceRequest } from '../../src/domain/requests/submit-request.js'
import { validateSubmission } from '../../src/domain/requests/submission.js'
import { claimDue } from '../../src/outbox/outbox.js'
import type { DepartmentDeliveryOptions } from '../../src/workers/department-deliveries.js'
import { egressAgent } from '../../src/integrations/webhooks/egress.js'
import { verify } from '../../src/integrations/webhooks/standard-webhooks.js'
import {
  JITTER,
  MAX_ATTEMPTS,
  MIN_THROTTLED_DELAY_MS,
  parseRetryAfter,
  RETRY_DELAYS_MS,
  retryDelayMs,
} from '../../src/integrations/webhooks/retry-policy.js'
import { TEST_SECRETS_KEY } from '../helpers/app.js'
import { childEnv, ROOT } from '../helpers/process.js'
import { type Delivery, FakeClock, type Handler, HOUR, MINUTE, SECOND, setupHarness } from './fixtures.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

// One database per test file; subtests share it and run in order. Each subtest uses its own
// department and retires (disables) it at the end, so its leftovers are never claimed later.
const h = await setupHarness(t)
const { app, receiver } = h
const db = app.db

class Deliberate extends Error {}

/** The earliest next_attempt_at among a department's pending rows. */
async function nextDue(code: string): Promise<Date | null> {
  const pending = (await h.outboxOf(code)).filter((r) => r.state === 'pending')
  if (pending.length === 0) return null
  return new Date(Math.min(...pending.map((r) => r.nextAttemptAt.getTime())))
}

/** A clock at a whole second, a little after now (so freshly written rows are due). */
const wholeSecondClock = () => new FakeClock(Math.ceil(Date.now() / 1000) * 1000 + SECOND)

const typesOf = (deliveries: Delivery[]) => deliveries.map((d) => (JSON.parse(d.body) as { type: string }).type)

async function cancelRow(id: number) {
  await db.update(outbox).set({ state: 'cancelled' }).where(eq(outbox.id, id))
}

async function requestJson(id: string) {
  const res = await app.inject(`/open311/v2/requests/${id}.json?extensions=true`)
  return (res.json() as Record<string, any>[])[0]!
}

t.test('atomic emit: request, work order and outbox row commit together; a dispatcher that never ran loses nothing', async (t) => {
  const dept = await h.registerDepartment('atomic')
  await h.route('sidewalk-damage', 'atomic')
  const requestId = await h.submit()

  // The "crash": nothing dispatched after the commit.
  const [row] = await h.outboxOf('atomic')
  const [workOrder] = await h.workOrdersOf(requestId)
  t.ok(row && workOrder, 'the outbox row and the work order exist as soon as the request does')
  t.match(row, { eventType: 'work_order.created', state: 'pending', attempts: 0, workOrderId: workOrder!.id })
  t.equal(workOrder!.state, 'pending')
  const [xmins] = await queryRows<{ request: string; work_order: string; outbox: string }>(
    db,
    sql`select (select xmin::text from service_requests where public_id = ${requestId}) as request,
               (select xmin::text from work_orders where id = ${workOrder!.id}) as work_order,
               (select xmin::text from outbox where id = ${row!.id}) as outbox`,
  )
  t.ok(xmins!.request === xmins!.work_order && xmins!.work_order === xmins!.outbox, `one transaction wrote all three (xmin ${xmins!.request})`)
  t.equal(receiver.hits(dept.hookPath), 0, 'nothing was sent before a dispatcher ran')

  // "Restart": a new dispatcher (new worker id, new connection pool to the receiver).
  const agent = egressAgent(app.webhooks.egress, 5_000)
  t.teardown(() => agent.close())
  t.equal(await h.dispatch({ agent, workerId: 'after-restart', now: () => new Date() }), 1)
  const got = receiver.deliveries(dept.hookPath)
  t.equal(got.length, 1, 'delivered after the restart')
  t.equal(got[0]!.id, row!.eventId)
  const [after] = await h.outboxOf('atomic')
  t.match(after, { state: 'delivered', attempts: 1, lastStatus: 200, lockedBy: null, lockedAt: null })
  t.ok(after!.deliveredAt, 'delivered_at set')

  // markSent: the work order is sent, the request says so publicly, once.
  const [sentOrder] = await h.workOrdersOf(requestId)
  t.equal(sentOrder!.state, 'sent', 'the work order is sent')
  const request = await requestJson(requestId)
  t.equal(request.status, 'open')
  t.equal(request.extended_attributes.detailed_status, 'sent_to_department')
  const sentNotes = request.notes.filter((n: { detailed_status: string }) => n.detailed_status === 'sent_to_department')
  t.equal(sentNotes.length, 1, 'one public update')
  t.match(sentNotes[0], { status: 'open', description: 'Sent to Department atomic', type: 'update' })
  const workOrders = await app.inject({ url: `/admin/v1/requests/${requestId}/work-orders`, headers: h.admin })
  t.match(workOrders.json(), [{ id: `WO-${workOrder!.id}`, state: 'sent' }])
  // Delivering again changes nothing.
  t.equal(await h.dispatch({ now: () => new Date(Date.now() + HOUR) }), 0)
  t.equal((await requestJson(requestId)).notes.length, request.notes.length, 'no second update')
  await h.retire('atomic')
})

/** Two departments, sidewalk damage routed to the first and graffiti to the second, with requests for each. */
async function twoDepartments(eastCode: string, westCode: string, eastCount: number, westCount: number) {
  const east = await h.registerDepartment(eastCode)
  const west = await h.registerDepartment(westCode)
  await h.route('sidewalk-damage', eastCode)
  await h.route('graffiti', westCode)
  const eastRequests: string[] = []
  for (let i = 0; i < eastCount; i++) eastRequests.push(await h.submit())
  const westRequests: string[] = []
  for (let i = 0; i < westCount; i++) westRequests.push(await h.submit('graffiti', { 'attribute[surface][]': 'WALL', 'attribute[offensive]': 'NO' }))
  return { east, west, eastRequests, westRequests }
}

t.test('one batch, two departments: each signed with its own secret, each request told once which department has it', async (t) => {
  const { east, west, eastRequests, westRequests } = await twoDepartments('batch-east', 'batch-west', 3, 2)
  t.equal(await h.dispatch({ now: () => new Date() }), 5, 'all five claimed in one batch')
  for (const [dept, count, other] of [[east, 3, west], [west, 2, east]] as const) {
    const got = receiver.deliveries(dept.hookPath)
    t.equal(got.length, count, `${dept.hookPath}: ${count} deliveries`)
    for (const d of got) {
      t.doesNotThrow(() => verify([dept.secret], d.headers, d.body, d.timestamp), 'signed with its own department\'s secret')
      t.throws(() => verify([other.secret], d.headers, d.body, d.timestamp), 'and not with the other\'s')
    }
  }
  for (const [ids, name] of [[eastRequests, 'Department batch-east'], [westRequests, 'Department batch-west']] as const) {
    for (const id of ids) {
      const request = await requestJson(id)
      t.equal(request.extended_attributes.detailed_status, 'sent_to_department')
      const sentNotes = request.notes.filter((n: { detailed_status: string }) => n.detailed_status === 'sent_to_department')
      t.same(sentNotes.map((n: { description: string }) => n.description), [`Sent to ${name}`], `${id}: one note naming its department`)
    }
  }
  await h.retire('batch-east')
  await h.retire('batch-west')
})

t.test('a department whose secrets cannot be read fails only its own rows: the rest of the batch is delivered and recorded', async (t) => {
  const { east: good, west: broken } = await twoDepartments('keys-good', 'keys-broken', 1, 1)
  await db.update(departmentSecrets).set({ ciphertext: 'not a sealed secret' }).where(eq(departmentSecrets.departmentId, broken.id))
  t.equal(await h.dispatch({ now: () => new Date() }), 2, 'both claimed in one batch')
  t.equal(receiver.deliveries(good.hookPath).length, 1, 'the good department got its event')
  t.equal(receiver.deliveries(broken.hookPath).length, 0, 'nothing went out unsigned')
  t.match(await h.outboxOf('keys-good'), [{ state: 'delivered', lockedBy: null, lastStatus: 200 }], 'and it is recorded as delivered')
  t.match(
    await h.outboxOf('keys-broken'),
    [{ state: 'pending', lockedBy: null, attempts: 1, lastError: /^signing secrets unavailable: unreadable sealed secret/ }],
    'the other waits for a retry, unlocked, with the reason',
  )
  await h.retire('keys-good')
  await h.retire('keys-broken')
})

t.test('no phantom emit: a rolled-back request leaves no outbox row and sends nothing', async (t) => {
  const dept = await h.registerDepartment('phantom')
  await h.route('sidewalk-damage', 'phantom')
  const jurisdiction = await resolveJurisdiction(db, undefined)
  const [service] = await loadCatalogServices(db, jurisdiction.id, { serviceCodes: ['sidewalk-damage'] })
  const submission = validateSubmission({ lat: '41.88', long: '-87.63', description: 'phantom request' }, service!, jurisdiction.timeZone)
  const count = async () => (await db.select({ id: outbox.id }).from(outbox)).length
  const before = await count()

  let seenInside = 0
  await t.rejects(
    db.transaction(async (tx) => {
      await submitServiceRequest(tx, { jurisdiction, service: service!, submission, actor: SERVER_ACTOR, channel: 'internal' })
      seenInside = (await tx.select({ id: outbox.id }).from(outbox)).length
      throw new Deliberate('the business transaction fails after the request was written')
    }),
    { message: 'the business transaction fails after the request was written' },
  )
  t.equal(seenInside, before + 1, 'inside the transaction the event existed')
  // A database error after the writes rolls back the same way.
  await t.rejects(
    db.transaction(async (tx) => {
      await submitServiceRequest(tx, { jurisdiction, service: service!, submission, actor: SERVER_ACTOR, channel: 'internal' })
      await tx.execute(sql`select 1 / 0`)
    }),
  )
  t.equal(await count(), before, 'no outbox row survived either rollback')
  t.same(await h.outboxOf('phantom'), [])
  t.same(await db.select().from(serviceRequests).where(eq(serviceRequests.description, 'phantom request')), [], 'no request either')
  t.equal(await h.dispatch({ now: () => new Date(Date.now() + 100 * HOUR) }), 0, 'the dispatcher finds nothing')
  t.equal(receiver.hits(dept.hookPath), 0, 'the receiver saw 0 calls')
  await h.retire('phantom')
})

t.test('receiver answering 503 for 24 h of fake clock, then recovering: every event applied exactly once, none lost', async (t) => {
  const dept = await h.registerDepartment('outage')
  await h.route('sidewalk-damage', 'outage')
  const applied = new Map<string, number>()
  let down = true
  let loseNextAck = true
  let duplicatesIgnored = 0
  receiver.handle(dept.hookPath, (d, res) => {
    if (down) return void res.writeHead(503).end('down')
    // The idempotent receiver: insert-or-ignore on webhook-id.
    if (applied.has(d.id)) duplicatesIgnored += 1
    else applied.set(d.id, 1)
    if (loseNextAck) {
      // Applied, but the answer never reaches the sender: it must send again.
      loseNextAck = false
      res.destroy()
    }
  })
  for (let i = 0; i < 6; i++) await h.submit()
  const rows = await h.outboxOf('outage')
  t.equal(rows.length, 6)

  const clock = new FakeClock()
  const start = clock.time
  for (let step = 0; step < 200; step++) {
    await h.dispatch({ now: clock.now })
    const next = await nextDue('outage')
    if (!next || next.getTime() > start + 24 * HOUR) break
    clock.set(next)
  }
  const duringOutage = receiver.deliveries(dept.hookPath)
  t.ok(duringOutage.length > 0)
  for (const row of rows) {
    // Attempts at 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h (±20 %): 7 inside 24 h, the 8th after 25 h.
    t.equal(duringOutage.filter((d) => d.id === row.eventId).length, 7, 'seven attempts during the 24-hour outage')
  }
  t.equal(applied.size, 0, 'nothing applied while down')
  t.ok((await h.outboxOf('outage')).every((r) => r.state === 'pending'), 'every event still pending, none dropped')

  down = false
  clock.set(start + 24 * HOUR)
  t.equal(await h.dispatch({ now: clock.now }), 0, 'nothing is due the moment the receiver comes back')
  for (let step = 0; step < 200; step++) {
    const next = await nextDue('outage')
    if (!next) break
    clock.set(next)
    await h.dispatch({ now: clock.now })
  }
  const after = await h.outboxOf('outage')
  t.ok(after.every((r) => r.state === 'delivered'), 'every event delivered')
  t.same([...applied.keys()].sort(), rows.map((r) => r.eventId).sort(), 'the receiver applied every event')
  t.ok([...applied.values()].every((n) => n === 1), 'each exactly once')
  t.equal(duplicatesIgnored, 1, 'the re-send after the lost acknowledgement was deduplicated')
  const perId = rows.map((r) => receiver.deliveries(dept.hookPath).filter((d) => d.id === r.eventId).length).sort()
  t.same(perId, [8, 8, 8, 8, 8, 9], 'one extra delivery for the lost acknowledgement, no others')
  t.equal(clock.time - start > 25 * HOUR, true, 'recovery delivered on the retry schedule, after 25 h')
  const department = await h.departmentRow('outage')
  t.equal(department.enabled, true, 'a 31-hour outage does not disable the endpoint (5-day rule)')
  t.equal(department.failingSince, null, 'success cleared the failure run')
  await h.retire('outage')
})

t.test('retry schedule: the table, ±20 % jitter, ≥72 h nominal horizon; dead letter after the last attempt, visible and replayable', async (t) => {
  t.same(
    RETRY_DELAYS_MS,
    [5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 14 * HOUR, 20 * HOUR, 24 * HOUR],
    'the Standard Webhooks example schedule',
  )
  t.equal(MAX_ATTEMPTS, 10)
  t.equal(JITTER, 0.2)
  const nominal = RETRY_DELAYS_MS.reduce((a, b) => a + b, 0)
  t.ok(nominal >= 72 * HOUR, `nominal horizon ${(nominal / HOUR).toFixed(2)} h`)
  for (let i = 1; i < RETRY_DELAYS_MS.length; i++) t.ok(RETRY_DELAYS_MS[i]! > RETRY_DELAYS_MS[i - 1]!, 'delays grow')

  const dept = await h.registerDepartment('deadletter')
  await h.route('sidewalk-damage', 'deadletter')
  let up = false
  receiver.handle(dept.hookPath, (_d, res) => {
    if (!up) res.writeHead(500).end('broken')
  })
  const testStarted = new Date()
  const requestX = await h.submit()
  const requestY = await h.submit()
  const [x, y] = await h.outboxOf('deadletter')

  const clock = new FakeClock()
  const attemptsAt = new Map<string, number[]>([[x!.eventId, []], [y!.eventId, []]])
  const gaps = new Map<string, number[]>([[x!.eventId, []], [y!.eventId, []]])
  for (let step = 0; step < 100; step++) {
    const before = new Map((await h.outboxOf('deadletter')).map((r) => [r.eventId, r.attempts]))
    await h.dispatch({ now: clock.now, disableAfterDays: 5 })
    for (const row of await h.outboxOf('deadletter')) {
      if (row.attempts === before.get(row.eventId)) continue
      attemptsAt.get(row.eventId)!.push(clock.time)
      if (row.state === 'pending') gaps.get(row.eventId)!.push(row.nextAttemptAt.getTime() - clock.time)
    }
    const next = await nextDue('deadletter')
    if (!next) break
    clock.set(next)
  }
  for (const row of [x!, y!]) {
    const times = attemptsAt.get(row.eventId)!
    const gapList = gaps.get(row.eventId)!
    // Ten attempts on the schedule; when the jitter drew the schedule short of 72 h, one more
    // attempt at the 72 h horizon before the dead letter.
    const extra = times.length - MAX_ATTEMPTS
    t.ok(extra === 0 || extra === 1, `ten attempts, or eleven when the jittered schedule ended before 72 h (${times.length})`)
    t.equal(gapList.length, RETRY_DELAYS_MS.length + extra, 'a computed next attempt after each failure but the last')
    for (const [i, gap] of gapList.slice(0, RETRY_DELAYS_MS.length).entries()) {
      const scheduled = RETRY_DELAYS_MS[i]!
      t.ok(gap >= scheduled * (1 - JITTER) - 1 && gap <= scheduled * (1 + JITTER) + 1, `retry ${i + 1}: ${gap} ms is ${scheduled} ms ±20 %`)
    }
    t.ok(gapList.some((gap, i) => gap !== RETRY_DELAYS_MS[i]), 'jitter is applied')
    const span = times.at(-1)! - times[0]!
    t.ok(span >= 72 * HOUR - 60_000 && span <= nominal * (1 + JITTER), `span ${(span / HOUR).toFixed(2)} h: at least 72 h, at most the nominal horizon +20 %`)
    t.comment(`event ${row.eventId}: last attempt ${(span / HOUR).toFixed(2)} h after the first`)
  }

  // Dead-lettered: failed, kept, listed, alerted; the requests stay open.
  const failed = await h.outboxOf('deadletter')
  for (const row of failed) {
    t.match(row, { state: 'failed', lastStatus: 500, lastError: 'HTTP 500' })
    t.ok(row.attempts === MAX_ATTEMPTS || row.attempts === MAX_ATTEMPTS + 1, 'attempts used up')
    t.equal(row.failedAt?.getTime(), attemptsAt.get(row.eventId)!.at(-1), 'failed_at is the last attempt')
  }
  t.equal(await h.dispatch({ now: () => new Date(clock.time + 30 * 24 * HOUR) }), 0, 'a dead letter is never retried on its own')
  const listed = await app.inject({ url: '/admin/v1/deliveries?state=failed', headers: h.admin })
  t.equal(listed.statusCode, 200)
  const listedIds = (listed.json() as { event_id: string }[]).map((d) => d.event_id)
  t.ok(listedIds.includes(x!.eventId) && listedIds.includes(y!.eventId), 'GET /admin/v1/deliveries?state=failed lists both')
  t.match(
    (listed.json() as { event_id: string }[]).find((d) => d.event_id === x!.eventId),
    { event_type: 'work_order.created', department: 'deadletter', state: 'failed', attempts: Number, last_status: 500 },
  )
  const deadAlerts = (await h.alerts()).filter((a) => a.kind === 'delivery_dead_lettered')
  t.ok(deadAlerts.some((a) => a.message.includes(x!.eventId)) && deadAlerts.some((a) => a.message.includes(y!.eventId)), 'an operator alert per dead letter')
  for (const id of [requestX, requestY]) {
    const request = await requestJson(id)
    t.equal(request.status, 'open', 'the 311 request stays open')
    t.equal(request.extended_attributes.detailed_status, 'submitted', 'and is not claimed to be with the department')
  }

  // Replay one.
  up = true
  const one = await app.inject({ method: 'POST', url: `/admin/v1/deliveries/${x!.eventId}/replay`, headers: h.admin })
  t.equal(one.statusCode, 200)
  t.same(one.json(), { replayed: [x!.eventId] })
  t.match((await h.outboxOf('deadletter'))[0], { eventId: x!.eventId, state: 'pending', attempts: 0 })
  const later = new FakeClock(clock.time + HOUR)
  t.equal(await h.dispatch({ now: later.now }), 1, 'only the replayed event is claimed')
  let rowsNow = await h.outboxOf('deadletter')
  t.match(rowsNow, [{ eventId: x!.eventId, state: 'delivered' }, { eventId: y!.eventId, state: 'failed' }])
  t.equal((await h.workOrdersOf(requestX))[0]!.state, 'sent')
  t.equal((await requestJson(requestX)).extended_attributes.detailed_status, 'sent_to_department')
  const again = await app.inject({ method: 'POST', url: `/admin/v1/deliveries/${x!.eventId}/replay`, headers: h.admin })
  t.equal(again.statusCode, 404, 'a delivered event is not replayable')

  // Replay all failed since T.
  const none = await app.inject({
    method: 'POST',
    url: '/admin/v1/deliveries/replay',
    headers: h.admin,
    payload: { failed_since: new Date(clock.time + HOUR).toISOString() },
  })
  t.same(none.json(), { replayed: [] }, 'nothing failed after T+1h')
  const all = await app.inject({ method: 'POST', url: '/admin/v1/deliveries/replay', headers: h.admin, payload: { failed_since: testStarted.toISOString() } })
  t.equal(all.statusCode, 200)
  t.same(all.json(), { replayed: [y!.eventId] })
  t.equal(await h.dispatch({ now: later.now }), 1)
  rowsNow = await h.outboxOf('deadletter')
  t.ok(rowsNow.every((r) => r.state === 'delivered'), 'both delivered after replay')
  const got = receiver.deliveries(dept.hookPath)
  t.equal(got.filter((d) => d.id === x!.eventId).length, attemptsAt.get(x!.eventId)!.length + 1, 'every failed attempt plus the replay')
  t.equal(got.filter((d) => d.id === y!.eventId).length, attemptsAt.get(y!.eventId)!.length + 1, 'every failed attempt plus the replay')
  await h.retire('deadletter')
})

t.test('with the jitter drawn low, the retry horizon still reaches 72 h', async (t) => {
  // Every delay drawn 20 % short sums to ~60.5 h; the attempts used up before 72 h earn one
  // more attempt at the horizon instead of a dead letter.
  const low = RETRY_DELAYS_MS.map((_, i) => retryDelayMs(i + 1, { random: () => 0 })!)
  const scheduled = low.reduce((a, b) => a + b, 0)
  t.ok(scheduled < 72 * HOUR, 'the jittered schedule alone would end early')
  const extra = retryDelayMs(MAX_ATTEMPTS, { elapsedMs: scheduled })
  t.ok(extra !== null && extra > 0, 'so a final attempt is scheduled')
  t.equal(retryDelayMs(MAX_ATTEMPTS, { elapsedMs: scheduled + (extra ?? 0) }), null, 'and after it the event is dead-lettered')
  const horizon = scheduled + (extra ?? 0)
  t.comment(`lowest-jitter horizon: ${(horizon / HOUR).toFixed(2)} h`)
  t.ok(horizon >= 72 * HOUR, `the last attempt is at least 72 h after the first (got ${(horizon / HOUR).toFixed(2)} h)`)
})

t.test('retryDelayMs and parseRetryAfter: jitter bounds, Retry-After clamp, throttling floor', async (t) => {
  for (const [i, scheduled] of RETRY_DELAYS_MS.entries()) {
    t.equal(retryDelayMs(i + 1, { random: () => 0 }), Math.round(scheduled * 0.8))
    t.equal(retryDelayMs(i + 1, { random: () => 0.5 }), scheduled)
    t.equal(retryDelayMs(i + 1, { random: () => 1 }), Math.round(scheduled * 1.2))
    t.equal(retryDelayMs(i + 1, { random: () => 0.5, retryAfterMs: 10 * scheduled }), 2 * scheduled, 'Retry-After clamped to 2× the schedule')
    t.equal(retryDelayMs(i + 1, { random: () => 0.5, retryAfterMs: 0 }), scheduled, 'Retry-After never shortens the schedule')
    t.equal(retryDelayMs(i + 1, { random: () => 0.5, retryAfterMs: 1.5 * scheduled }), 1.5 * scheduled, 'Retry-After inside the bounds is used')
    t.equal(retryDelayMs(i + 1, { random: () => 0.5, throttled: true }), Math.max(scheduled, MIN_THROTTLED_DELAY_MS), 'throttled: at least 60 s')
  }
  t.equal(MIN_THROTTLED_DELAY_MS, 60_000)
  t.equal(retryDelayMs(MAX_ATTEMPTS), null, 'no retry after the tenth attempt')
  t.equal(retryDelayMs(MAX_ATTEMPTS + 3), null)
  const now = new Date('2026-03-01T12:00:00Z')
  t.equal(parseRetryAfter('120', now), 120_000)
  t.equal(parseRetryAfter(['7', '9'], now), 7_000)
  t.equal(parseRetryAfter('Sun, 01 Mar 2026 12:00:30 GMT', now), 30_000)
  t.equal(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('soon', now), null)
  t.equal(parseRetryAfter(undefined, now), null)
})

t.test('Retry-After honoured within [scheduled, 2×scheduled]; 429 and timeouts never retry sooner than 60 s', async (t) => {
  const dept = await h.registerDepartment('throttle')
  await h.route('sidewalk-damage', 'throttle')

  /** Submits a request, answers its first attempt with `respond`, returns the computed delay. */
  async function firstAttemptDelay(respond: Handler, options: Partial<DepartmentDeliveryOptions> = {}) {
    receiver.handle(dept.hookPath, respond)
    await h.submit()
    const clock = wholeSecondClock()
    t.equal(await h.dispatch({ now: clock.now, ...options }), 1)
    const row = (await h.outboxOf('throttle')).at(-1)!
    t.equal(row.state, 'pending', 'still pending after a failed attempt')
    await cancelRow(row.id)
    return { delay: row.nextAttemptAt.getTime() - clock.time, row, clock }
  }
  const s1 = RETRY_DELAYS_MS[0]!
  const lo = s1 * (1 - JITTER)
  const hi = s1 * (1 + JITTER)

  let r = await firstAttemptDelay((_d, res) => res.writeHead(503, { 'retry-after': '3600' }).end())
  t.ok(r.delay >= 2 * lo && r.delay <= 2 * hi, `503 Retry-After 1 h → clamped to 2× the scheduled 5 s (${r.delay} ms)`)
  r = await firstAttemptDelay((_d, res) => res.writeHead(503, { 'retry-after': '7' }).end())
  t.equal(r.delay, 7_000, '503 Retry-After 7 s (inside [scheduled, 2×scheduled]) → exactly 7 s')
  r = await firstAttemptDelay((_d, res) => res.writeHead(503, { 'retry-after': '0' }).end())
  t.ok(r.delay >= lo && r.delay <= hi, `503 Retry-After 0 → not sooner than the schedule (${r.delay} ms)`)
  {
    let answeredWith = ''
    r = await firstAttemptDelay((d, res) => {
      answeredWith = new Date(d.timestamp * 1000 + 7_000).toUTCString()
      res.writeHead(503, { 'retry-after': answeredWith }).end()
    })
    t.equal(r.delay, 7_000, `503 Retry-After as an HTTP date (${answeredWith}) → 7 s`)
  }
  r = await firstAttemptDelay((_d, res) => res.writeHead(429).end())
  t.equal(r.delay, 60_000, '429 without Retry-After → 60 s, not the scheduled 5 s')
  t.equal(r.row.lastStatus, 429)
  r = await firstAttemptDelay((_d, res) => res.writeHead(429, { 'retry-after': '2' }).end())
  t.equal(r.delay, 60_000, '429 Retry-After 2 s → still 60 s')
  r = await firstAttemptDelay(() => new Promise((resolve) => setTimeout(resolve, 1_500)), { timeoutMs: 300 })
  t.equal(r.delay, 60_000, 'a timeout → 60 s')
  t.match(r.row, { lastStatus: null, lastError: /TIMEOUT/ })

  // A later attempt: the 30-minute slot with Retry-After 45 min, then the 2-hour slot with Retry-After 1 day.
  let attempt = 0
  receiver.handle(dept.hookPath, (_d, res) => {
    attempt += 1
    if (attempt <= 2) res.writeHead(500).end()
    else if (attempt === 3) res.writeHead(503, { 'retry-after': String(45 * 60) }).end()
    else res.writeHead(503, { 'retry-after': String(24 * 3600) }).end()
  })
  await h.submit()
  const clock = wholeSecondClock()
  const delays: number[] = []
  for (let i = 0; i < 4; i++) {
    t.equal(await h.dispatch({ now: clock.now }), 1)
    const row = (await h.outboxOf('throttle')).at(-1)!
    delays.push(row.nextAttemptAt.getTime() - clock.time)
    clock.set(row.nextAttemptAt)
  }
  t.equal(delays[2], 45 * MINUTE, 'attempt 3 (30 min ±20 %): Retry-After 45 min is inside [scheduled, 2×scheduled] → 45 min')
  t.ok(delays[3]! >= 2 * 2 * HOUR * (1 - JITTER) && delays[3]! <= 2 * 2 * HOUR * (1 + JITTER), `attempt 4 (2 h): Retry-After 1 day → clamped to 2× (${(delays[3]! / HOUR).toFixed(2)} h)`)
  await cancelRow((await h.outboxOf('throttle')).at(-1)!.id)
  await h.retire('throttle')
})

t.test('only 2xx is success: 3xx, 4xx, 5xx and resets retry; redirects are never followed', async (t) => {
  const dept = await h.registerDepartment('statuses')
  await h.route('sidewalk-damage', 'statuses')
  receiver.handle('/elsewhere', () => {})
  const s1 = RETRY_DELAYS_MS[0]!
  for (const status of [200, 201, 202, 204, 299]) {
    receiver.handle(dept.hookPath, (_d, res) => res.writeHead(status).end())
    await h.submit()
    t.equal(await h.dispatch({ now: wholeSecondClock().now }), 1)
    t.match((await h.outboxOf('statuses')).at(-1), { state: 'delivered', lastStatus: status }, `${status} is success`)
  }
  for (const status of [301, 302, 303, 307, 308, 400, 401, 403, 404, 409, 422, 500, 502, 504]) {
    receiver.handle(dept.hookPath, (_d, res) => res.writeHead(status, { location: receiver.url('/elsewhere') }).end())
    await h.submit()
    const clock = wholeSecondClock()
    t.equal(await h.dispatch({ now: clock.now }), 1)
    const row = (await h.outboxOf('statuses')).at(-1)!
    const delay = row.nextAttemptAt.getTime() - clock.time
    t.match(row, { state: 'pending', attempts: 1, lastStatus: status, lastError: `HTTP ${status}` }, `${status} is a failure`)
    t.ok(delay >= s1 * (1 - JITTER) && delay <= s1 * (1 + JITTER), `${status}: retried on the schedule`)
    await cancelRow(row.id)
  }
  t.equal(receiver.hits('/elsewhere'), 0, 'no redirect was followed')

  receiver.handle(dept.hookPath, (_d, res) => void res.destroy())
  await h.submit()
  t.equal(await h.dispatch({ now: wholeSecondClock().now }), 1)
  const reset = (await h.outboxOf('statuses')).at(-1)!
  t.match(reset, { state: 'pending', attempts: 1, lastStatus: null, lastError: /\S/ }, 'a connection reset is a failure')
  t.comment(`reset recorded as: ${reset.lastError}`)
  await cancelRow(reset.id)
  await h.retire('statuses')
})

t.test('410 Gone disables the endpoint at once, alerts an operator, and keeps the event pending', async (t) => {
  const dept = await h.registerDepartment('gone')
  await h.route('sidewalk-damage', 'gone')
  let gone = true
  receiver.handle(dept.hookPath, (_d, res) => {
    if (gone) res.writeHead(410).end('gone')
  })
  await h.submit()
  await h.submit()
  const clock = new FakeClock()
  t.equal(await h.dispatch({ now: clock.now }), 2)
  const department = await h.departmentRow('gone')
  t.equal(department.enabled, false, 'disabled immediately')
  t.match(department.disabledReason, /410/)
  const rows = await h.outboxOf('gone')
  for (const row of rows) t.match(row, { state: 'pending', attempts: 0, lastStatus: 410, lockedBy: null }, 'pending, the attempt not counted')
  const alerts = (await h.alerts()).filter((a) => a.kind === 'endpoint_disabled' && a.message.includes('gone'))
  t.equal(alerts.length, 1, 'one operator alert')
  t.match(alerts[0]!.message, /410/)
  const listed = (await app.inject({ url: '/admin/v1/departments', headers: h.admin })).json() as { code: string }[]
  t.match(listed.find((d) => d.code === 'gone'), { enabled: false, disabled_reason: /410/ })

  clock.advance(7 * 24 * HOUR)
  t.equal(await h.dispatch({ now: clock.now }), 0, 'a disabled endpoint gets nothing')
  t.equal(receiver.hits(dept.hookPath), 2)

  // Fixed and re-enabled: the waiting events go out.
  gone = false
  const patched = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/gone', headers: h.admin, payload: { enabled: true } })
  t.match(patched.json(), { enabled: true, disabled_reason: null, failing_since: null })
  t.equal(await h.dispatch({ now: clock.now }), 2)
  t.ok((await h.outboxOf('gone')).every((r) => r.state === 'delivered' && r.attempts === 1))
  await h.retire('gone')
})

t.test('continuous failure for WEBHOOK_DISABLE_AFTER_DAYS disables the endpoint with an alert; one success resets the clock', async (t) => {
  // Never succeeds: disabled at the first failure ≥ 1 day after the run began.
  const a = await h.registerDepartment('flaky-a')
  await h.route('sidewalk-damage', 'flaky-a')
  receiver.handle(a.hookPath, (_d, res) => res.writeHead(500).end())
  await h.submit()
  let clock = new FakeClock()
  const runStart = clock.time
  let disabledAt: number | null = null
  for (let step = 0; step < 20 && disabledAt === null; step++) {
    t.equal(await h.dispatch({ now: clock.now, disableAfterDays: 1 }), 1)
    const department = await h.departmentRow('flaky-a')
    t.equal(department.failingSince?.getTime(), runStart, 'failing_since is the start of the run')
    if (!department.enabled) disabledAt = clock.time
    else t.ok(clock.time - runStart < 24 * HOUR, 'still enabled while failing for less than a day')
    const next = await nextDue('flaky-a')
    if (next) clock.set(next)
  }
  t.ok(disabledAt !== null && disabledAt - runStart >= 24 * HOUR, `disabled after ${((disabledAt! - runStart) / HOUR).toFixed(1)} h of continuous failure`)
  t.match((await h.departmentRow('flaky-a')).disabledReason, /continuously for 1 days/)
  t.ok((await h.alerts()).some((al) => al.kind === 'endpoint_disabled' && al.message.includes('flaky-a')), 'operator alert')
  t.match((await h.outboxOf('flaky-a'))[0], { state: 'pending' }, 'the event waits, not dropped')
  await h.retire('flaky-a')

  // The same failing event, but another event succeeds in between: the run restarts.
  const b = await h.registerDepartment('flaky-b')
  await h.route('sidewalk-damage', 'flaky-b')
  const firstRequest = await h.submit()
  const [stuck] = await h.outboxOf('flaky-b')
  receiver.handle(b.hookPath, (d, res) => {
    if (d.id === stuck!.eventId) res.writeHead(500).end()
  })
  clock = new FakeClock()
  const bStart = clock.time
  for (let i = 0; i < 7; i++) {
    await h.dispatch({ now: clock.now, disableAfterDays: 1 })
    if (i < 6) clock.set((await nextDue('flaky-b'))!)
  }
  t.equal((await h.outboxOf('flaky-b'))[0]!.attempts, 7)
  t.equal((await h.departmentRow('flaky-b')).failingSince?.getTime(), bStart, 'failing since the first attempt')
  await h.submit()
  clock.advance(MINUTE)
  t.equal(await h.dispatch({ now: clock.now, disableAfterDays: 1 }), 1, 'the new event goes out')
  t.equal((await h.departmentRow('flaky-b')).failingSince, null, 'one success resets failing_since')
  clock.set((await nextDue('flaky-b'))!)
  t.ok(clock.time - bStart >= 24 * HOUR, 'the stuck event has now been failing for more than a day')
  await h.dispatch({ now: clock.now, disableAfterDays: 1 })
  const department = await h.departmentRow('flaky-b')
  t.equal(department.enabled, true, 'not disabled: the failure run restarted at the success')
  t.equal(department.failingSince?.getTime(), clock.time, 'a new run starts at this failure')
  t.equal((await h.workOrdersOf(firstRequest))[0]!.state, 'pending', 'the undelivered work order is not marked sent')
  await h.retire('flaky-b')
})

t.test('per-work-order ordering: events arrive in commit order even when the first attempt of the first fails', async (t) => {
  const dept = await h.registerDepartment('ordered')
  await h.route('sidewalk-damage', 'ordered')
  let failFirst = true
  receiver.handle(dept.hookPath, (_d, res) => {
    if (failFirst) {
      failFirst = false
      res.writeHead(500).end()
    }
  })
  const first = await h.submit()
  const clock = new FakeClock()
  t.equal(await h.dispatch({ now: clock.now }), 1, 'the created event is tried and fails')

  const closed = await app.inject({
    method: 'POST',
    url: `/admin/v1/requests/${first}/close`,
    headers: h.admin,
    payload: { reason: 'reported twice by phone', force: true },
  })
  t.equal(closed.statusCode, 200)
  const [workOrder] = await h.workOrdersOf(first)
  t.same(closed.json().cancelled_work_orders, [`WO-${workOrder!.id}`])
  const second = await h.submit()
  const rows = await h.outboxOf('ordered')
  t.same(
    rows.map((r) => r.eventType),
    ['work_order.created', 'work_order.cancelled', 'service_request.closed', 'work_order.created'],
  )

  // The later events of the first work order wait behind its stuck first event; another work order does not.
  clock.advance(SECOND)
  t.equal(await h.dispatch({ now: clock.now, batchSize: 100 }), 1, 'only the other work order’s event is claimed')
  t.same(typesOf(receiver.deliveries(dept.hookPath)), ['work_order.created', 'work_order.created'])
  t.equal(receiver.deliveries(dept.hookPath)[1]!.id, rows[3]!.eventId)

  clock.set(rows[0]!.nextAttemptAt)
  const claims: number[] = []
  for (let i = 0; i < 4; i++) claims.push(await h.dispatch({ now: clock.now, batchSize: 100 }))
  t.same(claims, [1, 1, 1, 0], 'one event of the work order per round, in order')
  const forFirst = receiver.deliveries(dept.hookPath).filter((d) => JSON.parse(d.body).data.work_order.id === `WO-${workOrder!.id}`)
  t.same(typesOf(forFirst), ['work_order.created', 'work_order.created', 'work_order.cancelled', 'service_request.closed'], 'commit order')
  t.same(
    forFirst.slice(1).map((d) => d.id),
    rows.slice(0, 3).map((r) => r.eventId),
    'by outbox id',
  )
  t.match(JSON.parse(forFirst[2]!.body).data, { reason: 'reported twice by phone', work_order: { state: 'cancelled' } })
  t.ok((await h.outboxOf('ordered')).every((r) => r.state === 'delivered'))
  t.equal((await requestJson(second)).extended_attributes.detailed_status, 'sent_to_department')
  await h.retire('ordered')
})

t.test('an event stamped within the current millisecond is due (JavaScript clocks stop at milliseconds)', async (t) => {
  await h.registerDepartment('same-ms')
  await h.route('sidewalk-damage', 'same-ms')
  await h.submit()
  const [row] = await h.outboxOf('same-ms')
  // As when the commit's own NOTIFY wakes a dispatcher within the millisecond of the insert.
  await db.execute(sql`update outbox set next_attempt_at = '2026-05-01T12:00:00.123456Z' where id = ${row!.id}`)
  t.equal((await claimDue(db, 'same-ms-worker', new Date('2026-05-01T12:00:00.122Z'), 10, 60_000)).length, 0, 'a millisecond early: not due')
  const claimed = await claimDue(db, 'same-ms-worker', new Date('2026-05-01T12:00:00.123Z'), 10, 60_000)
  t.same(claimed.map((c) => c.id), [row!.id], 'within its millisecond: claimed')
  await h.retire('same-ms')
})

t.test('crash recovery: rows claimed by a worker that died are re-attempted after the lock timeout, not before', async (t) => {
  const dept = await h.registerDepartment('crash')
  await h.route('sidewalk-damage', 'crash')
  await h.submit()
  const clock = new FakeClock()
  const claimed = await claimDue(db, 'worker-that-died', clock.now(), 10, 60_000)
  t.equal(claimed.length, 1, 'the doomed worker claimed the row')
  t.match((await h.outboxOf('crash'))[0], { lockedBy: 'worker-that-died', attempts: 1, state: 'pending' })

  for (const after of [SECOND, 30 * SECOND, 59 * SECOND]) {
    t.equal(await h.dispatch({ now: () => new Date(clock.time + after), lockTimeoutMs: 60_000, workerId: 'survivor' }), 0, `nothing claimable ${after / 1000} s later`)
  }
  t.equal(receiver.hits(dept.hookPath), 0, 'not sent while the lock is fresh')
  t.equal(await h.dispatch({ now: () => new Date(clock.time + 61 * SECOND), lockTimeoutMs: 60_000, workerId: 'survivor' }), 1)
  t.equal(receiver.hits(dept.hookPath), 1, 'sent once the lock expired')
  t.match((await h.outboxOf('crash'))[0], { state: 'delivered', attempts: 2, lockedBy: null })

  // The default lock timeout: 6 × the request timeout.
  await h.submit()
  const again = new FakeClock()
  t.equal((await claimDue(db, 'worker-that-died', again.now(), 10, 60_000)).length, 1)
  t.equal(await h.dispatch({ now: () => new Date(again.time + 29 * SECOND), timeoutMs: 5_000, workerId: 'survivor' }), 0, 'not after 29 s (timeout 5 s)')
  t.equal(await h.dispatch({ now: () => new Date(again.time + 31 * SECOND), timeoutMs: 5_000, workerId: 'survivor' }), 1, 'after 31 s')
  t.equal(receiver.hits(dept.hookPath), 2)
  await h.retire('crash')
})

t.test('a worker whose lock was taken over cannot dead-letter an event the other worker delivered', async (t) => {
  // A slow (not dead) worker outlives its lock; a second worker takes the row over and
  // delivers it. The success path only writes rows still locked by the writer
  // (`o.locked_by = workerId`), but handleFailure/handleGone update by id alone, so the
  // slow worker's late failure lands on the delivered row — on the last attempt it flips it
  // to `failed`, raises a dead-letter alert, and makes it replayable (a double send).
  const dept = await h.registerDepartment('takeover')
  await h.route('sidewalk-damage', 'takeover')
  let releaseSlow: () => void = () => {}
  const slowHeld = new Promise<void>((resolve) => (releaseSlow = resolve))
  let phase: 'failing' | 'slow' | 'ok' = 'failing'
  receiver.handle(dept.hookPath, async (_d, res) => {
    if (phase === 'failing') return void res.writeHead(500).end()
    if (phase === 'slow') {
      phase = 'ok'
      await slowHeld
      return void res.writeHead(500).end()
    }
  })
  t.teardown(() => releaseSlow())
  await h.submit()
  const clock = new FakeClock()
  for (let i = 0; i < MAX_ATTEMPTS - 1; i++) {
    t.equal(await h.dispatch({ now: clock.now }), 1)
    clock.set((await nextDue('takeover'))!)
  }
  t.equal((await h.outboxOf('takeover'))[0]!.attempts, MAX_ATTEMPTS - 1, 'nine failed attempts; the next is the last')

  phase = 'slow'
  const slow = h.dispatch({ now: clock.now, workerId: 'slow-worker', lockTimeoutMs: 60_000, timeoutMs: 30_000 })
  for (let i = 0; i < 200 && receiver.deliveries(dept.hookPath).length < MAX_ATTEMPTS; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(receiver.deliveries(dept.hookPath).length, MAX_ATTEMPTS, 'the slow worker is waiting on the receiver')
  const takenOver = await h.dispatch({ now: () => new Date(clock.time + 61 * SECOND), workerId: 'fast-worker', lockTimeoutMs: 60_000 })
  t.equal(takenOver, 1, 'after the lock timeout another worker takes the row over')
  t.match((await h.outboxOf('takeover'))[0], { state: 'delivered', lastStatus: 200 }, 'and delivers it')

  releaseSlow()
  await slow
  const [row] = await h.outboxOf('takeover')
  t.equal(row!.state, 'delivered', 'the late failure of the worker that lost its lock does not undo the delivery')
  t.equal(row!.failedAt, null, 'not dead-lettered')
  t.notOk((await h.alerts()).some((a) => a.kind === 'delivery_dead_lettered' && a.message.includes(row!.eventId)), 'no dead-letter alert for a delivered event')
  t.equal((await h.departmentRow('takeover')).failingSince, null, 'the department is not marked failing after a success')
  const replay = await app.inject({ method: 'POST', url: `/admin/v1/deliveries/${row!.eventId}/replay`, headers: h.admin })
  t.equal(replay.statusCode, 404, 'a delivered event cannot be replayed (sent again)')
  await db.update(outbox).set({ state: 'cancelled' }).where(and(eq(outbox.departmentId, dept.id), inArray(outbox.state, ['pending', 'failed'])))
  await h.retire('takeover')
})

t.test('concurrent workers never double-send', async (t) => {
  const dept = await h.registerDepartment('bulk')
  await h.route('sidewalk-damage', 'bulk')
  const received = new Map<string, number>()
  receiver.handle(dept.hookPath, async (d) => {
    received.set(d.id, (received.get(d.id) ?? 0) + 1)
    await new Promise((resolve) => setTimeout(resolve, 2))
  })
  const jurisdiction = await resolveJurisdiction(db, undefined)
  const [service] = await loadCatalogServices(db, jurisdiction.id, { serviceCodes: ['sidewalk-damage'] })
  const submission = validateSubmission({ lat: '41.88', long: '-87.63' }, service!, jurisdiction.timeZone)
  const EVENTS = 500
  for (let batch = 0; batch < EVENTS / 50; batch++) {
    await db.transaction(async (tx) => {
      for (let i = 0; i < 50; i++) await submitServiceRequest(tx, { jurisdiction, service: service!, submission, actor: SERVER_ACTOR, channel: 'internal' })
    })
  }
  const rows = await h.outboxOf('bulk')
  t.equal(rows.length, EVENTS)

  const perWorker: number[] = []
  if (h.databaseUrl) {
    // PostgreSQL: separate processes, each with its own connection pool.
    const WORKERS = 3
    const children = Array.from({ length: WORKERS }, (_, i) =>
      spawn(process.execPath, ['--import', 'tsx', 'test/webhooks/dispatch.worker.ts'], {
        cwd: ROOT,
        env: childEnv({ DATABASE_URL: h.databaseUrl, SECRETS_KEY: TEST_SECRETS_KEY, WORKER_ID: `child-${i}`, BATCH_SIZE: '10' }),
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    )
    t.teardown(() => {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
    })
    const outputs = children.map((child) => {
      let stderr = ''
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
      const lines: string[] = []
      const ready = new Promise<void>((resolve) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          lines.push(line)
          if (line === 'ready') resolve()
        })
      })
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
      return { ready, exited, lines, stderr: () => stderr }
    })
    await Promise.race([Promise.all(outputs.map((o) => o.ready)), new Promise((_, reject) => setTimeout(() => reject(new Error('workers not ready')), 30_000))])
    for (const child of children) child.stdin!.write('go\n')
    const codes = await Promise.all(outputs.map((o) => o.exited))
    for (const [i, o] of outputs.entries()) {
      t.equal(codes[i], 0, `worker ${i} exited cleanly${o.stderr() ? `: ${o.stderr().slice(0, 500)}` : ''}`)
      const summary = JSON.parse(o.lines.find((l) => l.startsWith('{')) ?? '{"claimed":0}') as { claimed: number }
      perWorker.push(summary.claimed)
    }
  } else {
    // Embedded: one process, several dispatchers at once.
    const WORKERS = 4
    const loop = async (i: number) => {
      let claimed = 0
      for (;;) {
        const n = await h.dispatch({ workerId: `loop-${i}`, batchSize: 10, now: () => new Date() })
        if (n === 0) return claimed
        claimed += n
      }
    }
    perWorker.push(...(await Promise.all(Array.from({ length: WORKERS }, (_, i) => loop(i)))))
  }
  t.comment(`claims per worker: ${perWorker.join(', ')}`)
  t.ok(perWorker.length >= 3 && perWorker.filter((n) => n > 0).length >= 2, 'more than one worker did work')
  t.equal(perWorker.reduce((a, b) => a + b, 0), EVENTS, 'claims add up to the events: no row claimed twice')
  t.equal(received.size, EVENTS, 'every webhook-id received')
  const twice = [...received.entries()].filter(([, n]) => n !== 1)
  t.same(twice, [], 'each exactly once')
  t.same(new Set(received.keys()), new Set(rows.map((r) => r.eventId)))
  const states = await db
    .select({ state: outbox.state, n: sql<number>`count(*)::int` })
    .from(outbox)
    .where(and(eq(outbox.departmentId, dept.id), inArray(outbox.state, ['pending', 'delivered', 'failed'])))
    .groupBy(outbox.state)
    .orderBy(asc(outbox.state))
  t.same(states, [{ state: 'delivered', n: EVENTS }])
  const workOrderStates = await queryRows<{ state: string; n: number }>(
    db,
    sql`select state, count(*)::int as n from work_orders where department_id = ${dept.id} group by state`,
  )
  t.same(workOrderStates, [{ state: 'sent', n: EVENTS }], 'every work order marked sent')
  await h.retire('bulk')
})
