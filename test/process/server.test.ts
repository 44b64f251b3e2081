import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { controlFilePath } from '../../src/cli/control-file.js'
import { queryRows } from '../../src/db/database.js'
import { PROGRESS_PREFIX } from '../../src/startup/progress.js'
import { createEmbeddedDataDir, createTestDatabase } from '../helpers/database.js'
import { type ServerProcess, lines, pickPort, runCli, runNode, startServer } from '../helpers/process.js'
import { testDatabaseUrl } from '../helpers/template.js'

const KEY_PATTERN = /o311_([a-z0-9]{12})_[A-Za-z0-9_-]{43}/
const ANY_KEY = new RegExp(KEY_PATTERN.source, 'g')
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

// Every embedded CLI or server process pays seconds of PGlite + PostGIS start-up (about 6 s of
// CPU each); on a loaded machine that can approach the suite's 240 s file limit, so allow more.
if (!testDatabaseUrl()) t.setTimeout(480_000)

// One database per test file, shared by the subtests, which run in order: the failed start
// leaves it empty, the first real start seeds the demo into it, the second finds it seeded.
const postgres = Boolean(testDatabaseUrl())
const tmp = await mkdtemp(join(tmpdir(), 'open311-server-'))
t.teardown(() => rm(tmp, { recursive: true, force: true }))
// PostgreSQL: this file's own database (kept open here, to look inside). Embedded: DATA_DIR.
const own = postgres ? await createTestDatabase(t) : null
const database = own?.database
let backendEnv: Record<string, string>
const dataDir = join(tmp, 'data')
if (own) {
  backendEnv = { DATABASE_URL: own.url!, SEED_DEMO: 'true' }
} else {
  await createEmbeddedDataDir(dataDir)
  backendEnv = { DATA_DIR: dataDir }
}

/** The banner comes just after the server starts answering: wait for its last line. */
async function banner(server: ServerProcess): Promise<string> {
  for (let i = 0; i < 100 && !/or POST \S+\/admin\/v1\/keys/.test(server.stderr()); i++) await new Promise((r) => setTimeout(r, 100))
  return server.stderr()
}

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
}

/** What the embedded start says on stderr before it is ready, at any log level. */
function assertProgress(t: Test, stderr: string, { firstStart }: { firstStart: boolean }) {
  const all = lines(stderr).filter((line) => line.startsWith(PROGRESS_PREFIX))
  if (postgres) return t.same(all, [], 'no progress lines on PostgreSQL')
  // A slow step also says, every few seconds, that it is still under way.
  const still = all.filter((line) => line.startsWith(`${PROGRESS_PREFIX}… still `))
  t.match(still, still.map(() => /^open311-server: … still (opening|creating|applying|setting up) .* \(\d+ s\)$/))
  const progress = all.filter((line) => !still.includes(line))
  t.equal(progress.length, 5)
  t.match(
    progress,
    [
      new RegExp(`^open311-server: ${firstStart ? '(creating|opening)' : 'opening'} the embedded database in .*/pglite`),
      /^open311-server: embedded database open \(\d+\.\d s\)$/,
      /^open311-server: (applying migrations|setting up PostGIS)/,
      /^open311-server: database ready \(\d+\.\d s\)$/,
    ],
    'progress lines while the embedded database opens',
  )
  t.match(progress.at(-1), /^open311-server: ready in \d+\.\d s: http:\/\/localhost:\d+\/open311\/v2\/services\.json, API docs at /)
}

async function assertGracefulStop(t: Test, server: ServerProcess, { logsInfo = true } = {}) {
  const status = await server.stop('SIGTERM')
  t.equal(status.killed, false, 'stops on its own after SIGTERM')
  t.equal(status.code, 0, 'exit code 0 after SIGTERM')
  t.equal(status.signal, null)
  if (logsInfo) {
    t.ok(
      server.logs().some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'),
      'logs the shutdown and its signal',
    )
  }
  t.notMatch(server.stderr(), /error|fail|warn/i, 'no error on stderr')
  if (!postgres) {
    t.notOk(existsSync(`${dataDir}/pglite.lock`), 'the embedded data directory lock is released')
    t.notOk(existsSync(controlFilePath(dataDir)), 'the CLI control file is removed')
  }
}

t.test('a busy port fails at once, before the database is opened or the demo seeded', async (t) => {
  const port = await pickPort()
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen({ port, host: '127.0.0.1' }, resolve))
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())))
  // Embedded: an empty DATA_DIR, so a database opened at all would leave files.
  const emptyDir = join(tmp, 'never-created')
  const env = { ...backendEnv, ...(postgres ? {} : { DATA_DIR: emptyDir }), HOST: '127.0.0.1', PORT: String(port) }
  const result = await runNode(['src/server.ts'], { env, timeoutMs: 60_000 })
  t.equal(result.code, 1, 'exit code 1')
  t.equal(
    result.stderr,
    `open311-server failed to start: port ${port} on 127.0.0.1 is already in use (another open311-server?); stop what holds it, or set PORT to a free port\n`,
    'one line naming the port, and no progress line: nothing was opened',
  )
  t.equal(result.stdout, '', 'nothing logged')
  if (!postgres) t.notOk(existsSync(emptyDir), 'DATA_DIR was not even created')
  if (database) {
    const [row] = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from jurisdictions`)
    t.equal(row?.n, 0, 'the database was not seeded')
  }
})

t.test('first start at LOG_LEVEL=error: a banner on stderr with the URLs and both demo keys, and the CLI works beside the server', async (t) => {
  const server = await startServer(t, { env: { ...backendEnv, LOG_LEVEL: 'error' } })
  await assertServes(t, server)
  const stderr = await banner(server)
  assertProgress(t, stderr, { firstStart: false })
  const base = server.baseUrl.replace('127.0.0.1', 'localhost')
  for (const url of ['/open311/v2/services.json', '/open311/v2/discovery.json', '/docs', '/open-data/v1/data.json', '/open-data/v1/requests.csv']) {
    t.ok(stderr.includes(`${base}${url}`), `the banner names ${url}`)
  }
  const client = /^ {2}client key \(requests:write, POST requests\): +(o311_\S+)$/m.exec(stderr)?.[1] ?? ''
  const admin = /^ {2}admin key +\(admin, the \/admin\/v1 API\): +(o311_\S+)$/m.exec(stderr)?.[1] ?? ''
  t.match(client, KEY_PATTERN, 'a demo client key')
  t.match(admin, KEY_PATTERN, 'a demo admin key')
  t.match(stderr, /npm run cli -- keys create --name my-app\n/, 'how to make new keys')
  t.match(stderr, /also while this server runs/)
  t.equal(stderr.match(ANY_KEY)?.length, 2, 'each key once, nothing else key-like')
  t.notMatch(server.stdout(), KEY_PATTERN, 'no key in the log')

  const post = await fetch(`${server.baseUrl}/open311/v2/requests.json`, {
    method: 'POST',
    body: new URLSearchParams({ api_key: client, service_code: 'pothole', lat: '41.88', long: '-87.63', 'attribute[size]': 'LARGE' }),
  })
  t.equal(post.status, 200, 'the client key files a request')
  await post.arrayBuffer()
  const adminCall = await fetch(`${server.baseUrl}/admin/v1/keys`, { headers: { authorization: `Bearer ${admin}` } })
  t.equal(adminCall.status, 200, 'the admin key opens the admin API')
  t.match(await adminCall.json(), [{ name: 'demo', scopes: ['requests:write'] }, { name: 'demo-admin', scopes: ['admin'] }])

  // The CLI beside the running server: on the embedded database the server runs it.
  const created = await runCli(['keys', 'create', '--name', 'ops', '--scope', 'admin'], { env: backendEnv, timeoutMs: 60_000 })
  t.equal(created.code, 0, `keys create works while the server runs (stderr: ${created.stderr})`)
  const opsKey = lines(created.stdout).at(-1) ?? ''
  t.match(opsKey, new RegExp(`^${KEY_PATTERN.source}$`), 'the raw key is the last line')
  const withOps = await fetch(`${server.baseUrl}/admin/v1/keys`, { headers: { authorization: `Bearer ${opsKey}` } })
  t.equal(withOps.status, 200, 'the running server accepts the key at once')
  await withOps.arrayBuffer()
  const listed = await runCli(['keys', 'list'], { env: backendEnv, timeoutMs: 60_000 })
  t.equal(listed.code, 0, `keys list works while the server runs (stderr: ${listed.stderr})`)
  t.match(
    lines(listed.stdout).map((line) => line.split('\t')),
    [
      ['id', 'key_id', 'name', 'scopes', 'channel', 'jurisdictions', 'created', 'last_used', 'state'],
      [/^\d+$/, KEY_PATTERN.exec(client)?.[1], 'demo', 'requests:write', 'app', 'all', ISO_TIME, ISO_TIME, 'active'],
      [/^\d+$/, KEY_PATTERN.exec(admin)?.[1], 'demo-admin', 'admin', 'app', 'all', ISO_TIME, ISO_TIME, 'active'],
      [/^\d+$/, KEY_PATTERN.exec(opsKey)?.[1], 'ops', 'admin', 'app', 'all', ISO_TIME, ISO_TIME, 'active'],
    ],
    'a header, then the demo keys and the new one, as used a moment ago',
  )

  if (!postgres) {
    t.ok(existsSync(`${dataDir}/pglite.lock`), 'the running server holds the data directory lock')
    const control = controlFilePath(dataDir)
    t.equal((await stat(control)).mode & 0o777, 0o600, 'the control file is readable by its owner only')
    const { port } = JSON.parse(await readFile(control, 'utf8')) as { port: number }
    const body = JSON.stringify({ argv: ['keys', 'create', '--name', 'intruder', '--scope', 'admin'], cwd: '/' })
    for (const authorization of [undefined, 'Bearer wrong']) {
      const refused = await fetch(`http://127.0.0.1:${port}/commands`, { method: 'POST', body, headers: authorization ? { authorization } : {} })
      t.equal(refused.status, 401, `no command without the token (${authorization ?? 'no header'})`)
      await refused.arrayBuffer()
    }
  }
  t.equal(server.stdout(), '', 'at LOG_LEVEL=error nothing is logged on a good run')
  await assertGracefulStop(t, server, { logsInfo: false })
})

t.test('second start on the same database: no seeding, no banner, no key; the CLI opens the database itself once the server stopped', async (t) => {
  const server = await startServer(t, { env: backendEnv })
  await assertServes(t, server)
  t.ok(
    server.logs().some((l) => l.msg === `Server listening at ${server.baseUrl}`),
    'Fastify logs the address it listens on',
  )
  t.ok(
    server.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('open311-server ready: ')),
    'the ready line is logged',
  )
  assertProgress(t, server.stderr(), { firstStart: false })
  t.notMatch(server.stderr(), /key/i, 'no banner, no key')
  t.notMatch(server.stdout(), KEY_PATTERN, 'no raw key anywhere in the log')
  if (!postgres) {
    const listed = await runCli(['keys', 'list'], { env: backendEnv, timeoutMs: 60_000 })
    t.equal(listed.code, 0, listed.stderr)
    t.ok(
      server.logs().some((l) => l.command === 'keys list' && l.msg === 'CLI command run by the server for a local operator'),
      'the server logs which command it ran for the CLI, not its arguments',
    )
  }
  await assertGracefulStop(t, server)

  if (!postgres) {
    const after = await runCli(['keys', 'list'], { env: backendEnv, timeoutMs: 60_000 })
    t.equal(after.code, 0, `the CLI works once the server has stopped (stderr: ${after.stderr})`)
    const names = lines(after.stdout)
      .slice(1)
      .map((line) => line.split('\t')[2])
    t.same(names, ['demo', 'demo-admin', 'ops'], 'the keys made while the server ran were persisted')
  }
})
