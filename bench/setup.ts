/**
 * What the bench scripts share: the synthetic data set, the server started as deployed, and
 * child-process plumbing.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import pg from 'pg'
import { openDatabase } from '../src/db/database.js'
import { createApiKey } from '../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../src/domain/demo/seed-demo.js'
import { BENCH_WEBHOOK_ENV } from './webhooks.js'

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const BENCH_DB = 'open311_bench'
export const benchUrl = (() => {
  const url = new URL(ADMIN_URL)
  url.pathname = `/${BENCH_DB}`
  return url.toString()
})()
// The demo city's centre (Riverton is fictional; the coordinates are Chicago's Loop).
export const CENTRE = { lat: 41.8781, long: -87.6298 }
export const quiet = { warn: () => {}, info: () => {}, error: () => {} }

export const randomPoint = () => ({
  lat: CENTRE.lat + (Math.random() - 0.5) * 0.2,
  long: CENTRE.long + (Math.random() - 0.5) * 0.26,
})

/** A radius search's path around a random point of the city. */
export function radiusSearchPath(): string {
  const p = randomPoint()
  return `/open311/v2/requests.json?lat=${p.lat}&long=${p.long}&radius=500`
}

/** The POST's form: a graffiti report at the centre with both required attributes; `extra` adds fields (e.g. an email). */
export function postForm(apiKey: string, extra: Record<string, string> = {}): URLSearchParams {
  const form = new URLSearchParams({
    api_key: apiKey,
    service_code: 'graffiti',
    lat: String(CENTRE.lat),
    long: String(CENTRE.long),
    description: 'Tag on the wall of the underpass',
    ...extra,
  })
  for (const [k, v] of Object.entries({ 'attribute[surface][]': 'WALL', 'attribute[offensive]': 'NO' })) form.append(k, v)
  return form
}

/** One autocannon run of `duration` seconds after a 2-second warm-up at the same concurrency. */
export async function measure(options: autocannon.Options, connections: number, duration: number): Promise<autocannon.Result> {
  await autocannon({ ...options, duration: 2, connections }) // warm-up
  return autocannon({ ...options, duration, connections })
}

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** The bench database with the demo catalog and exactly `rows` synthetic requests; returns a fresh API key. */
export async function prepareDatabase(rows: number): Promise<string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  const exists = await admin.query('select 1 from pg_database where datname = $1', [BENCH_DB])
  if (!exists.rowCount) await admin.query(`CREATE DATABASE ${BENCH_DB}`)
  await admin.end()

  const database = await openDatabase({ databaseUrl: benchUrl, logger: quiet, poolSize: 2 })
  await database.migrate()
  await loadDemoCatalog(database.db)
  const key = await createApiKey(database.db, { name: `bench-${Date.now()}` })
  await database.close()

  const client = new pg.Client({ connectionString: benchUrl })
  await client.connect()
  const { rows: counted } = await client.query<{ n: string }>('select count(*) as n from service_requests')
  if (Number(counted[0]!.n) !== rows) {
    console.log(`# generating ${rows.toLocaleString()} synthetic requests …`)
    const started = performance.now()
    await client.query('truncate service_requests cascade')
    // A dense centre and a wider spread (sum of uniforms ≈ bell curve), over three years.
    await client.query(
      `insert into service_requests (jurisdiction_id, service_id, status, detailed_status, requested_at, updated_at, closed_at,
                                     location, description, address, channel)
       select s.jurisdiction_id, s.id,
              case when t.closed then 'closed' else 'open' end,
              case when t.closed then 'completed' else 'submitted' end,
              now() - t.age, now() - t.age * t.progress,
              case when t.closed then now() - t.age * t.progress end,
              ST_SetSRID(ST_MakePoint($2 + (random() + random() + random() - 1.5) * 0.16,
                                      $1 + (random() + random() + random() - 1.5) * 0.12), 4326)::geography,
              'Synthetic request ' || g, g || ' Main St', 'api'
       from generate_series(1, $3) g
       cross join lateral (
         select age, age > interval '30 days' and random() < 0.85 as closed, random() as progress
         from (select random() * interval '1095 days' + (g * 0) * interval '1 day' as age) a) t
       cross join lateral (select id, jurisdiction_id from services where active order by id offset (g % 12) limit 1) s`,
      [CENTRE.lat, CENTRE.long, rows],
    )
    console.log(`# generated in ${Math.round((performance.now() - started) / 1000)} s`)
  }
  await client.query('vacuum analyze service_requests')
  await client.end()
  return key.key
}

/**
 * The only settings the bench changes from the defaults, each because a measurement needs it:
 * the PostGIS database (production's backend), the port, no demo data on top of the synthetic
 * set, POST rate limits out of the way (a load generator is one IP sending thousands of POSTs a
 * second), and webhooks allowed to the loopback receiver. Log level, pool size, prepared
 * statements and everything else stay at their defaults: the server as deployed.
 */
export function deployedEnv(port: number): Record<string, string> {
  return {
    DATABASE_URL: benchUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    SEED_DEMO: 'false',
    RATE_LIMIT_POST_PER_IP: '100000000',
    RATE_LIMIT_POST_PER_KEY: '100000000',
    ...BENCH_WEBHOOK_ENV,
  }
}

export interface RunningServer {
  base: string
  stop(): Promise<void>
}

/**
 * `node dist/server.js` from the package at `root`, as the Dockerfile starts it, with its log
 * lines appended to `logFile` (as a container's stdout goes to a file or a collector, not to a
 * terminal). Resolves once /healthz answers.
 */
export async function startDeployedServer(root: string, port: number, logFile: string): Promise<RunningServer> {
  const log = openSync(logFile, 'a')
  const child = spawn('node', ['dist/server.js'], { cwd: root, env: { ...clean(process.env), ...deployedEnv(port) }, stdio: ['ignore', log, log] })
  closeSync(log)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const base = `http://127.0.0.1:${port}`
  try {
    await Promise.race([waitForHealth(`${base}/healthz`), exited.then(() => Promise.reject(new Error(`server in ${root} exited; see ${logFile}`)))])
  } catch (err) {
    child.kill('SIGKILL') // a server that never became healthy must not outlive the bench holding the port
    throw err
  }
  return {
    base,
    async stop() {
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** The measuring process's environment without settings that would change the server's defaults. */
function clean(env: NodeJS.ProcessEnv): Record<string, string> {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !/^(DATABASE_|LOG_LEVEL|RATE_LIMIT_|DATA_DIR|PUBLIC_BASE_URL|TRUST_PROXY|NODE_OPTIONS)/.test(name)) kept[name] = value
  }
  return kept
}

export async function waitForHealth(url: string) {
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    await sleep(500)
  }
  throw new Error(`${url} never answered`)
}

/** Spawns a child; resolves at once, or when its output matches `readyPattern`. */
export function startProcess(command: string[], env: Record<string, string>, readyPattern: RegExp | null): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    if (!readyPattern) resolve(child)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (readyPattern?.test(output)) resolve(child)
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => {
      if (code) console.error(`${command.join(' ')} exited ${code}: ${output}`)
      reject(new Error(`${command.join(' ')} exited ${code}`))
    })
  })
}
