/**
 * Duplicates at intake (issue 15): the POST rate with the search on versus off, and the cost
 * of the candidate search itself at the bench's size. Both sides post graffiti reports at
 * points drawn like the synthetic city's (a dense centre, a bell-shaped spread), so the search
 * runs where requests really are; "on" is graffiti with policy suggest, 50 m, 30 days, "off"
 * the same service with the policy off — switched between runs in the database, as a catalog
 * import would (catalog_changed_at moves, every instance reloads).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import type pg from 'pg'
import type { Database } from '../src/db/database.js'
import { queryRows } from '../src/db/database.js'
import { duplicateCandidates, type DuplicateSearch, MAX_POSSIBLE_DUPLICATES } from '../src/domain/requests/duplicate-search.js'
import { CENTRE, postForm } from './setup.js'

export const DUPLICATE_SEARCH: DuplicateSearch = { policy: 'suggest', radiusM: 50, windowDays: 30, hideDistance: false }

/** A point as the synthetic loader draws them (bench/setup.ts): the sum of three uniforms around the centre. */
export function cityPoint() {
  const bell = () => Math.random() + Math.random() + Math.random() - 1.5
  return { lat: CENTRE.lat + bell() * 0.12, long: CENTRE.long + bell() * 0.16 }
}

/** The POST's form at a fresh city point (the bench's graffiti report otherwise). */
export function formAtCityPoint(apiKey: string): string {
  const p = cityPoint()
  return postForm(apiKey, { email: 'bench@example.org', lat: String(p.lat), long: String(p.long) }).toString()
}

/**
 * Deletes what the bench posted since the table held `lastId` (and their history, reporters and
 * removal entries) and vacuums: each run of the pair starts from the same 1M requests. Without
 * it the runs pile ~5,000 graffiti reports a run into the last minutes of the 30-day window,
 * twenty times the data set's own density there by the fifth round, and the "on" side searched
 * a city that does not exist (its rate fell round by round while "off" held steady).
 */
export async function deleteBenchPosts(pool: pg.Pool, lastId: number) {
  await pool.query('delete from service_requests where id > $1', [lastId])
  await pool.query('delete from open_data_removals where request_id > $1', [lastId])
  await pool.query('vacuum (analyze) service_requests')
}

/**
 * Sets graffiti's policy (suggest 50 m / 30 d, or off) and moves the catalog's version, then
 * waits out the server's jurisdiction copy (1 s, docs/architecture.md) so its next POST runs
 * with the new catalog; the autocannon warm-up that follows gives it two more seconds.
 */
export async function setGraffitiPolicy(pool: pg.Pool, on: boolean) {
  await pool.query(
    `update services set duplicate_policy = $1, duplicate_radius_m = $2, duplicate_window_days = $3 where service_code = 'graffiti'`,
    on ? ['suggest', DUPLICATE_SEARCH.radiusM, DUPLICATE_SEARCH.windowDays] : ['off', null, null],
  )
  await pool.query(`update jurisdictions set catalog_changed_at = greatest(now(), catalog_changed_at + interval '1 millisecond')`)
  await sleep(1500)
}

/**
 * EXPLAIN ANALYZE of the candidate search as the POST runs it (the same fragment), at `points`
 * city points: one plan printed whole (the index it uses), and the execution times' median and
 * p99 across the points — as a custom plan, and as the generic plan a named prepared statement
 * may settle on after five runs (PREPARE, plan_cache_mode = force_generic_plan).
 */
export async function explainCandidateSearch(database: Database, pool: pg.Pool, points = 200) {
  const [service] = await queryRows<{ id: number; jurisdiction_id: string }>(database.db, sql`select id, jurisdiction_id from services where service_code = 'graffiti'`)
  const [counts] = await queryRows<{ total: string; in_window: string }>(
    database.db,
    sql`select count(*) as total, count(*) filter (where status = 'open' and parent_request_id is null and requested_at >= now() - interval '30 days') as in_window
        from service_requests where service_id = ${service!.id}`,
  )
  const search = (p: { lat: number; long: number }) =>
    duplicateCandidates({
      jurisdictionId: service!.jurisdiction_id,
      serviceId: Number(service!.id),
      point: sql`ST_SetSRID(ST_MakePoint(${p.long}::float8, ${p.lat}::float8), 4326)::geography`,
      search: DUPLICATE_SEARCH,
      asOf: sql`now()`,
      limit: MAX_POSSIBLE_DUPLICATES,
    })
  const client = await pool.connect()
  try {
    const dialect = new PgDialect()
    const template = dialect.sqlToQuery(search(CENTRE))
    await client.query(`prepare candidate_search as ${template.sql}`)
    const timed = async (generic: boolean) => {
      await client.query(`set plan_cache_mode = ${generic ? 'force_generic_plan' : 'force_custom_plan'}`)
      const run = async (p: { lat: number; long: number }) => {
        const { params } = dialect.sqlToQuery(search(p))
        const args = params.map((v) => (typeof v === 'number' ? String(v) : client.escapeLiteral(String(v)))).join(', ')
        return (await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) execute candidate_search(${args})`)).rows.map((r) => r['QUERY PLAN'])
      }
      const plan = await run(CENTRE)
      const ms: number[] = []
      for (let i = 0; i < points; i++) ms.push(Number(/Execution Time: ([\d.]+) ms/.exec((await run(cityPoint())).join('\n'))?.[1]))
      ms.sort((a, b) => a - b)
      return { plan, median: ms[Math.floor(ms.length / 2)]!, p99: ms[Math.floor(ms.length * 0.99)]! }
    }
    const custom = await timed(false)
    const generic = await timed(true)
    return { counts: counts!, custom, generic }
  } finally {
    await client.query('deallocate candidate_search').catch(() => {})
    await client.query('reset plan_cache_mode').catch(() => {})
    client.release()
  }
}
