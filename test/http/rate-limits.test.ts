/**
 * POST rate limits are shared by every instance on one database, while only the first hit of
 * a client in a window costs a round trip: later hits are counted locally and folded into the
 * shared counter every FLUSH_MS. Two apps on one database stand for two instances.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { FLUSH_MS, SharedCounters } from '../../src/domain/rate-limits/shared-counters.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const quiet = { warn: () => {}, info: () => {}, error: () => {} }
const limits = { rateLimits: { perIpPerMinute: 3, perKeyPerMinute: 1_000 } }
const first = await buildTestApp(t, limits)
const instanceA = first.app
await loadDemoCatalog(instanceA.db)
const instanceB = await buildApp({ config: instanceA.config, database: first.database, logger: instanceA.log })
t.teardown(() => instanceB.close())
await instanceB.ready()
const client = await createApiKey(instanceA.db, { name: 'rate-limit client' }, SERVER_ACTOR)

/** Waits for a fresh 60-second window when this one is nearly over, so a burst fits in one. */
async function freshWindow() {
  const left = 60_000 - (Date.now() % 60_000)
  if (left < 5_000) await sleep(left + 100)
}

let n = 0
const post = (app: FastifyInstance, ip: string) =>
  app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    payload: new URLSearchParams({ api_key: client.key, service_code: 'pothole', lat: '41.8781', long: '-87.6298', description: `report ${++n}`, 'attribute[size]': 'SMALL' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    remoteAddress: ip,
  })

const storedHits = async (key: string) =>
  Number((await queryRows<{ hits: number }>(instanceA.db, sql`select coalesce(sum(hits), 0)::int as hits from rate_limit_counters where key = ${key}`))[0]!.hits)

t.test('one client spread over two instances meets one limit', async (t) => {
  await freshWindow()
  const ip = '198.51.100.7'
  const onA = []
  for (let i = 0; i < 3; i++) onA.push((await post(instanceA, ip)).statusCode)
  t.same(onA, [200, 200, 200], 'the first 3 POSTs (the limit) pass on instance A')
  await sleep(FLUSH_MS * 3)
  t.equal(await storedHits(`ip:${ip}`), 3, 'A has folded its local hits into the shared counter')

  const onB = await post(instanceB, ip)
  t.equal(onB.statusCode, 429, 'instance B refuses the 4th: it counts the client’s first hit there in the database')
  t.match(onB.json(), [{ code: 429, description: /rate limit/ }])
  t.match(onB.headers['retry-after'], /^\d+$/)
  t.equal((await post(instanceB, '198.51.100.8')).statusCode, 200, 'another client on B is unaffected')
  t.equal((await post(instanceA, ip)).statusCode, 429, 'and A refuses it too')
})

t.test('no hit is lost: concurrent hits on two instances all reach the shared counter', async (t) => {
  await freshWindow()
  const a = new SharedCounters(() => instanceA.db, quiet)
  const b = new SharedCounters(() => instanceA.db, quiet)
  const key = `test:concurrent:${Date.now()}`
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).hit(key, 60_000)))
  t.ok(answers.every((h) => h.current >= 1 && h.current <= 100), 'every answer counts at least its own hit')
  t.ok(answers.every((h) => h.ttl > 0 && h.ttl <= 60_000), 'ttl is what is left of the window')
  await Promise.all([a.flush(), b.flush()])
  t.equal(await storedHits(key), 100, '100 hits, 100 counted')

  // Each flush brings the shared total back: after one, A's next local hit counts B's hits too.
  await a.hit(key, 60_000)
  await a.flush()
  t.equal((await a.hit(key, 60_000)).current, 102, 'after its flush A knows about B’s 50')
  await a.close()
  t.equal(await storedHits(key), 102, 'closing flushes what is held locally')
})

t.test('a hit counted locally is refused at the limit without waiting for a flush', async (t) => {
  await freshWindow()
  const counters = new SharedCounters(() => instanceA.db, quiet)
  const key = `test:local:${Date.now()}`
  const seen = []
  for (let i = 0; i < 5; i++) seen.push((await counters.hit(key, 60_000)).current)
  t.same(seen, [1, 2, 3, 4, 5], 'exact on one instance, flush or not')
  t.equal(await storedHits(key), 1, 'only the first hit cost a round trip so far')
  await counters.flush()
  t.equal(await storedHits(key), 5)
})

t.test('a failed flush keeps the hits for the next one', async (t) => {
  await freshWindow()
  let broken = true
  const warnings: unknown[] = []
  const counters = new SharedCounters(
    () => (broken ? (new Proxy({}, { get: () => { throw new Error('database unavailable') } }) as typeof instanceA.db) : instanceA.db),
    { ...quiet, warn: (obj: unknown) => warnings.push(obj) },
  )
  const key = `test:retry:${Date.now()}`
  broken = false
  await counters.hit(key, 60_000)
  broken = true
  await counters.hit(key, 60_000)
  await counters.hit(key, 60_000)
  await counters.flush()
  t.equal(warnings.length, 1, 'the failure is logged')
  t.equal(await storedHits(key), 1, 'nothing more reached the database')
  broken = false
  await counters.flush()
  t.equal(await storedHits(key), 3, 'the held hits arrive with the next flush')
})

t.test('clients seen once do not stay in memory: first hits sweep out ended windows', async (t) => {
  const counters = new SharedCounters(() => instanceA.db, quiet, 0)
  const window = 1_000
  /** Waits for the start of the next window, so a burst of hits stays inside one. */
  const nextWindow = () => sleep(window - (Date.now() % window) + 5)
  await nextWindow()
  for (let i = 0; i < 20; i++) await counters.hit(`test:once:${Date.now()}:${i}`, window)
  t.equal(counters.size, 20, 'twenty clients in the current window')
  await nextWindow()
  await counters.hit(`test:once:${Date.now()}:late`, window)
  t.equal(counters.size, 1, 'once their window has ended, the next first hit drops them')

  const held = `test:held:${Date.now()}`
  await counters.hit(held, window)
  await counters.hit(held, window)
  await nextWindow()
  await counters.hit(`test:held:${Date.now()}:other`, window)
  t.equal(await storedHits(held), 2, 'a counter with hits not yet flushed is flushed before it can go')
  await counters.close()
})

t.test('flushes queue behind each other: close() waits for the one in flight', async (t) => {
  const counters = new SharedCounters(() => instanceA.db, quiet)
  const key = `test:queue:${Date.now()}`
  await counters.hit(key, 60_000)
  for (let i = 0; i < 5; i++) await counters.hit(key, 60_000)
  const first = counters.flush()
  const closing = counters.close()
  await closing
  t.equal(await storedHits(key), 6, 'every hit is in the table when close() resolves')
  await first
})
