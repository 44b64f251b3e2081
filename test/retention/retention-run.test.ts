/**
 * The retention run (docs/retention.md), through the CLI and the domain call the worker makes:
 * only requests closed longer ago than the jurisdiction's policy are anonymised; delivered
 * outbox rows, inbound events, idempotency records and rate-limit counters past their periods
 * are deleted, undelivered outbox rows never; a dry run counts and changes nothing; two runs at
 * once do each request once. Also: a request withdrawn from public view is in the `removed`
 * feed, and anonymising one adds nothing there.
 */
import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { runRetention } from '../../src/domain/retention/retention.js'
import { startWorkers } from '../../src/workers/index.js'
import { inProcessCli } from '../helpers/cli.js'
import { eventually } from '../helpers/eventually.js'
import { buildDepartmentHarness, startReceiver } from '../departments/fixtures/harness.js'

const receiver = await startReceiver(t)
const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'retention-run.test.example', name: 'Retention Run City', time_zone: 'America/Chicago', retention: { anonymise_after_days: 30 } },
  services: [
    { service_code: 'pothole', service_name: 'Pothole', group: 'Streets' },
    { service_code: 'graffiti', service_name: 'Graffiti', group: 'Parks' },
  ],
})
const { app } = h
const streets = await h.registerDepartment({ code: 'streets', name: 'Streets', webhook_url: receiver.url })
await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: h.asAdmin, payload: { receives_contact: true } })
// No URL: its deliveries stay pending, whatever their age.
await h.registerDepartment({ code: 'parks', name: 'Parks' })
await h.setRoutes('pothole', [{ department: 'streets' }])
await h.setRoutes('graffiti', [{ department: 'parks' }])
const cli = inProcessCli(h.database, app.config)
const PERIODS = app.config.retention

const rows = <T>(query: ReturnType<typeof sql>) => queryRows<T>(app.db, query)
const emailOf = async (id: string) =>
  (await rows<{ email: string | null }>(sql`select rr.email from request_reporters rr join service_requests sr on sr.id = rr.request_id where sr.public_id = ${id}`))[0]?.email ?? null

async function reportAndClose(service: string, closedDaysAgo: number | null) {
  const email = `r.${randomBytes(5).toString('hex')}@example.org`
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': `k-${randomBytes(6).toString('hex')}` },
    payload: new URLSearchParams({ api_key: h.citizen.key, service_code: service, lat: '41.88', long: '-87.63', email, phone: '555-0100' }).toString(),
  })
  const id = (res.json() as { service_request_id: string }[])[0]!.service_request_id
  await h.deliver()
  if (closedDaysAgo !== null) {
    await h.closeRequest(id, { reason: 'Done', force: true })
    await app.db.execute(sql`update service_requests set closed_at = now() - make_interval(days => ${closedDaysAgo}) where public_id = ${id}`)
  }
  return { id, email }
}

/** Everything the run could change, as counts and values. */
async function state() {
  const [counts] = await rows<Record<string, number>>(sql`select
      (select count(*)::int from outbox) as outbox,
      (select count(*)::int from outbox where state = 'pending') as pending_outbox,
      (select count(*)::int from inbound_events) as inbound,
      (select count(*)::int from idempotency_keys) as idempotency,
      (select count(*)::int from rate_limit_counters) as rate_limits,
      (select count(*)::int from request_reporters where anonymised_at is not null) as anonymised,
      (select count(*)::int from audit_events) as audit,
      (select md5(string_agg(payload::text, ',' order by id)) from outbox) as payloads`)
  return counts!
}

const old = await reportAndClose('pothole', 40)
const recent = await reportAndClose('pothole', 10)
const open = await reportAndClose('pothole', null)
const undelivered = await reportAndClose('graffiti', 40)
{
  const [wo] = await h.workOrders(old.id)
  await h.statusChanged(streets, { work_order_id: wo!.id, status: 'accepted' })
}
// Age the copies: everything past its period but one fresh row of each kind.
await app.db.execute(sql`update outbox set delivered_at = now() - make_interval(days => ${PERIODS.deliveredOutboxDays + 1}),
                                          created_at = now() - make_interval(days => ${PERIODS.deliveredOutboxDays + 1})
                         where id <> (select max(id) from outbox)`)
await app.db.execute(sql`update inbound_events set received_at = now() - make_interval(days => ${PERIODS.inboundEventsDays + 1})`)
await app.db.execute(sql`update idempotency_keys set created_at = now() - make_interval(hours => ${PERIODS.idempotencyHours + 1})
                         where not response_body @> jsonb_build_array(jsonb_build_object('service_request_id', ${open.id}::text))`)
await app.db.execute(sql`insert into rate_limit_counters (key, window_start, hits) values ('ip:192.0.2.1', now() - interval '1 day', 3)`)

t.test('a dry run prints what it would do and changes nothing', async (t) => {
  const before = await state()
  const preview = await app.inject({ url: '/admin/v1/retention', headers: h.asAdmin })
  t.equal(preview.statusCode, 200, preview.body)
  t.match(preview.json(), {
    jurisdiction_id: 'retention-run.test.example',
    anonymise_after_days: 30,
    periods: { delivered_outbox_days: PERIODS.deliveredOutboxDays, idempotency_hours: PERIODS.idempotencyHours },
    due: { anonymised_requests: 2, inbound_events: 1 },
  }, 'the admin API shows the policy and what a run would do')
  const res = await cli('retention', 'run', '--dry-run')
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /^anonymised_requests: 2 would be done$/m, 'the two requests closed 40 days ago')
  t.match(res.stdout, /^delivered_outbox: [1-9]\d* would be done$/m)
  t.match(res.stdout, /^inbound_events: 1 would be done$/m)
  t.match(res.stdout, /^rate_limit_counters: [1-9]\d* would be done$/m)
  t.match(res.stdout, /dry run, nothing changed/)
  t.same(await state(), before, 'nothing changed')
})

t.test('a run anonymises only requests closed more than N days ago, and prunes only what is past its period', async (t) => {
  const pendingBefore = await rows<{ id: number; payload: unknown }>(sql`select id, payload from outbox where state = 'pending' order by id`)
  t.ok(pendingBefore.length > 0, 'the parks deliveries are pending')
  const res = await cli('retention', 'run')
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /^anonymised_requests: 2 done$/m)
  t.match(res.stdout, /retention run finished/)
  t.equal(await emailOf(old.id), null, 'closed 40 days ago: anonymised')
  t.equal(await emailOf(undelivered.id), null, 'the other one closed 40 days ago too')
  t.equal(await emailOf(recent.id), recent.email, 'closed 10 days ago: kept')
  t.equal(await emailOf(open.id), open.email, 'open: kept')

  const pendingAfter = await rows<{ id: number; payload: Record<string, unknown> }>(sql`select id, payload from outbox where state = 'pending' order by id`)
  t.same(pendingAfter.map((r) => r.id), pendingBefore.map((r) => r.id), 'undelivered outbox rows are never pruned, however old')
  const [left] = await rows<{ delivered: number; inbound: number; idempotency: number; limits: number }>(sql`select
      (select count(*)::int from outbox where state in ('delivered', 'cancelled') and created_at < now() - interval '1 day') as delivered,
      (select count(*)::int from inbound_events) as inbound,
      (select count(*)::int from idempotency_keys) as idempotency,
      (select count(*)::int from rate_limit_counters where window_start < now() - interval '2 hours') as limits`)
  t.same(left, { delivered: 0, inbound: 0, idempotency: 1, limits: 0 }, 'the old copies are gone, the fresh idempotency record stays')

  const audit = await rows<{ action: string; entity_id: string; actor_kind: string }>(
    sql`select action, entity_id, actor_kind from audit_events where action in ('service_request.anonymised', 'retention.pruned') order by id`,
  )
  t.same(
    audit.filter((a) => a.action === 'service_request.anonymised').map((a) => a.entity_id).sort(),
    [old.id, undelivered.id].sort(),
    'an audit entry per anonymised request',
  )
  t.ok(audit.every((a) => a.actor_kind === 'cli'), 'recorded as the CLI')
  t.ok(audit.some((a) => a.action === 'retention.pruned'), 'and one for the pruning')
  const prunedKinds = await rows<{ entity_id: string; deleted: number }>(
    sql`select entity_id, sum((changes -> entity_id ->> 'before')::int)::int as deleted from audit_events where action = 'retention.pruned' group by entity_id order by entity_id`,
  )
  t.ok(prunedKinds.length > 0 && prunedKinds.every((p) => p.deleted > 0), 'each pruning entry names its kind and how many rows, in the batch that deleted them')

  // A stopping instance ends its run between two batches: the rest waits for the next run.
  const waiting = [await reportAndClose('pothole', 45), await reportAndClose('pothole', 45)]
  // Asked before the first step (no), then after each batch: stop after the first.
  let asked = 0
  const stopped = await runRetention(app.db, { periods: PERIODS, batchSize: 1, shouldStop: () => asked++ >= 1 })
  t.equal(stopped.anonymised_requests, 1, 'one batch, then it stops')
  t.same(
    (await Promise.all(waiting.map((r) => emailOf(r.id)))).filter((email) => email !== null).length,
    1,
    'the other request waits for the next run',
  )

  // Progress lines come with full batches: a large run says how far it is.
  const fresh = [await reportAndClose('pothole', 45), await reportAndClose('pothole', 45), await reportAndClose('pothole', 45)]
  const progress: string[] = []
  const summary = await runRetention(app.db, { periods: PERIODS, batchSize: 2, progress: (step, done) => progress.push(`${step} ${done}`) })
  t.equal(summary.anonymised_requests, 4, 'the three, and the one the stopped run left')
  t.same(progress.filter((p) => p.startsWith('anonymised_requests')), ['anonymised_requests 2', 'anonymised_requests 4'], 'a line after each full batch')
  for (const r of fresh) t.equal(await emailOf(r.id), null)

  const again = await cli('retention', 'run')
  t.match(again.stdout, /^anonymised_requests: 0 done$/m, 'a second run has nothing to do')
})

t.test('the worker\'s call with a later clock takes the request closed 10 days ago; two runs at once do each request once', async (t) => {
  const extra = [await reportAndClose('pothole', 35), await reportAndClose('pothole', 35), await reportAndClose('pothole', 35)]
  const auditBefore = (await rows<{ n: number }>(sql`select count(*)::int as n from audit_events where action = 'service_request.anonymised'`))[0]!.n
  const [a, b] = await Promise.all([
    runRetention(app.db, { periods: PERIODS, batchSize: 1 }),
    runRetention(app.db, { periods: PERIODS, batchSize: 1 }),
  ])
  t.equal(a!.anonymised_requests + b!.anonymised_requests, 3, 'three requests, between the two runs')
  for (const r of extra) t.equal(await emailOf(r.id), null)
  const auditAfter = (await rows<{ n: number }>(sql`select count(*)::int as n from audit_events where action = 'service_request.anonymised'`))[0]!.n
  t.equal(Number(auditAfter) - Number(auditBefore), 3, 'one entry each')

  const later = await runRetention(app.db, { periods: PERIODS, now: new Date(Date.now() + 25 * 86_400_000) })
  t.equal(later.anonymised_requests, 1, 'with the clock 25 days on, the request closed 10 days ago is due')
  t.equal(await emailOf(recent.id), null)
  t.equal(await emailOf(open.id), open.email, 'an open request never is')
  const [entry] = await rows<{ actor_kind: string; actor_name: string; changes: Record<string, { after: unknown }> }>(
    sql`select actor_kind, actor_name, changes from audit_events where action = 'service_request.anonymised' and entity_id = ${recent.id}`,
  )
  t.match(entry, { actor_kind: 'system', actor_name: 'retention', changes: { basis: { after: 'policy: 30 days after closing' } } })
})

t.test('a request withdrawn from public view is in the removed feed; anonymising one adds nothing there', async (t) => {
  const removedCount = async () => (await rows<{ n: number }>(sql`select count(*)::int as n from open_data_removals`))[0]!.n
  const before = await removedCount()
  await app.inject({ method: 'POST', url: `/admin/v1/requests/${open.id}/anonymise`, headers: h.asAdmin })
  t.equal(await removedCount(), before, 'anonymised, still public: not removed')
  const res = await app.inject({ method: 'POST', url: `/admin/v1/requests/${open.id}/public-view`, headers: h.asAdmin, payload: { public: false, reason: 'names a neighbour' } })
  t.equal(res.statusCode, 200, res.body)
  const feed = await app.inject('/open-data/v1/removed.json')
  t.equal(feed.statusCode, 200)
  const removed = JSON.parse(feed.body) as { service_request_id: string; reason: string }[]
  t.match(removed, [{ service_request_id: open.id, reason: 'made_private' }], 'listed in the removed feed')
})

t.test('the catalog\'s retention setting: set, changed, refused when out of range', async (t) => {
  const catalog = (days: unknown) => ({
    jurisdiction: { id: 'retention-run.test.example', name: 'Retention Run City', time_zone: 'America/Chicago', retention: { anonymise_after_days: days } },
    services: [],
  })
  const put = (days: unknown) => app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: h.asAdmin, payload: catalog(days) })
  t.equal((await put(0)).statusCode, 400, '0 days is refused')
  t.equal((await put('ten')).statusCode, 400)
  t.equal((await put(90)).statusCode, 200)
  const [row] = await rows<{ anonymise_after_days: number | null }>(sql`select anonymise_after_days from jurisdictions where id = 'retention-run.test.example'`)
  t.equal(row!.anonymise_after_days, 90)
  const [entry] = await rows<{ changes: Record<string, unknown> }>(sql`select changes from audit_events where action = 'jurisdiction.updated' order by id desc limit 1`)
  t.same(entry!.changes.anonymise_after_days, { before: 30, after: 90 }, 'audited')
  t.equal((await put(null)).statusCode, 200, 'null: kept until erased')
})

t.test('the server\'s retention worker runs the pass when it starts', async (t) => {
  await app.inject({
    method: 'PUT',
    url: '/admin/v1/catalog',
    headers: h.asAdmin,
    payload: { jurisdiction: { id: 'retention-run.test.example', name: 'Retention Run City', time_zone: 'America/Chicago', retention: { anonymise_after_days: 30 } }, services: [] },
  })
  const due = await reportAndClose('pothole', 31)
  t.ok(await emailOf(due.id), 'not anonymised yet')
  const workers = await startWorkers(app, h.database)
  t.teardown(() => Promise.all(workers.map((w) => w.stop())))
  await eventually('the worker to anonymise the request', async () => (await emailOf(due.id)) === null)
  const [entry] = await rows<{ actor_name: string }>(sql`select actor_name from audit_events where action = 'service_request.anonymised' and entity_id = ${due.id}`)
  t.equal(entry!.actor_name, 'retention', 'recorded as the retention worker')
})
