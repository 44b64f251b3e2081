/**
 * An unreachable database is an outage, not a bug: 503 with Retry-After in the envelope, one
 * warning when it starts and one when it ends, no personal data in any line; and the LISTEN
 * connection comes back after it is cut, so a NOTIFY wakes the workers again. The outage and
 * LISTEN cases need a database that can go away: PostgreSQL, reached through a TCP proxy the
 * test cuts (the embedded database lives in the process). The classification runs on both.
 */
import { sql } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { ReleasingPool } from '../../src/db/backends/postgres.js'
import { isDatabaseUnavailable, trackOutages } from '../../src/db/outages.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { eventually } from '../helpers/eventually.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { testDatabaseUrl } from '../helpers/template.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const postgresUrl = testDatabaseUrl()

t.test('what counts as an outage: connection and server-availability errors, never a failing statement', async (t) => {
  const { database } = await createTestDatabase(t)
  const syntax = await database.db.execute(sql.raw('selec 1')).catch((err: unknown) => err)
  t.notOk(isDatabaseUnavailable(syntax), 'a syntax error (through drizzle) is a bug, not an outage')
  const missing = await database.db.execute(sql.raw('select * from no_such_table')).catch((err: unknown) => err)
  t.notOk(isDatabaseUnavailable(missing), 'a missing table is not an outage')
  for (const code of ['57P01', '57P02', '57P03', '53300', '08006', '08001', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']) {
    t.ok(isDatabaseUnavailable(Object.assign(new Error('x'), { code })), `${code} is an outage`)
    t.ok(isDatabaseUnavailable(new Error('Failed query: …', { cause: Object.assign(new Error('x'), { code }) })), `${code} wrapped as a cause is an outage`)
  }
  for (const code of ['23505', '22P02', '42P01', '40001', 'P0001']) {
    t.notOk(isDatabaseUnavailable(Object.assign(new Error('x'), { code })), `${code} is not`)
  }
  t.ok(isDatabaseUnavailable(new Error('Connection terminated unexpectedly')), "node-postgres's lost connection")
  t.ok(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect')), "node-postgres's pool timeout")
  t.notOk(isDatabaseUnavailable(new Error('Cannot use a pool after calling end on the pool')), 'a pool we closed ourselves is not an outage')

  if (postgresUrl) {
    const refused = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/x' })
    t.ok(isDatabaseUnavailable(await refused.connect().catch((err: unknown) => err)), 'a real refused connection')
    const victim = new pg.Client({ connectionString: postgresUrl })
    await victim.connect()
    victim.on('error', () => {})
    const { rows } = await victim.query<{ pid: number }>('select pg_backend_pid() as pid')
    const killer = new pg.Client({ connectionString: postgresUrl })
    await killer.connect()
    await killer.query('select pg_terminate_backend($1)', [rows[0]!.pid])
    await killer.end()
    t.ok(isDatabaseUnavailable(await victim.query('select 1').catch((err: unknown) => err)), 'a real terminated session')
    await victim.end().catch(() => {})
  }
})

t.test('the tracker: one lost connection is no outage; a failing ping starts one, logged once each way', async (t) => {
  const lines: { level: string; msg: string }[] = []
  const record = (level: string) => (_obj: unknown, msg?: string) => void lines.push({ level, msg: msg ?? '' })
  let reachable = true
  const outages = trackOutages({
    logger: { info: record('info'), warn: record('warn'), error: record('error') } as never,
    ping: async () => {
      if (!reachable) throw Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })
    },
    probeIntervalMs: 20,
  })
  t.teardown(() => outages.stop())
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  const settle = () => new Promise((r) => setTimeout(r, 80))

  t.ok(outages.noteFailure(refused), 'answered as an outage (503)')
  await settle()
  t.same(lines, [], 'the ping answered: one lost connection, nothing logged')

  reachable = false
  for (let i = 0; i < 5; i++) t.ok(outages.noteFailure(refused))
  await settle()
  t.same(lines, [{ level: 'warn', msg: 'database unreachable: answering 503 until it is back' }], 'one warning however many failures')
  reachable = true
  await settle()
  t.same(lines.map((l) => l.msg), ['database unreachable: answering 503 until it is back', 'database reachable again'], 'and one when it is back')

  const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET', statusCode: 400 })
  t.notOk(outages.noteFailure(aborted), 'a client hanging up (an HTTP error, ECONNRESET) is not a database outage')
})

if (postgresUrl) {
  t.test('the database goes away: 503 + Retry-After in the envelope, one warning each way, nothing personal logged', async (t) => {
    let proxy: TcpProxy | undefined
    const { app, rawLogs, logs } = await buildTestApp(t, {}, {
      connectThrough: async (url) => {
        proxy = await startTcpProxy(url)
        t.teardown(() => proxy!.close())
        return proxy.url
      },
    })
    await loadDemoCatalog(app.db)
    const key = await createApiKey(app.db, { name: 'app', scopes: ['requests:write'] }, SERVER_ACTOR)
    const reporter = { email: 'outage.reporter@example.org', first_name: 'Zebulon', last_name: 'Quimby', phone: '+1 555 0199 431' }
    const post = (format: 'json' | 'xml') =>
      app.inject({
        method: 'POST',
        url: `/open311/v2/requests.${format}`,
        headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ service_code: 'pothole', lat: '41.88', long: '-87.63', 'attribute[size]': 'SMALL', ...reporter }).toString(),
      })
    t.equal((await post('json')).statusCode, 200, 'served while the database is up')

    await proxy!.stop()
    for (const format of ['json', 'xml', 'json', 'json', 'xml'] as const) {
      const res = await post(format)
      t.equal(res.statusCode, 503, `${format}: 503 while the database is unreachable (${res.body.slice(0, 120)})`)
      t.equal(res.headers['retry-after'], '5', `${format}: Retry-After`)
      if (format === 'json') t.match(res.json(), [{ code: 503, description: /unavailable/ }], 'JSON envelope')
      else t.match(res.body, /<errors><error><code>503<\/code><description>[^<]*unavailable/, 'XML envelope')
    }
    const search = await app.inject('/open311/v2/requests.json?status=open')
    t.equal(search.statusCode, 503, 'reads too')

    const warnings = () => logs().filter((l) => l.msg === 'database unreachable: answering 503 until it is back')
    t.equal(warnings().length, 1, 'one warning for the whole outage')
    t.match(warnings()[0], { level: 40, reason: String })
    t.same(logs().filter((l) => (l.level as number) >= 50), [], 'no error lines, no stack traces')

    await proxy!.start()
    await eventually('the recovery line', () => logs().find((l) => l.msg === 'database reachable again'))
    t.match(logs().find((l) => l.msg === 'database reachable again'), { level: 40, outageMs: Number })
    t.equal((await post('json')).statusCode, 200, 'served again once the database is back')

    for (const value of Object.values(reporter)) t.notOk(rawLogs().includes(value), `"${value}" is nowhere in the log output`)
    t.notOk(/Failed query|params:|insert into/i.test(rawLogs()), 'no statement text or parameters in the log output')
  })

  t.test('LISTEN comes back after its connection is cut, and a NOTIFY wakes the worker again', async (t) => {
    // Opened with the app's logger, so the listener's own lines are seen.
    const { app, database, logs } = await buildTestApp(t, {}, { workers: true, connectThrough: (url) => url })
    const admin = new pg.Client({ connectionString: postgresUrl })
    await admin.connect()
    t.teardown(() => admin.end())
    const [{ db } = { db: '' }] = await queryRows<{ db: string }>(app.db, sql`select current_database() as db`)
    const listeners = async () =>
      (
        await admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where datname = $1 and application_name = 'open311-server listen'`,
          [db],
        )
      ).rows.map((r) => r.pid)

    const [before] = await eventually('the listening session', async () => {
      const pids = await listeners()
      return pids.length > 0 ? pids : undefined
    })
    t.same((await listeners()).length, 1, "both workers' channels share one listening session")

    const received: string[] = []
    await database.listen('o311_test_wakeup', (payload) => received.push(payload))
    await admin.query('select pg_terminate_backend($1)', [before])
    await eventually('a new listening session', async () => {
      const pids = await listeners()
      return pids.length === 1 && pids[0] !== before ? pids : undefined
    })
    await eventually('the catch-up call after the reconnect', () => received.includes('') || undefined)
    await app.db.execute(sql`select pg_notify('o311_test_wakeup', 'after the cut')`)
    await eventually('the notification', () => received.includes('after the cut') || undefined, 5_000)
    t.pass('a NOTIFY sent after the reconnect arrives')
    t.match(logs().filter((l) => l.msg === 'listening again after a lost connection'), [{ level: 30 }], 'one info line for the reconnect')
    t.notOk(logs().some((l) => /database unreachable/.test(String(l.msg))), 'one cut session is not reported as a database outage')
  })
}

if (postgresUrl) {
  t.test('a pooled client keeps one query wrapper however often it is checked out (a lost connection freeing its slot is the outage test above)', async (t) => {
    const { url } = await createTestDatabase(t)
    const pool = new ReleasingPool({ connectionString: url, max: 1 })
    t.teardown(() => pool.end())
    const first = await pool.connect()
    const wrapped = first.query
    first.release()
    for (let i = 0; i < 20; i++) {
      const client = await pool.connect()
      t.equal(client, first, 'the pool hands out its one client again')
      t.equal(client.query, wrapped, `checkout ${i + 2}: the same query function, not one more wrapper around it`)
      await client.query('select 1')
      client.release()
    }
  })
}
