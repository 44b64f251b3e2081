/**
 * GET /metrics (issue 17): off by default, then only with METRICS_TOKEN; scraped over real HTTP
 * after real requests and parsed as Prometheus parses it. Requests by route pattern and status
 * with their latency buckets; the outbox backlog, read from the database with the worker
 * stopped; deliveries by outcome where the dispatcher records them, and by the running worker;
 * the database pools; and what a scrape says when the database is gone.
 */
import type { AddressInfo } from 'node:net'
import { eq, inArray, sql } from 'drizzle-orm'
import t from 'tap'
import { outbox, workOrders } from '../../src/db/schema.js'
import { MAX_ATTEMPTS } from '../../src/integrations/webhooks/retry-policy.js'
import { buildTestApp } from '../helpers/app.js'
import { closeDatabaseUnderApp } from '../helpers/closed-database.js'
import { eventually } from '../helpers/eventually.js'
import { scrape } from '../helpers/prometheus.js'
import { setupHarness } from '../webhooks/fixtures.js'

const TOKEN = 'metrics-token-for-tests-0123456789abcdef'
const metricsOn = { metrics: { enabled: true, token: TOKEN } }

/** The bounds the request histogram declares (src/metrics/metrics.ts), as the exposition writes them. */
const BUCKETS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '120', '+Inf']

const h = await setupHarness(t, metricsOn)
const { app } = h
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const metrics = () => scrape(base, TOKEN)

t.test('off by default: 404 in the Open311 envelope saying how to turn it on, and nothing is timed', async (t) => {
  const { app: plain } = await buildTestApp(t)
  t.equal(plain.metrics, null, 'no registry, no request hook')
  const res = await plain.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 404)
  t.match(res.json(), [{ code: 404, description: /METRICS=on/ }])

  const operation = ((await plain.inject('/docs/json')).json() as { paths: Record<string, any> }).paths['/metrics']?.get
  t.ok(operation, 'documented whatever the configuration')
  t.same(Object.keys(operation.responses['200'].content), ['text/plain'], 'answers text/plain')
  t.same(operation.security, [{ metricsToken: [] }], 'under its own bearer scheme')
  t.ok(operation.responses['403'] && operation.responses['404'], 'its refusals too')
})

t.test('protected: no token, a wrong one, an admin API key → 403; METRICS_TOKEN → 200 in the text format', async (t) => {
  const attempts = {
    'no Authorization': {},
    'a wrong token': { authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
    'a longer token': { authorization: `Bearer ${TOKEN}0` },
    'an admin API key': h.admin,
    'the token, not as Bearer': { authorization: `Basic ${TOKEN}` },
  }
  for (const [what, headers] of Object.entries(attempts)) {
    const res = await fetch(`${base}/metrics`, { headers })
    t.equal(res.status, 403, what)
    t.match(await res.json(), [{ code: 403, description: /METRICS_TOKEN/ }], `${what}: the envelope`)
  }
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(res.headers.get('cache-control'), 'no-store')
  const text = await res.text()
  t.match(text, /^# HELP /m)
  t.match(text, /^process_cpu_user_seconds_total /m, "Node's own figures are there too")
})

t.test('requests by route pattern and status, with latency buckets; never the raw URL', async (t) => {
  const get = (path: string) => fetch(`${base}${path}`).then(async (r) => ({ status: r.status, body: await r.text() }))
  for (const path of ['/open311/v2/services.json', '/open311/v2/services.json', '/open311/v2/services.xml', '/open311/v2/services.json?utm_source=x'])
    t.equal((await get(path)).status, 200, path)
  t.equal((await get('/open311/v2/requests/no-such-request-4711.json')).status, 404)
  t.equal((await get('/open311/v2/requests/no-such-request-4712.json')).status, 404)
  t.equal((await get('/no/such/path?api_key=sekrit-in-a-query')).status, 404)

  const exposition = await metrics()
  const family = exposition.family('open311_http_request_duration_seconds')
  t.equal(family.type, 'HISTOGRAM')
  const services = exposition.samples(family.name, { route: '/open311/v2/services.:format' })
  t.same(
    services.map((s) => s.labels),
    [{ method: 'GET', route: '/open311/v2/services.:format', status_code: '200' }],
    'one series: the pattern, JSON and XML alike, whatever the query',
  )
  const ok = services[0]!
  t.equal(ok.count, '4', 'four requests')
  // Sorted: a parsed object lists integer-like keys ("1", "10") first.
  t.same(Object.keys(ok.buckets!).sort(), [...BUCKETS].sort(), 'every declared bucket, and +Inf')
  const cumulative = BUCKETS.map((le) => Number(ok.buckets![le]))
  t.ok(
    cumulative.every((n, i) => i === 0 || n >= cumulative[i - 1]!),
    `cumulative counts never fall (${cumulative.join(' ')})`,
  )
  t.equal(ok.buckets!['+Inf'], ok.count, '+Inf is the count')
  t.ok(Number(ok.sum) > 0, 'the summed seconds')

  const lookups = exposition.samples(family.name, { route: '/open311/v2/requests/:service_request_id.:format', status_code: '404' })
  t.equal(lookups.length, 1, 'two different ids, one series')
  t.equal(lookups[0]!.count, '2')
  t.equal(exposition.samples(family.name, { route: 'unmatched', status_code: '404' })[0]?.count, '1', 'an unknown URL counts as unmatched')
  for (const raw of ['no-such-request-4711', '/no/such/path', 'sekrit-in-a-query', 'utm_source'])
    t.notOk(exposition.text.includes(raw), `"${raw}" appears nowhere in the exposition`)

  const again = await metrics()
  t.equal(
    again.samples(family.name, { route: '/open311/v2/services.:format', status_code: '200' })[0]!.count,
    ok.count,
    'a scrape changes nothing it did not serve',
  )
  t.ok(Number(again.samples(family.name, { route: '/metrics', status_code: '200' })[0]?.count) >= 1, 'the scrapes themselves are timed')
})

t.test('latency buckets: each request in the first bucket at or above its time, cumulatively', async (t) => {
  // Known durations through the hook's own call, so the placement is checked without timing anything.
  for (const seconds of [0.003, 0.005, 0.07, 0.07, 7, 200]) app.metrics!.observeRequest('GET', '/a-known-route', 200, seconds)
  const [sample] = (await metrics()).samples('open311_http_request_duration_seconds', { route: '/a-known-route' })
  t.same(sample!.labels, { method: 'GET', route: '/a-known-route', status_code: '200' })
  t.same(
    BUCKETS.map((le) => Number(sample!.buckets![le])),
    [2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 5, 5, 5, 6],
    'le=0.005 holds 0.003 and 0.005 (bounds are inclusive), le=0.1 the two 0.07 s, le=10 the 7 s, +Inf the 200 s',
  )
  t.equal(sample!.count, '6')
  t.equal(Number(sample!.sum), 0.003 + 0.005 + 0.07 + 0.07 + 7 + 200)
})

t.test('the outbox backlog, read from the database, with the worker stopped; deliveries by outcome as the dispatcher records them', async (t) => {
  const before = await metrics()
  t.equal(before.value('open311_outbox_pending_events'), 0, 'nothing pending yet')
  t.equal(before.value('open311_outbox_oldest_pending_age_seconds'), 0, 'no age without a pending event')
  t.equal(before.value('open311_outbox_dead_lettered_events'), 0)
  t.equal(before.value('open311_database_up'), 1)
  for (const outcome of ['delivered', 'failed', 'dead_lettered', 'gone'])
    t.equal(before.value('open311_webhook_deliveries_total', { outcome }), 0, `${outcome}: present at 0 before any delivery`)

  const dept = await h.registerDepartment('metrics')
  await h.route('sidewalk-damage', 'metrics')
  await h.submit()
  await h.submit()
  const [first] = await h.outboxOf('metrics')
  // An event an hour old, without waiting an hour: the gauge is read from created_at.
  await app.db.execute(sql`update outbox set created_at = now() - interval '1 hour' where id = ${first!.id}`)
  const queued = await metrics()
  t.equal(queued.value('open311_outbox_pending_events'), 2, 'two events enqueued, no worker running')
  t.ok(queued.value('open311_outbox_oldest_pending_age_seconds')! >= 3600, 'the oldest is an hour old')

  const dispatch = () => h.dispatch({ recorded: app.metrics!.recordDeliveries })
  t.equal(await dispatch(), 2)
  const delivered = await metrics()
  t.equal(delivered.value('open311_webhook_deliveries_total', { outcome: 'delivered' }), 2)
  t.equal(delivered.value('open311_outbox_pending_events'), 0, 'the backlog is gone')
  t.equal(delivered.value('open311_outbox_oldest_pending_age_seconds'), 0)

  // A failing endpoint: one failed attempt, retried later (still pending).
  let answer = 503
  h.receiver.handle(dept.hookPath, (_delivery, res) => void res.writeHead(answer).end())
  await h.submit()
  t.equal(await dispatch(), 1)
  const failing = await metrics()
  t.equal(failing.value('open311_webhook_deliveries_total', { outcome: 'failed' }), 1)
  t.equal(failing.value('open311_outbox_pending_events'), 1, 'a retry still waits')

  // Its last attempt: the attempts used up and the retry horizon passed.
  await app.db
    .update(outbox)
    .set({ attempts: MAX_ATTEMPTS - 1, nextAttemptAt: new Date(Date.now() - 1000), createdAt: new Date(Date.now() - 4 * 86_400_000) })
    .where(eq(outbox.state, 'pending'))
  t.equal(await dispatch(), 1)
  const dead = await metrics()
  t.equal(dead.value('open311_webhook_deliveries_total', { outcome: 'dead_lettered' }), 1)
  t.equal(dead.value('open311_webhook_deliveries_total', { outcome: 'failed' }), 1, 'the last attempt is a dead letter, not another failure')
  t.equal(dead.value('open311_outbox_dead_lettered_events'), 1)
  t.equal(dead.value('open311_outbox_pending_events'), 0)

  // 410 Gone: held, not counted as an attempt, and the endpoint is disabled.
  answer = 410
  await h.submit()
  t.equal(await dispatch(), 1)
  const gone = await metrics()
  t.equal(gone.value('open311_webhook_deliveries_total', { outcome: 'gone' }), 1)
  t.equal(gone.value('open311_outbox_pending_events'), 1, 'held for the endpoint, pending')
  await h.retire('metrics')
})

t.test('overdue work orders: open ones the sweep marked, read from the database', async (t) => {
  t.equal((await metrics()).value('open311_work_orders_overdue'), 0, 'none marked yet')
  await h.registerDepartment('late')
  await h.route('sidewalk-damage', 'late')
  const [late] = await h.workOrdersOf(await h.submit())
  const [closed] = await h.workOrdersOf(await h.submit())
  // As the sweep marks them (src/domain/service-levels/overdue.ts), without its clock and calendar.
  await app.db.update(workOrders).set({ overdueAt: new Date() }).where(inArray(workOrders.id, [late!.id, closed!.id]))
  await app.db.update(workOrders).set({ state: 'cancelled' }).where(eq(workOrders.id, closed!.id))
  t.equal((await metrics()).value('open311_work_orders_overdue'), 1, 'the open one; the cancelled breach is history, not backlog')
  await h.retire('late')
})

t.test('database pools', async (t) => {
  const exposition = await metrics()
  const pool = (name: string) => exposition.value(`open311_database_pool_${name}`, { database: 'primary' })
  if (h.databaseUrl) {
    t.equal(pool('max_connections'), 5, "the test database's pool size")
    t.ok(pool('open_connections')! >= 1 && pool('open_connections')! <= 5, 'open connections within the pool')
    t.ok(pool('idle_connections')! <= pool('open_connections')!, 'idle ones among them')
    t.equal(pool('waiting_queries'), 0, 'nothing waits for a connection between requests')
  } else {
    t.equal(pool('max_connections'), 1, 'the embedded database is one connection')
    t.equal(pool('open_connections'), 1)
    t.equal(pool('idle_connections'), undefined, 'PGlite does not say whether it is busy: no sample rather than a guess')
    t.equal(pool('waiting_queries'), undefined)
  }
  t.same(exposition.samples('open311_database_pool_max_connections', { database: 'replica' }), [], 'no replica configured, none reported')
})

t.test('the running worker counts what it delivers', async (t) => {
  const live = await setupHarness(t, metricsOn, { workers: true })
  await live.registerDepartment('live')
  await live.route('sidewalk-damage', 'live')
  await live.submit()
  const deliveredCount = async () => {
    const res = await live.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
    const line = /^open311_webhook_deliveries_total\{outcome="delivered"\} (\d+)$/m.exec(res.body)
    return Number(line?.[1]) >= 1 || undefined
  }
  await eventually('the worker to deliver and count it', deliveredCount)
  t.equal(live.receiver.deliveries('/hook/live').length, 1, 'delivered once')
  t.match(await live.outboxOf('live'), [{ state: 'delivered' }])
})

t.test('the database gone: the process figures are still served, the shared ones are NaN and open311_database_up is 0', async (t) => {
  const broken = await buildTestApp(t, metricsOn)
  await broken.app.listen({ port: 0, host: '127.0.0.1' })
  const brokenBase = `http://127.0.0.1:${(broken.app.server.address() as AddressInfo).port}`
  await (await fetch(`${brokenBase}/healthz`)).text()
  await closeDatabaseUnderApp(broken.database)

  const exposition = await scrape(brokenBase, TOKEN)
  t.equal(exposition.value('open311_database_up'), 0)
  t.ok(Number.isNaN(exposition.value('open311_outbox_pending_events')), 'the backlog is unknown, not 0')
  t.ok(Number.isNaN(exposition.value('open311_outbox_oldest_pending_age_seconds')))
  t.ok(Number.isNaN(exposition.value('open311_work_orders_overdue')))
  t.equal(exposition.samples('open311_http_request_duration_seconds', { route: '/healthz', status_code: '200' })[0]?.count, '1', 'the requests are still counted')
  const warning = broken.logs().find((l) => l.msg === 'metrics: could not read the shared figures')
  t.match(warning, { level: 40 }, 'logged as a warning')
  t.notOk(/select count|from outbox/i.test(broken.rawLogs()), 'without the statement')
})
