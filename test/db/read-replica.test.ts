/**
 * DATABASE_READ_URL: app.readDb reads from a real streaming replica (pg_basebackup -R, made by
 * test/setup/streaming-replica.sh; .ci/run exports TEST_REPLICA_URL for both suite runs), and
 * is app.db itself without one. Replication is asynchronous, so a write through the primary is
 * awaited on the replica by polling with a generous cap — never by a timed assertion.
 *
 * The test databases are created on the primary and reach the replica by replication: a test
 * database's replica URL is TEST_REPLICA_URL naming the same database.
 */
import { createServer, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import pino from 'pino'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { type Db, queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp, TEST_SECRETS_KEY } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { sqlState } from '../helpers/query.js'
import { testDatabaseUrl, withDatabaseName } from '../helpers/template.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const replicaBaseUrl = process.env.TEST_REPLICA_URL || undefined
/** Replication on a loaded, shared machine can stall for seconds; a minute means it is broken. */
const REPLICATION_CAP_MS = 60_000

/** Polls `check` until it returns a value (not undefined); fails with `what` and the last error past the cap. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const started = Date.now()
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() - started > REPLICATION_CAP_MS) {
      throw new Error(`${what}: not seen on the replica within ${REPLICATION_CAP_MS / 1000} s` + (lastError ? ` (last error: ${String(lastError)})` : ''), {
        cause: lastError,
      })
    }
    await sleep(100)
  }
}

const one = async <T>(db: Db, query: ReturnType<typeof sql>): Promise<T> => (await queryRows<T>(db, query))[0]!

async function postRequest(t: Test, app: Awaited<ReturnType<typeof buildTestApp>>['app'], description: string): Promise<string> {
  const { key } = await createApiKey(app.db, { name: 'replica test client' }, SERVER_ACTOR)
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    payload: new URLSearchParams({ api_key: key, service_code: 'pothole', lat: '41.8781', long: '-87.6298', description, 'attribute[size]': 'SMALL' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.equal(res.statusCode, 200, 'the request is created through the primary')
  const [created] = res.json() as { service_request_id: string }[]
  return created!.service_request_id
}

t.test('without DATABASE_READ_URL, readDb is db: reads see their own writes at once', async (t) => {
  const { app } = await buildTestApp(t)
  t.equal(app.readDb, app.db, 'the same handle')
  await loadDemoCatalog(app.db)
  const id = await postRequest(t, app, 'read back at once')
  const row = await one<{ public_id: string } | undefined>(app.readDb, sql`select public_id from service_requests where public_id = ${id}`)
  t.same(row, { public_id: id }, 'no replication delay: the write is there on the next statement')
  const ready = await app.inject('/readyz')
  t.same(ready.json(), { status: 'ready' }, '/readyz says nothing of a replica')
  if (testDatabaseUrl()) {
    const { in_recovery } = await one<{ in_recovery: boolean }>(app.readDb, sql`select pg_is_in_recovery() as in_recovery`)
    t.equal(in_recovery, false, 'PostgreSQL: reads go to the primary')
  }
})

t.test('an unreachable replica is visible in /readyz, and the primary stays ready', async (t) => {
  // Port 1 refuses connections: a replica that is down.
  const { app, logs } = await buildTestApp(t, { databaseReadUrl: 'postgres://postgres@127.0.0.1:1/open311' })
  t.not(app.readDb, app.db, 'a separate handle')
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 200, 'ready: the primary serves everything but the replica reads')
  t.same(res.json(), { status: 'ready', read_replica: 'unreachable' })
  const outage = await eventually('the replica outage warning', async () =>
    logs().find((l) => l.msg === 'database unreachable: answering 503 until it is back'),
  )
  t.match(outage, { level: 40, database: 'read replica', reason: 'ECONNREFUSED' }, 'logged once, as the read replica')
  await app.inject('/readyz')
  t.equal(logs().filter((l) => l.msg === 'database unreachable: answering 503 until it is back').length, 1, 'not again on the next probe')
  const err = await app.readDb.execute(sql`select 1`).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err, 'a read through readDb fails (it does not fall back to the primary, which would hide the outage)')
})

t.test('a replica host that never answers does not hold up /readyz', async (t) => {
  // Accepts connections and says nothing: a host dropping packets after the handshake.
  const sockets = new Set<Socket>()
  let silentNow = true
  const silent = createServer((socket) => {
    if (!silentNow) return socket.destroy()
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  const { port } = silent.address() as { port: number }
  const { app } = await buildTestApp(t, { databaseReadUrl: `postgres://postgres@127.0.0.1:${port}/open311` })
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 200, 'answered (the replica check gives up; the pool would wait 10 s to connect)')
  t.same(res.json(), { status: 'ready', read_replica: 'unreachable' })
  // Refuse from now on and drop what is held: the outage probe's connections then fail at once
  // instead of holding the app's close for the pool's connect timeout.
  silentNow = false
  for (const socket of sockets) socket.destroy()
})

t.test('a read from a replica that is down is a 503 in the envelope, and the primary keeps serving', async (t) => {
  // buildApp itself rather than buildTestApp: the route reading readDb (standing for a feed)
  // must be registered before the app is ready.
  const { database } = await createTestDatabase(t)
  const lines: string[] = []
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean))
        done()
      },
    }),
  )
  const config = { ...loadConfig({ SECRETS_KEY: TEST_SECRETS_KEY }), databaseReadUrl: 'postgres://postgres@127.0.0.1:1/open311' }
  const app = await buildApp({ config, database, logger })
  t.teardown(() => app.close())
  app.get('/test/replica-read', async () => queryRows(app.readDb, sql`select 1 as one`))
  app.get('/test/primary-read', async () => queryRows(app.db, sql`select 1 as one`))
  await app.ready()

  const res = await app.inject('/test/replica-read')
  t.equal(res.statusCode, 503, 'unavailable, not a 500: the request can be retried')
  t.match(res.json(), [{ code: 503, description: /database unreachable/ }], 'in the Open311 error envelope')
  const primary = await app.inject('/test/primary-read')
  t.equal(primary.statusCode, 200, 'reads from the primary are unaffected')
  t.same(primary.json(), [{ one: 1 }])
  const logs = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  const outage = await eventually('the replica outage warning', async () =>
    logs().find((l) => l.msg === 'database unreachable: answering 503 until it is back'),
  )
  t.match(outage, { database: 'read replica' }, 'the outage is logged as the read replica')
  t.equal(logs().filter((l) => l.msg === 'database unreachable: answering 503 until it is back').length, 1, 'only the replica is reported unreachable')
  t.notOk(logs().some((l) => l.msg === 'request failed'), 'no error with a stack trace per request')
})

if (testDatabaseUrl()) {
  t.test('with DATABASE_READ_URL on a real streaming replica, readDb reads from the replica', async (t) => {
    if (!replicaBaseUrl) {
      t.fail('TEST_REPLICA_URL is not set: run test/setup/streaming-replica.sh (as root) and export TEST_REPLICA_URL=<the URL it prints>')
      return
    }
    let replicaUrl = ''
    const { app, databaseUrl } = await buildTestApp(
      t,
      {},
      {
        readFrom: async (url) => {
          replicaUrl = withDatabaseName(replicaBaseUrl, new URL(url).pathname.slice(1))
          // The test database was created on the primary a moment ago: wait for it to replicate.
          await eventually('the test database', async () => {
            const client = new pg.Client({ connectionString: replicaUrl })
            await client.connect()
            await client.end()
            return true
          })
          return replicaUrl
        },
      },
    )
    t.not(app.readDb, app.db, 'a separate handle')

    const where = async (db: Db) =>
      one<{ in_recovery: boolean; port: number; database: string }>(
        db,
        sql`select pg_is_in_recovery() as in_recovery, inet_server_port() as port, current_database() as database`,
      )
    const primary = await where(app.db)
    const replica = await where(app.readDb)
    t.match(primary, { in_recovery: false, port: Number(new URL(databaseUrl!).port) }, 'db is the primary')
    t.match(replica, { in_recovery: true, port: Number(new URL(replicaUrl).port) }, 'readDb is the standby')
    t.equal(replica.database, primary.database, 'the same database on both')

    await loadDemoCatalog(app.db)
    const id = await postRequest(t, app, 'replicated to the standby')
    const row = await eventually(`request ${id}`, async () =>
      (await queryRows<{ public_id: string; description: string }>(app.readDb, sql`select public_id, description from service_requests where public_id = ${id}`))[0],
    )
    t.same(row, { public_id: id, description: 'replicated to the standby' }, 'the request written through the primary is read from the replica')

    // The feeds read the replica, with the horizon taken on the primary: a change made through
    // the primary a moment ago is in the feed at once (the feed waits for the replica to replay it).
    await app.db.execute(sql`update service_requests set status_notes = 'fresh on the primary' where public_id = ${id}`)
    const feed = await app.inject('/open-data/v1/requests.json')
    t.equal(feed.statusCode, 200)
    t.match(feed.json(), [{ service_request_id: id, status_notes: 'fresh on the primary' }], 'the feed from the replica has the latest change')

    const refused = await app.readDb.execute(sql`update service_requests set description = 'changed' where public_id = ${id}`).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.equal(sqlState(refused), '25006', 'the replica refuses writes (read_only_sql_transaction): readDb is for reads only')

    const ready = await app.inject('/readyz')
    t.equal(ready.statusCode, 200)
    t.same(ready.json(), { status: 'ready', read_replica: 'ready' }, '/readyz reports the replica')

    // Closed with the app: its connections to the replica go away.
    const admin = new pg.Client({ connectionString: replicaBaseUrl })
    await admin.connect()
    t.teardown(() => admin.end())
    const connections = async () =>
      (
        await admin.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'open311-server'",
          [replica.database],
        )
      ).rows[0]!.n
    t.ok((await connections()) > 0, 'the app holds connections to the replica')
    await app.close()
    await eventually('the app closing its replica connections', async () => ((await connections()) === 0 ? true : undefined))
    t.pass('no connection left on the replica after app.close()')
  })
}

if (testDatabaseUrl()) {
  t.test('a feed whose read database never replays the primary\'s changes answers 503, with Retry-After', async (t) => {
    // A second pool on the primary itself stands for a replica stuck behind: it has replayed nothing.
    const { app } = await buildTestApp(t, {}, { readFrom: (url) => url })
    t.not(app.readDb, app.db)
    await loadDemoCatalog(app.db)
    const res = await app.inject('/open-data/v1/requests.csv')
    t.equal(res.statusCode, 503, 'not served from a database that may lack settled rows')
    t.equal(res.headers['retry-after'], '5')
    t.match(res.json(), [{ code: 503, description: /replica is behind/ }])
  })
}
