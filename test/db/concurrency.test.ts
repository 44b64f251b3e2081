/**
 * Concurrent requests and transactions against one database. Matters most on the embedded
 * backend, where PGlite is a single connection: a failed statement or transaction must never
 * leave that connection inside an aborted transaction, and later requests must not notice.
 */
import { like, sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { queryRows } from '../../src/db/database.js'
import { jurisdictions, services } from '../../src/db/schema.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { activeService } from '../../src/domain/catalog/catalog-cache.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { resolveJurisdiction } from '../../src/domain/jurisdictions.js'
import { submitServiceRequest } from '../../src/domain/requests/submit-request.js'
import { validateSubmission } from '../../src/domain/requests/submission.js'
import { buildTestApp } from '../helpers/app.js'
import { sqlState } from '../helpers/query.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

// One database per test file; subtests share it and run in order.
const { app } = await buildTestApp(t)
const db = app.db
const demo = await loadDemoCatalog(db)
const SERVICES_URL = `/open311/v2/services.json?jurisdiction_id=${demo.jurisdiction}`
const expectedBody = (await app.inject(SERVICES_URL)).body

class Deliberate extends Error {}

async function idsLike(prefix: string): Promise<string[]> {
  const rows = await db
    .select({ id: jurisdictions.id })
    .from(jurisdictions)
    .where(like(jurisdictions.id, `${prefix}%`))
  return rows.map((r) => r.id).sort()
}

const jurisdiction = (id: string) => ({ id, name: `Jurisdiction ${id}`, timeZone: 'UTC' })

/** Asserts every services.json answer is the full, unchanged demo list. */
function assertServiceAnswers(t: Test, responses: { statusCode: number; body: string }[], label: string) {
  const bad = responses.filter((r) => r.statusCode !== 200 || r.body !== expectedBody)
  t.equal(bad.length, 0, `${label}: all ${responses.length} answered 200 with the full catalog`)
  if (bad[0]) t.comment(`first bad answer: ${bad[0].statusCode} ${bad[0].body.slice(0, 300)}`)
}

t.test('the demo catalog is served before anything runs concurrently', async (t) => {
  t.ok(demo.created.length >= 12)
  const body = JSON.parse(expectedBody) as unknown[]
  t.equal(body.length, demo.created.length)
})

t.test('100 concurrent service list requests', async (t) => {
  const responses = await Promise.all(Array.from({ length: 100 }, () => app.inject(SERVICES_URL)))
  assertServiceAnswers(t, responses, '100 concurrent GETs')
  const ids = new Set(responses.map((r) => r.headers['x-request-id']))
  t.equal(ids.size, 100, 'each request got its own id')
})

t.test('concurrent transactions, some failing mid-way, alongside 100 requests', async (t) => {
  const N = 10
  const ok = Array.from({ length: N }, (_, i) =>
    db.transaction(async (tx) => {
      await tx.insert(jurisdictions).values(jurisdiction(`ok-${i}`))
      await tx.insert(services).values({ jurisdictionId: `ok-${i}`, serviceCode: 'svc', serviceName: 'Service' })
      return i
    }),
  )
  // A constraint violation after a successful insert in the same transaction.
  const checkViolation = Array.from({ length: N }, (_, i) =>
    db.transaction(async (tx) => {
      await tx.insert(jurisdictions).values(jurisdiction(`check-${i}`))
      await tx.insert(services).values({ jurisdictionId: `check-${i}`, serviceCode: 'not url safe', serviceName: 'Bad' })
    }),
  )
  // A unique violation: the second insert repeats the first's key.
  const uniqueViolation = Array.from({ length: N }, (_, i) =>
    db.transaction(async (tx) => {
      await tx.insert(jurisdictions).values(jurisdiction(`dup-${i}`))
      await tx.insert(jurisdictions).values(jurisdiction(`dup-${i}`))
    }),
  )
  // Application code gives up after writing.
  const thrown = Array.from({ length: N }, (_, i) =>
    db.transaction(async (tx) => {
      await tx.insert(jurisdictions).values(jurisdiction(`throw-${i}`))
      await tx.execute(sql`select pg_sleep(0.001)`)
      throw new Deliberate(`give up ${i}`)
    }),
  )
  // A runtime error in the middle of a statement sequence.
  const divisionByZero = Array.from({ length: N }, (_, i) =>
    db.transaction(async (tx) => {
      await tx.insert(jurisdictions).values(jurisdiction(`div-${i}`))
      await tx.execute(sql`select 1 / (${i}::int - ${i}::int)`)
      await tx.insert(jurisdictions).values(jurisdiction(`div-after-${i}`))
    }),
  )
  const requests = Array.from({ length: 100 }, () => app.inject(SERVICES_URL))

  const [okResults, checkResults, uniqueResults, thrownResults, divResults, responses] = await Promise.all([
    Promise.allSettled(ok),
    Promise.allSettled(checkViolation),
    Promise.allSettled(uniqueViolation),
    Promise.allSettled(thrown),
    Promise.allSettled(divisionByZero),
    Promise.all(requests),
  ])

  t.same(
    okResults.map((r) => (r.status === 'fulfilled' ? r.value : r.reason)),
    Array.from({ length: N }, (_, i) => i),
    'every successful transaction resolved with its value',
  )
  t.same(checkResults.map((r) => r.status === 'rejected' && sqlState(r.reason)), Array(N).fill('23514'), 'check violations')
  t.same(uniqueResults.map((r) => r.status === 'rejected' && sqlState(r.reason)), Array(N).fill('23505'), 'unique violations')
  t.ok(
    thrownResults.every((r) => r.status === 'rejected' && r.reason instanceof Deliberate),
    'thrown errors reach the caller unchanged',
  )
  t.same(divResults.map((r) => r.status === 'rejected' && sqlState(r.reason)), Array(N).fill('22012'), 'division by zero')
  assertServiceAnswers(t, responses, 'GETs during the transactions')

  t.same(await idsLike('ok-'), Array.from({ length: N }, (_, i) => `ok-${i}`).sort(), 'successful transactions committed')
  const [okServices] = await queryRows<{ n: number }>(
    db,
    sql`select count(*)::int as n from services where jurisdiction_id like 'ok-%'`,
  )
  t.equal(okServices?.n, N, 'with both of their statements')
  for (const prefix of ['check-', 'dup-', 'throw-', 'div-']) {
    t.same(await idsLike(prefix), [], `failed "${prefix}" transactions left nothing behind`)
  }
})

t.test('a caught failure in a nested transaction rolls back only its savepoint', async (t) => {
  const outcome = await db.transaction(async (tx) => {
    await tx.insert(jurisdictions).values(jurisdiction('nested-outer'))
    const inner = await tx
      .transaction(async (sp) => {
        await sp.insert(jurisdictions).values(jurisdiction('nested-inner'))
        await sp.insert(jurisdictions).values(jurisdiction('nested-outer'))
      })
      .then(
        () => 'committed',
        (err: unknown) => sqlState(err),
      )
    await tx.insert(jurisdictions).values(jurisdiction('nested-after'))
    return inner
  })
  t.equal(outcome, '23505', 'the inner transaction failed')
  t.same(await idsLike('nested-'), ['nested-after', 'nested-outer'], 'the outer transaction committed around it')
})

t.test('no transaction is left open on the connection afterwards', async (t) => {
  // Outside any transaction now() moves between statements; inside one it would be frozen.
  const [a] = await queryRows<{ now: string }>(db, sql`select now()::text as now`)
  await db.execute(sql`select pg_sleep(0.01)`)
  const [b] = await queryRows<{ now: string }>(db, sql`select now()::text as now`)
  t.not(a?.now, b?.now, 'each statement runs in its own transaction')
  // A write outside a transaction is visible right away (and so was not swallowed by an aborted one).
  await db.insert(jurisdictions).values(jurisdiction('autocommit-1'))
  t.same(await idsLike('autocommit-'), ['autocommit-1'])
})

t.test('a failed statement outside a transaction does not poison later queries', async (t) => {
  const error = await db.execute(sql`select 1/0`).then(
    () => undefined,
    (err: unknown) => err,
  )
  t.equal(sqlState(error), '22012', 'select 1/0 fails with division_by_zero')
  const [row] = await queryRows<{ one: number }>(db, sql`select 1 as one`)
  t.equal(row?.one, 1, 'the next query succeeds')
  const res = await app.inject(SERVICES_URL)
  t.equal(res.statusCode, 200)
  t.equal(res.body, expectedBody)

  await t.rejects(db.execute(sql`selec 1`), 'a syntax error fails too')
  await t.rejects(db.execute(sql`select * from no_such_table`))
  const [again] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from services`)
  t.ok((again?.n ?? 0) >= demo.created.length, 'and the database still answers')
})

t.test('failing statements interleaved with concurrent requests', async (t) => {
  const failures = Array.from({ length: 50 }, (_, i) =>
    i % 2 === 0 ? db.execute(sql`select 1/0`) : db.insert(jurisdictions).values(jurisdiction(demo.jurisdiction)),
  )
  const requests = Array.from({ length: 50 }, () => app.inject(SERVICES_URL))
  const [failed, responses] = await Promise.all([Promise.allSettled(failures), Promise.all(requests)])
  t.same(
    failed.map((r) => (r.status === 'rejected' ? sqlState(r.reason) : 'fulfilled')),
    Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? '22012' : '23505')),
    'every bad statement failed with its own error',
  )
  assertServiceAnswers(t, responses, 'GETs among failing statements')
})

t.test('later requests all succeed', async (t) => {
  const responses = await Promise.all(Array.from({ length: 20 }, () => app.inject(SERVICES_URL)))
  assertServiceAnswers(t, responses, '20 requests after everything')
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('concurrent POSTs, each in its own transaction, among inserts that fail inside theirs', async (t) => {
  const client = await createApiKey(db, { name: 'concurrent poster' }, SERVER_ACTOR)
  const jurisdictionRow = await resolveJurisdiction(db, demo.jurisdiction)
  const pothole = (await activeService(db, jurisdictionRow, 'pothole'))!
  const count = async () =>
    (
      await queryRows<{ requests: number; reporters: number; updates: number }>(
        db,
        sql`select (select count(*) from service_requests)::int as requests, (select count(*) from request_reporters)::int as reporters,
                   (select count(*) from request_updates)::int as updates`,
      )
    )[0]!
  const before = await count()
  const post = (i: number) =>
    app.inject({
      method: 'POST',
      url: '/open311/v2/requests.json',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        api_key: client.key,
        // Earlier subtests leave other jurisdictions behind, so the POST must name its own.
        jurisdiction_id: demo.jurisdiction,
        service_code: 'pothole',
        lat: '41.8781',
        long: '-87.6298',
        email: `resident${i}@example.org`,
        'attribute[size]': 'SMALL',
      }).toString(),
    })
  // The same write for a service that does not exist: a foreign-key failure inside its transaction.
  const submission = validateSubmission({ lat: '41.8781', long: '-87.6298', email: 'x@example.org', 'attribute[size]': 'SMALL' }, pothole, 'UTC')
  const failing = () => db.transaction((tx) => submitServiceRequest(tx, { jurisdiction: jurisdictionRow, service: { ...pothole, id: 987654321 }, submission, actor: SERVER_ACTOR, channel: 'internal' }))

  const [answers, failures] = await Promise.all([
    Promise.all(Array.from({ length: 40 }, (_, i) => post(i))),
    Promise.allSettled(Array.from({ length: 10 }, failing)),
  ])
  t.same(answers.map((a) => a.statusCode), Array(40).fill(200), 'every POST answered 200')
  const ids = answers.map((a) => (a.json() as { service_request_id: string }[])[0]!.service_request_id)
  t.equal(new Set(ids).size, 40, 'forty distinct requests')
  t.same(failures.map((f) => (f.status === 'rejected' ? sqlState(f.reason) : 'fulfilled')), Array(10).fill('23503'), 'each failing insert failed on its foreign key')
  const after = await count()
  t.same(
    { requests: after.requests - before.requests, reporters: after.reporters - before.reporters, updates: after.updates - before.updates },
    { requests: 40, reporters: 40, updates: 40 },
    'a request, its reporter and its first update for each POST; nothing from the failed ones',
  )
  t.equal((await post(99)).statusCode, 200, 'and the next POST still succeeds')
})
