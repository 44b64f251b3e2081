/**
 * What the bench scripts share: the synthetic data set, the server started as deployed, and
 * child-process plumbing.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { type SQL, sql } from 'drizzle-orm'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { type Database, type Db, openDatabase, queryRows } from '../src/db/database.js'
import { type ApiKeyScope, createApiKey } from '../src/domain/api-keys/api-keys.js'
import { importCatalog } from '../src/domain/catalog/catalog.js'
import type { Catalog } from '../src/domain/catalog/catalog-schema.js'
import { validateCatalog } from '../src/domain/catalog/validate-catalog.js'
import { createDepartment, findDepartment, setServiceRoutes } from '../src/domain/departments/departments.js'
import demoCatalog from '../src/domain/demo/demo-catalog.json' with { type: 'json' }
import { createWebhookContext } from '../src/integrations/webhooks/context.js'
import { BENCH_WEBHOOK_ENV } from './webhooks.js'
import { SERVER_ACTOR, systemActor } from '../src/domain/audit/audit.js'

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
/** The URL of database `name` on the bench's server. */
export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}
// BENCH_DB_NAME: another database beside it, e.g. for two branches' runs on one server (their migrations differ).
const FEED_DATABASE = process.env.BENCH_DB_NAME ?? 'open311_bench'
/** The feed's data set (FEED_DATA): the Open311 reads, the POST, webhooks and the open-data feed. */
export const benchUrl = databaseUrl(FEED_DATABASE)
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
 * What a synthetic data set is made of. Two shapes share the loader: the feed's (the Open311
 * reads, the POST and the open-data feed: twelve services over three years) and the reports'
 * (issue 15: thirty services over thirteen months with the work orders' whole lifecycle and
 * public notes). Each lives in its own database, so making one never replaces the other.
 */
export interface SyntheticShape {
  database: string
  /**
   * Written on service_requests (a comment): a set left by an older loader or another shape,
   * with the same row count but not what this one writes, is made again.
   */
  marker: string
  /** requested_at spread uniformly over this many days ending now. */
  days: number
  /** Services beyond the demo catalog's, each a copy of a routed one (its attributes, another code). */
  extraServices: number
  /** The requests spread over the first N active services by id; null: all of them. */
  services: number | null
  /** Services that get no routes (so no work orders). */
  unrouted: ReadonlySet<string>
  /**
   * Per request (g, its row number): `age` (interval before now), `duplicate`, `closed` and
   * `close_after` (closed_at − requested_at), as a lateral subquery named t.
   */
  times: SQL
  /** The request's channel, an expression over g. */
  channel: SQL
  /** Work orders acknowledged, completed, due and overdue, with areas, and public notes (the reports' figures). */
  lifecycle: boolean
}

/**
 * The feed's shape: graffiti (the POST scenario's service) and pothole (the webhook scenario's,
 * which routes it to its own department) get no routes: a route would add work orders and
 * events to every POST and change what those scenarios measure. Requests older than 30 days
 * close at 85%, at a uniform point of their age; four channels in turn.
 */
export const FEED_DATA: SyntheticShape = {
  database: FEED_DATABASE,
  marker: 'open311 bench data v2: attributes, duplicates, work orders, routing districts',
  days: 1095,
  extraServices: 0,
  services: 12,
  unrouted: new Set(['graffiti', 'pothole']),
  times: sql`(
    select age, duplicate, duplicate or (age > interval '30 days' and random() < 0.85) as closed, age * (1 - random()) as close_after
    from (select random() * interval '1095 days' + (g * 0) * interval '1 day' as age, g % 50 = 0 as duplicate) a) t`,
  channel: sql`(array['app', 'phone', 'web', 'chat'])[1 + g % 4]`,
  lifecycle: false,
}

/**
 * A log-normal duration in hours (median `median`, spread `sigma`): most are near the median,
 * a long tail reaches many times it. Box–Muller over two uniforms; 1 − random() is never 0.
 */
const logNormalHours = (median: number, sigma: number) =>
  sql.raw(`(interval '1 hour' * exp(ln(${median}) + ${sigma} * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))`)

/**
 * The reports' shape (issue 15): 30 services over 13 months ending now. 3% duplicates (every
 * 31st: a number prime to the 30 services, so each has its share), closed
 * within hours; of the others 88% close once their close time (log-normal, median 30 h, p90
 * ~7 days, p99 ~a month) has passed, so recent requests are more often open. Channels skewed
 * as a city's are: web 40%, phone 30%, app 18% (+2% `api`, written by instances older than
 * channels, which reports count as app), the rest spread, 0.5% none.
 */
export const REPORTS_DATA: SyntheticShape = {
  database: 'open311_bench_reports',
  marker: 'open311 bench reports data v1: 30 services, work-order lifecycle, areas, notes, templates',
  days: 395,
  extraServices: 17,
  services: null,
  unrouted: new Set(),
  times: sql`(
    select age, duplicate, close_after, duplicate or (random() < 0.88 and close_after < age) as closed
    from (select random() * interval '395 days' + (g * 0) * interval '1 day' as age, g % 31 = 0 as duplicate,
                 case when g % 31 = 0 then random() * interval '8 hours' else ${logNormalHours(30, 1.4)} end as close_after) a) t`,
  channel: sql`(case when c < 0.40 then 'web' when c < 0.70 then 'phone' when c < 0.88 then 'app' when c < 0.90 then 'api'
                     when c < 0.93 then 'chat' when c < 0.955 then 'email' when c < 0.97 then 'walk_in' when c < 0.98 then 'text'
                     when c < 0.99 then 'social' when c < 0.995 then 'internal' end)`,
  lifecycle: true,
}

/** The bench database of `shape` with exactly `rows` synthetic requests; returns a fresh API key (`scopes`: the default ones). */
export async function prepareDatabase(rows: number, shape = FEED_DATA, scopes?: ApiKeyScope[]): Promise<string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  const exists = await admin.query('select 1 from pg_database where datname = $1', [shape.database])
  if (!exists.rowCount) await admin.query(`CREATE DATABASE ${shape.database}`)
  await admin.end()

  const database = await openDatabase({ databaseUrl: databaseUrl(shape.database), logger: quiet, poolSize: 2 })
  try {
    await database.migrate()
    await loadSyntheticRequests(database, rows, shape)
    return (await createApiKey(database.db, { name: `bench-${Date.now()}`, ...(scopes ? { scopes } : {}) }, SERVER_ACTOR)).key
  } finally {
    await database.close()
  }
}

/** Six departments, by catalog group (general-feedback's group has none: its requests get no work order). */
const DEPARTMENT_OF_GROUP: Record<string, string> = {
  'Streets & Sidewalks': 'streets',
  Sanitation: 'sanitation',
  'Parks & Trees': 'parks',
  Water: 'water',
  'Code Enforcement': 'code',
  'Animal Services': 'animals',
}

/** A 3 × 3 grid of named districts over the city (the points spread about ±0.24° long, ±0.18° lat). */
const GRID = { west: CENTRE.long - 0.27, south: CENTRE.lat - 0.21, width: 0.18, height: 0.14 }
function districts() {
  const cells = []
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) {
      const [west, south] = [GRID.west + col * GRID.width, GRID.south + row * GRID.height]
      const [east, north] = [west + GRID.width, south + GRID.height]
      cells.push({
        name: `District ${row * 3 + col + 1}`,
        area: { type: 'Polygon' as const, coordinates: [[[west, south], [east, south], [east, north], [west, north], [west, south]]] },
      })
    }
  }
  return cells
}

/**
 * The demo catalog and, for the reports, `extra` copies of its routed services (another code
 * and name, the same group and attributes). Half the services get a service level (48 h to 10
 * days, clock hours: due_at is then plain arithmetic in the loader), as open311_work_order_due
 * would compute it.
 */
function syntheticCatalog(extra: number): Catalog {
  const catalog = structuredClone(demoCatalog) as unknown as Catalog
  if (extra === 0) return catalog
  const routed = catalog.services.filter((s) => DEPARTMENT_OF_GROUP[s.group])
  for (let i = 0; i < extra; i++) {
    const model = routed[i % routed.length]!
    catalog.services.push({ ...structuredClone(model), service_code: `${model.service_code}-${2 + Math.floor(i / routed.length)}`, service_name: `${model.service_name} (${2 + Math.floor(i / routed.length)})` })
  }
  const levels = [48, 72, 120, 240]
  catalog.services.forEach((s, i) => {
    if (i % 2 === 0) s.service_level = { hours: levels[(i / 2) % levels.length]! }
  })
  return catalog
}

/**
 * The catalog, its departments and routing districts (through the app's own functions), and
 * exactly `rows` synthetic requests: locations (1% without; a dense centre and a wider spread),
 * open and closed, answers to the services' attributes (public and not; a quarter answer
 * none), status notes, zip codes, channels, duplicates of earlier requests, and work orders for
 * the routed services (5% passed on from another department first). The reports' shape adds
 * the lifecycle (lifecycleRows). Plain SQL over a Database, so it loads PostGIS and the
 * embedded database alike. The requests are made again only when the table does not hold
 * exactly `rows` of this shape's.
 */
/** The bench's own writes, as the audit trail names them. */
const BENCH_ACTOR = systemActor('bench')

export async function loadSyntheticRequests(database: Database, rows: number, shape = FEED_DATA) {
  const { db } = database
  await importCatalog(db, validateCatalog(syntheticCatalog(shape.extraServices), 'bench catalog'), {}, SERVER_ACTOR)
  const jurisdictionId = 'demo.open311.city'
  const webhooks = await createWebhookContext(loadConfig({ ...BENCH_WEBHOOK_ENV }))
  try {
    for (const code of new Set(Object.values(DEPARTMENT_OF_GROUP))) {
      if (!(await findDepartment(db, jurisdictionId, code).catch(() => null))) {
        await createDepartment(db, webhooks, { jurisdictionId, code, name: `${code[0]!.toUpperCase()}${code.slice(1)} Department` }, BENCH_ACTOR)
      }
    }
  } finally {
    await webhooks.agent.close()
  }
  const catalog = await queryRows<{ service_code: string; service_group: string }>(db, sql`select service_code, service_group from services where active order by id`)
  for (const [i, service] of catalog.entries()) {
    const department = DEPARTMENT_OF_GROUP[service.service_group]
    if (!department || shape.unrouted.has(service.service_code)) continue
    // The reports' shape routes every other service by district, the rest by their default alone.
    const areas = shape.lifecycle && i % 2 === 1 ? [] : districts().map((d) => ({ department, area: d.area, area_name: d.name }))
    await setServiceRoutes(db, jurisdictionId, service.service_code, [{ department }, ...areas], BENCH_ACTOR)
  }

  const [state] = await queryRows<{ n: string; marker: string | null }>(
    db,
    sql`select (select count(*) from service_requests) as n, obj_description('service_requests'::regclass, 'pg_class') as marker`,
  )
  if (Number(state!.n) !== rows || state!.marker !== shape.marker) {
    console.log(`# generating ${rows.toLocaleString()} synthetic requests (${shape.database}) …`)
    const started = performance.now()
    await bulkLoad(db, ['service_requests', 'work_orders', 'request_updates'], async (db) => {
      // Ids from 1 again, in generate_series order, so a duplicate can name an earlier id.
      await db.execute(sql`truncate service_requests restart identity cascade`)
      // A dense centre and a wider spread (sum of uniforms ≈ bell curve). The answers come in
      // four variants per service; the fourth answers nothing.
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
          group by a.service_id, v.variant),
        catalog as (
          select array_agg(id order by id) as ids, min(jurisdiction_id) as jurisdiction_id
          from (select id, jurisdiction_id from services where active order by id limit ${shape.services}) s)
        insert into service_requests (jurisdiction_id, service_id, status, detailed_status, status_notes, requested_at, updated_at,
                                      closed_at, expected_at, location, description, address, zipcode, attributes, channel, parent_request_id)
        select catalog.jurisdiction_id, s.id,
               case when t.closed then 'closed' else 'open' end,
               case when t.duplicate then 'duplicate' when t.closed then 'completed' else 'submitted' end,
               case when t.duplicate then 'Duplicate of an earlier report' when t.closed and g % 3 = 0 then 'Crew completed the work' end,
               now() - t.age, case when t.closed then now() - t.age + t.close_after else now() - t.age * random() end,
               case when t.closed then now() - t.age + t.close_after end,
               case when not t.closed and g % 4 = 0 then now() + (g % 30) * interval '1 day' end,
               case when g % 100 <> 0 then
                 ST_SetSRID(ST_MakePoint(${CENTRE.long}::float8 + (random() + random() + random() - 1.5) * 0.16,
                                         ${CENTRE.lat}::float8 + (random() + random() + random() - 1.5) * 0.12), 4326)::geography end,
               'Synthetic request ' || g, g || ' Main St', '606' || lpad((g % 60)::text, 2, '0'),
               coalesce(answers.answers, '{}'::jsonb), ${shape.channel},
               case when t.duplicate then 1 + floor(random() * (g - 1))::bigint end
        from generate_series(1, ${rows}::int) g
        cross join catalog
        cross join lateral ${shape.times}
        cross join lateral (select catalog.ids[1 + g % cardinality(catalog.ids)] as id, random() + (g * 0) as c) s
        left join answers on answers.service_id = s.id and answers.variant = g % 4`)
      console.log(`# requests in ${Math.round((performance.now() - started) / 1000)} s`)
      if (shape.lifecycle) await lifecycleRows(db)
      else {
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
      }
      await db.execute(sql.raw(`comment on table service_requests is '${shape.marker}'`))
    })
    console.log(`# generated in ${Math.round((performance.now() - started) / 1000)} s`)
  }
  for (const table of ['service_requests', 'work_orders', 'request_updates']) await db.execute(sql.raw(`vacuum analyze ${table}`))
}

/**
 * Runs `work`, bulk inserts into `tables`, in one transaction with the tables' secondary indexes
 * dropped and built again at the end (one sort each instead of millions of insertions: the
 * GiST index alone made most of a 10M load), and without triggers (session_replication_role =
 * replica): the guards' and the foreign keys' per-row checks, which the loader's rows satisfy
 * by construction, and the reports' change queue, whose rollups the bench rebuilds from the
 * base tables afterwards. A failure rolls it all back, indexes included.
 */
async function bulkLoad(db: Db, tables: string[], work: (tx: Db) => Promise<void>) {
  await db.transaction(async (tx) => {
    await tx.execute(sql`set local session_replication_role = replica`)
    await tx.execute(sql`set local maintenance_work_mem = '1GB'`)
    const indexes = await queryRows<{ name: string; definition: string }>(
      tx,
      sql`select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as definition
          from pg_index i
          where i.indrelid = any(${`{${tables.join(',')}}`}::regclass[])
            and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`,
    )
    for (const index of indexes) await tx.execute(sql.raw(`drop index ${index.name}`))
    await work(tx)
    const started = performance.now()
    for (const index of indexes) await tx.execute(sql.raw(index.definition))
    console.log(`# ${indexes.length} indexes built in ${Math.round((performance.now() - started) / 1000)} s`)
  })
}

/** Pre-approved answers the notes name (~60% of public notes come from one). */
const TEMPLATES = [
  ['received', 'We have received your request {{request_id}} and passed it to the crew.'],
  ['scheduled', 'A crew is scheduled; expected by {{expected_date}}.'],
  ['completed', 'The work for request {{request_id}} is complete. Thank you.'],
  ['need-info', 'We need more details about the location; please reply to this request.'],
  ['seasonal', 'This work is done in season; your {{service_name}} request is queued.'],
]

/**
 * The reports' work orders and notes (issue 15's figures), from the requests just written.
 * Every request of a routed service but duplicates (linked at intake: no work order) gets one
 * work order at its service's department, in the district its point falls in when the service
 * routes by district (the grid's arithmetic, the same cells as districts()), else by the default
 * route (no area). Every 19th (prime to the 30 services) was first with another department, half
 * of which had acknowledged it, and passed it on after
 * 30 min to a day (ids in that order: the request's latest work order is the final one).
 * Acknowledged (first accepted or later) after a log-normal time (median 3 h, p90 ~20 h) for all
 * completed ones (3% straight to completed: acknowledged then) and the open ones past `sent`;
 * completed when the request closed; due after the service's clock hours; overdue a few minutes
 * after due when open past it or completed after it. Public and internal notes by departments
 * (at acknowledgement, 75%; at completion, 50%) and operators (12% of requests), 60% from a
 * template; of the departments' others half are their own words, half plain status lines.
 */
async function lifecycleRows(db: Db) {
  // The rollups of a set made anew are stale until rebuilt: the reports bench rebuilds them
  // when report_daily does not say it was rebuilt since (reports.ts).
  await db.execute(sql`comment on table report_daily is null`)
  await db.execute(sql`
    insert into response_templates (jurisdiction_id, code, public_text)
    select 'demo.open311.city', code, text from (values ${sql.join(TEMPLATES.map(([code, text]) => sql`(${code}, ${text})`), sql`, `)}) t(code, text)
    on conflict do nothing`)
  const reassignAfter = sql`least(interval '1 minute' * (30 + (sr.id * 2654435761) % 1440), (coalesce(sr.closed_at, now()) - sr.requested_at) * 0.3)`
  const started = performance.now()
  await db.execute(sql`
    insert into work_orders (request_id, department_id, state, created_at, updated_at, acknowledged_at, due_at, reason)
    select sr.id, other.id, 'reassigned', sr.requested_at, sr.requested_at + ${reassignAfter},
           case when random() < 0.5 then sr.requested_at + ${reassignAfter} * random() end,
           sr.requested_at + s.sla_hours * interval '1 hour', 'Not ours: another department''s street'
    from service_requests sr
    join services s on s.id = sr.service_id
    join service_routes r on r.service_id = sr.service_id and r.area is null
    join lateral (select d.id from departments d where d.id <> r.department_id and d.code <> 'bench' order by d.id limit 1) other on true
    where sr.id % 19 = 0 and sr.parent_request_id is null`)
  await db.execute(sql`
    with by_area as (select array_agg(distinct service_id) as ids from service_routes where area is not null)
    insert into work_orders (request_id, department_id, state, created_at, updated_at, acknowledged_at, completed_at, due_at, overdue_at, area_name)
    select w.request_id, w.department_id, w.state, w.created_at,
           coalesce(w.completed_at, w.acknowledged_at, w.created_at), w.acknowledged_at, w.completed_at, w.due_at,
           case when w.due_at < coalesce(w.completed_at, now()) then least(w.due_at + interval '1 minute' * (1 + 4 * random()), coalesce(w.completed_at, now())) end,
           w.area_name
    from (
      select sr.id as request_id, r.department_id, o.created_at, o.state, sr.closed_at as completed_at,
             o.created_at + s.sla_hours * interval '1 hour' as due_at,
             case when o.state = 'completed' then
                    case when random() < 0.03 then sr.closed_at else least(o.created_at + ${logNormalHours(3, 1.5)}, sr.closed_at) end
                  when o.state not in ('pending', 'sent') then o.created_at + least(${logNormalHours(3, 1.5)}, (now() - o.created_at) * 0.9) end
               as acknowledged_at,
             case when sr.service_id = any(by_area.ids) and cell.col between 0 and 2 and cell.row between 0 and 2
                  then 'District ' || (cell.row * 3 + cell.col + 1) end as area_name
      from service_requests sr
      cross join by_area
      join services s on s.id = sr.service_id
      join service_routes r on r.service_id = sr.service_id and r.area is null
      cross join lateral (
        select sr.requested_at + case when sr.id % 19 = 0 then ${reassignAfter} else interval '0' end as created_at,
               case when sr.status = 'closed' then 'completed'
                    else (array['pending', 'sent', 'accepted', 'accepted', 'scheduled', 'in_progress', 'in_progress', 'on_hold'])[1 + floor(random() * 8)::int] end as state) o
      left join lateral (
        select floor((ST_X(sr.location::geometry) - ${GRID.west}::float8) / ${GRID.width}::float8)::int as col,
               floor((ST_Y(sr.location::geometry) - ${GRID.south}::float8) / ${GRID.height}::float8)::int as row) cell on true
      where sr.parent_request_id is null) w`)
  console.log(`# work orders in ${Math.round((performance.now() - started) / 1000)} s`)
  const notesStarted = performance.now()
  // A note is an answer (is_answer) when people wrote it or chose a template, as request-notes.ts
  // and derived-status.ts mark them: every public operator note, and the department's updates
  // with a template or words of their own; the rest of the department's are status lines.
  await db.execute(sql`
    with templates as (select array_agg(id order by id) as ids, array_agg(public_text order by id) as texts from response_templates),
    notes as (
      select w.request_id, w.department_id, w.id as work_order_id, 'department' as source, 'open' as status, 'in_progress' as detailed_status,
             w.acknowledged_at as created_at, random() < 0.9 as is_public, random() < 0.5 as own_words,
             'Crew assigned; we will be on site this week.' as free_text, 'In progress' as status_line
      from work_orders w where w.acknowledged_at is not null and w.state <> 'reassigned' and random() < 0.75
      union all
      select w.request_id, w.department_id, w.id, 'department', 'closed', 'completed', w.completed_at, true, random() < 0.5,
             'Work completed; the site is clear.', 'Completed'
      from work_orders w where w.completed_at is not null and random() < 0.5
      union all
      select sr.id, null, null, 'operator', sr.status, sr.detailed_status,
             sr.requested_at + least(${logNormalHours(2, 1)}, (coalesce(sr.closed_at, now()) - sr.requested_at) * 0.5), random() < 0.7, true,
             'Called the reporter back about the location.', null
      from service_requests sr where random() < 0.12)
    insert into request_updates (request_id, status, detailed_status, description, is_public, is_answer, source, department_id, work_order_id,
                                 template_id, created_at, changed_at)
    select n.request_id, n.status, n.detailed_status,
           case when pick.i is not null then templates.texts[pick.i] when n.own_words then n.free_text else n.status_line end,
           n.is_public, n.is_public and (pick.i is not null or n.own_words), n.source, n.department_id, n.work_order_id,
           templates.ids[pick.i], n.created_at, n.created_at
    from notes n cross join templates
    cross join lateral (select case when random() < 0.6 then 1 + floor(random() * cardinality(templates.ids))::int end + (n.request_id * 0)::int as i) pick`)
  console.log(`# notes in ${Math.round((performance.now() - notesStarted) / 1000)} s`)
}

/**
 * The only settings the bench changes from the defaults, each because a measurement needs it:
 * the PostGIS database (production's backend), the port, no demo data on top of the synthetic
 * set, POST rate limits out of the way (a load generator is one IP sending thousands of POSTs a
 * second), and webhooks allowed to the loopback receiver. Log level, pool size, prepared
 * statements and everything else stay at their defaults: the server as deployed.
 */
export function deployedEnv(port: number, url = benchUrl): Record<string, string> {
  return {
    DATABASE_URL: url,
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
