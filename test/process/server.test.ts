import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createEmbeddedDataDir, createTestDatabase } from '../helpers/database.js'
import { type ServerProcess, lines, runCli, startServer } from '../helpers/process.js'
import { testDatabaseUrl } from '../helpers/template.js'

const KEY_PATTERN = /o311_([a-z0-9]{12})_[A-Za-z0-9_-]{43}/
const DEMO_KEY_MESSAGE = /demo API key/

// Every embedded CLI or server process pays seconds of PGlite + PostGIS start-up (about 6 s of
// CPU each); on a loaded machine that can approach the suite's 240 s file limit, so allow more.
if (!testDatabaseUrl()) t.setTimeout(480_000)

// One database per test file, shared by the subtests, which run in order: the first start
// seeds the demo into it, the second start finds it seeded.
const postgres = Boolean(testDatabaseUrl())
let backendEnv: Record<string, string>
let dataDir = ''
if (postgres) {
  const { url } = await createTestDatabase(t)
  backendEnv = { DATABASE_URL: url!, SEED_DEMO: 'true' }
} else {
  const tmp = await mkdtemp(join(tmpdir(), 'open311-server-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  dataDir = join(tmp, 'data')
  await createEmbeddedDataDir(dataDir)
  backendEnv = { DATA_DIR: dataDir }
}

let demoKeyId = ''

async function assertServes(t: Test, server: ServerProcess) {
  const res = await fetch(`${server.baseUrl}/open311/v2/services.json`)
  t.equal(res.status, 200)
  const services = (await res.json()) as { service_code: string }[]
  t.ok(services.length >= 12, `at least 12 demo services (${services.length})`)
  t.ok(
    services.some((s) => s.service_code === 'pothole'),
    'the demo catalog is served',
  )
  const ready = await fetch(`${server.baseUrl}/readyz`)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready' })
  t.ok(
    server.logs().some((l) => l.msg === `Server listening at ${server.baseUrl}`),
    'Fastify logs the address it listens on',
  )
  t.ok(
    server.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('open311-server ready: ')),
    'the ready line is logged',
  )
}

async function assertGracefulStop(t: Test, server: ServerProcess) {
  const status = await server.stop('SIGTERM')
  t.equal(status.killed, false, 'stops on its own after SIGTERM')
  t.equal(status.code, 0, 'exit code 0 after SIGTERM')
  t.equal(status.signal, null)
  t.ok(
    server.logs().some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'),
    'logs the shutdown and its signal',
  )
  t.equal(server.stderr(), '', 'nothing on stderr')
  if (!postgres) t.notOk(existsSync(`${dataDir}/pglite.lock`), 'the embedded data directory lock is released')
}

t.test('first start on an empty database seeds the demo and logs its API key once', async (t) => {
  const server = await startServer(t, { env: backendEnv })
  await assertServes(t, server)
  const keyLines = lines(server.stdout()).filter((line) => DEMO_KEY_MESSAGE.test(line))
  t.equal(keyLines.length, 1, 'the demo key line appears exactly once')
  const match = KEY_PATTERN.exec(keyLines[0] ?? '')
  t.ok(match, 'the line carries a raw API key')
  demoKeyId = match?.[1] ?? ''
  const seeded = server.logs().find((l) => DEMO_KEY_MESSAGE.test(String(l.msg)))
  t.match(seeded, { level: 40, jurisdiction: 'demo.open311.city', services: Number }, 'logged at warn, so it shows at any default log level')
  t.ok((seeded?.services as number) >= 12, 'the seed reports the services it created')
  t.equal(
    server.stdout().split(match?.[0] ?? '<none>').length - 1,
    1,
    'the raw key is written nowhere else in the log',
  )
  if (!postgres) t.ok(existsSync(`${dataDir}/pglite.lock`), 'the running server holds the data directory lock')
  await assertGracefulStop(t, server)
})

t.test('second start on the same database does not seed again', async (t) => {
  const server = await startServer(t, { env: backendEnv })
  await assertServes(t, server)
  t.notMatch(server.stdout(), DEMO_KEY_MESSAGE, 'no demo key line on a database that is already seeded')
  t.notMatch(server.stdout(), KEY_PATTERN, 'no raw key anywhere in the log')

  const cli = await runCli(['keys', 'list'], { env: backendEnv, timeoutMs: 60_000 })
  if (postgres) {
    // PostgreSQL serves any number of clients: the CLI works beside the server.
    t.equal(cli.code, 0, `CLI works while the server runs (stderr: ${cli.stderr})`)
    const demo = lines(cli.stdout).map((line) => line.split('\t'))
    t.match(demo, [[/^\d+$/, demoKeyId, 'demo', 'requests:write', 'active']], 'lists the demo key the server logged')
  } else {
    t.equal(cli.code, 1, 'the CLI refuses an embedded database the server holds')
    t.equal(
      cli.stderr,
      `error: the embedded database in ${dataDir}/pglite is in use by process ${server.pid}. ` +
        'Stop that process first, or use the admin HTTP API while the server runs.\n',
    )
    t.equal(cli.stdout, '')
    const still = await fetch(`${server.baseUrl}/open311/v2/services.json`)
    t.equal(still.status, 200, 'the server is unaffected by the refused CLI run')
    await still.arrayBuffer()
  }
  await assertGracefulStop(t, server)

  if (!postgres) {
    const after = await runCli(['keys', 'list'], { env: backendEnv, timeoutMs: 60_000 })
    t.equal(after.code, 0, `the CLI works once the server has stopped (stderr: ${after.stderr})`)
    const demo = lines(after.stdout).map((line) => line.split('\t'))
    t.match(demo, [[/^\d+$/, demoKeyId, 'demo', 'requests:write', 'active']], 'the demo key the server logged was persisted')
  }
})
