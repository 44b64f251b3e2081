/**
 * What the bench scripts share: the synthetic data set, the server started as deployed, and
 * child-process plumbing.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { type Database, openDatabase, queryRows } from '../src/db/database.js'
import { createApiKey } from '../src/domain/api-keys/api-keys.js'
import { createDepartment, findDepartment, setServiceRoutes } from '../src/domain/departments/departments.js'
import { loadDemoCatalog } from '../src/domain/demo/seed-demo.js'
import { createWebhookContext } from '../src/integrations/webhooks/context.js'
import { BENCH_WEBHOOK_ENV } from './webhooks.js'

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
// BENCH_DB_NAME: another database beside it, e.g. for two branches' runs on one server (their migrations differ).
const BENCH_DB = process.env.BENCH_DB_NAME ?? 'open311_bench'
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

/**
 * Marks a data set made by the current loadSyntheticRequests (a comment on the table): a set
 * left by an older loader, with the same row count but without what the open-data feed reads,
 * is made again.
 */
const SYNTHETIC_DATA = 'open311 bench data v2: attributes, duplicates, work orders, routing districts'

/** The bench database with the demo catalog and exactly `rows` synthetic requests; returns a fresh API key. */
export async function prepareDatabase(rows: number): Promise<string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  const exists = await admin.query('select 1 from pg_database where datname = $1', [BENCH_DB])
  if (!exists.rowCount) await admin.query(`CREATE DATABASE ${BENCH_DB}`)
  await admin.end()

  const database = await openDatabase({ databaseUrl: benchUrl, logger: quiet, poolSize: 2 })
  try {
    await database.migrate()
    await loadSyntheticRequests(database, rows)
    return (await createApiKey(database.db, { name: `bench-${Date.now()}` })).key
  } finally {
    await database.close()
  }
}

/**
 * Six departments, by catalog group. graffiti (the POST scenario's service) and pothole (the
 * webhook scenario's, which routes it to its own department) get no routes here: a route
 * would add work orders and events to every POST and change what those scenarios measure.
 */
const DEPARTMENT_OF_GROUP: Record<string, string> = {
  'Streets & Sidewalks': 'streets',
  Sanitation: 'sanitation',
  'Parks & Trees': 'parks',
  Water: 'water',
  'Code Enforcement': 'code',
  'Animal Services': 'animals',
}
const UNROUTED = new Set(['graffiti', 'pothole'])

/** A 3 × 3 grid of named districts over the city (the points spread about ±0.24° long, ±0.18° lat). */
function districts() {
  const cells = []
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) {
      const [west, south] = [CENTRE.long - 0.27 + col * 0.18, CENTRE.lat - 0.21 + row * 0.14]
      const [east, north] = [west + 0.18, south + 0.14]
      cells.push({
        name: `District ${row * 3 + col + 1}`,
        area: { type: 'Polygon' as const, coordinates: [[[west, south], [east, south], [east, north], [west, north], [west, south]]] },
      })
    }
  }
  return cells
}

/**
 * The demo catalog, its departments and routing districts (through the app's own functions),
 * and exactly `rows` synthetic requests with what the open-data feed reads: twelve services,
 * locations (1% without), open and closed, answers to the services' attributes (public and
 * not; a quarter answer none), status notes, zip codes, duplicates of earlier requests (2%),
 * and work orders for the routed services (5% passed on from another department first).
 * Plain SQL over a Database, so it loads PostGIS and the embedded database alike. The
 * requests are made again only when the table does not hold exactly `rows` of this loader's.
 */
export async function loadSyntheticRequests(database: Database, rows: number) {
  const { db } = database
  await loadDemoCatalog(db)
  const jurisdictionId = 'demo.open311.city'
  const webhooks = await createWebhookContext(loadConfig({ ...BENCH_WEBHOOK_ENV }))
  try {
    for (const code of new Set(Object.values(DEPARTMENT_OF_GROUP))) {
      if (!(await findDepartment(db, jurisdictionId, code).catch(() => null))) {
        await createDepartment(db, webhooks, { jurisdictionId, code, name: `${code[0]!.toUpperCase()}${code.slice(1)} Department` })
      }
    }
  } finally {
    await webhooks.agent.close()
  }
  const catalog = await queryRows<{ service_code: string; service_group: string }>(db, sql`select service_code, service_group from services where active order by id`)
  for (const service of catalog) {
    const department = DEPARTMENT_OF_GROUP[service.service_group]
    if (!department || UNROUTED.has(service.service_code)) continue
    await setServiceRoutes(db, jurisdictionId, service.service_code, [{ department }, ...districts().map((d) => ({ department, area: d.area, area_name: d.name }))])
  }

  const [state] = await queryRows<{ n: string; marker: string | null }>(
    db,
    sql`select (select count(*) from service_requests) as n, obj_description('service_requests'::regclass, 'pg_class') as marker`,
  )
  if (Number(state!.n) !== rows || state!.marker !== SYNTHETIC_DATA) {
    console.log(`# generating ${rows.toLocaleString()} synthetic requests …`)
    const started = performance.now()
    // Ids from 1 again, in generate_series order, so a duplicate can name an earlier id.
    await db.execute(sql`truncate service_requests restart identity cascade`)
    // A dense centre and a wider spread (sum of uniforms ≈ bell curve), over three years. The
    // answers come in four variants per service; the fourth answers nothing.
    await db.execute(sql`
      with answers as (
        select a.service_id, v.variant,
               jsonb_object_agg(a.code, case a.datatype
                 when 'singlevaluelist' then to_jsonb(a.values -> (v.variant % jsonb_array_length(a.values)) ->> 'key')
                 when 'multivaluelist' then jsonb_build_array(a.values -> (v.variant % jsonb_array_length(a.values)) ->> 'key')
                 when 'number' then to_jsonb(((v.variant + 1) * 15)::text)
                 when 'datetime' then to_jsonb('2026-0' || (v.variant + 1) || '-15T08:30:00Z')
                 else to_jsonb('Synthetic answer ' || v.variant) end) as answers
        from service_attributes a cross join generate_series(0, 2) v(variant)
        where a.variable
        group by a.service_id, v.variant)
      insert into service_requests (jurisdiction_id, service_id, status, detailed_status, status_notes, requested_at, updated_at,
                                    closed_at, expected_at, location, description, address, zipcode, attributes, channel, parent_request_id)
      select s.jurisdiction_id, s.id,
             case when t.closed then 'closed' else 'open' end,
             case when t.duplicate then 'duplicate' when t.closed then 'completed' else 'submitted' end,
             case when t.duplicate then 'Duplicate of an earlier report' when t.closed and g % 3 = 0 then 'Crew completed the work' end,
             now() - t.age, now() - t.age * t.progress,
             case when t.closed then now() - t.age * t.progress end,
             case when not t.closed and g % 4 = 0 then now() + (g % 30) * interval '1 day' end,
             case when g % 100 <> 0 then
               ST_SetSRID(ST_MakePoint(${CENTRE.long}::float8 + (random() + random() + random() - 1.5) * 0.16,
                                       ${CENTRE.lat}::float8 + (random() + random() + random() - 1.5) * 0.12), 4326)::geography end,
             'Synthetic request ' || g, g || ' Main St', '606' || lpad((g % 60)::text, 2, '0'),
             coalesce(answers.answers, '{}'::jsonb), (array['app', 'phone', 'web', 'chat'])[1 + g % 4],
             case when t.duplicate then 1 + floor(random() * (g - 1))::bigint end
      from generate_series(1, ${rows}::int) g
      cross join lateral (
        select age, duplicate or (age > interval '30 days' and random() < 0.85) as closed, random() as progress, duplicate
        from (select random() * interval '1095 days' + (g * 0) * interval '1 day' as age, g % 50 = 0 as duplicate) a) t
      cross join lateral (select id, jurisdiction_id from services where active order by id offset (g % 12) limit 1) s
      left join answers on answers.service_id = s.id and answers.variant = g % 4`)
    // One work order per request of a routed service, at its default route's department, done
    // once the request is closed; every twentieth was first with another department and passed on.
    await db.execute(sql`
      insert into work_orders (request_id, department_id, state, created_at, updated_at)
      select sr.id, r.department_id, case when sr.status = 'closed' then 'completed' else 'accepted' end, sr.requested_at, sr.updated_at
      from service_requests sr join service_routes r on r.service_id = sr.service_id and r.area is null
      union all
      select sr.id, other.id, 'reassigned', sr.requested_at, sr.requested_at
      from service_requests sr join service_routes r on r.service_id = sr.service_id and r.area is null
      join lateral (select d.id from departments d where d.id <> r.department_id and d.code <> 'bench' order by d.id limit 1) other on true
      where sr.id % 20 = 0`)
    await db.execute(sql.raw(`comment on table service_requests is '${SYNTHETIC_DATA}'`))
    console.log(`# generated in ${Math.round((performance.now() - started) / 1000)} s`)
  }
  await db.execute(sql`vacuum analyze service_requests`)
  await db.execute(sql`vacuum analyze work_orders`)
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

/**
 * The embedded default: no DATABASE_URL, the database under `dataDir` (loaded beforehand by
 * the bench: PGlite is one process's). Otherwise as deployedEnv.
 */
export function embeddedEnv(port: number, dataDir: string): Record<string, string> {
  const { DATABASE_URL: _postgres, ...env } = deployedEnv(port)
  return { ...env, DATA_DIR: dataDir }
}

export interface RunningServer {
  base: string
  /** The server process's pid, e.g. to read its memory from /proc. */
  pid: number
  stop(): Promise<void>
}

/**
 * `node dist/server.js` from the package at `root`, as the Dockerfile starts it, with its log
 * lines appended to `logFile` (as a container's stdout goes to a file or a collector, not to a
 * terminal). `env`: the settings it changes from the defaults. Resolves once /healthz answers.
 */
export async function startDeployedServer(root: string, port: number, logFile: string, env = deployedEnv(port)): Promise<RunningServer> {
  const log = openSync(logFile, 'a')
  const child = spawn('node', ['dist/server.js'], { cwd: root, env: { ...clean(process.env), ...env }, stdio: ['ignore', log, log] })
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
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** The measuring process's environment without settings that would change the server's defaults. */
export function clean(env: NodeJS.ProcessEnv): Record<string, string> {
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
