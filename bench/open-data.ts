/**
 * The open-data feed's benchmark (issue 14), called from run.ts against the server it started:
 *
 * - full exports, CSV and GeoJSON, streamed with undici and no Accept-Encoding (so no
 *   compression), against `COPY (SELECT <the feed's columns>) TO STDOUT WITH CSV` through pg on
 *   the same database: the columns are REQUEST_FIELDS' raw values, the rows the feed's own
 *   FROM/WHERE/ORDER BY (feedRows) below the same kind of horizon. Rounds alternate, the ratio
 *   is per round. During each CSV export the server's RSS is sampled every 100 ms.
 * - where the time goes: the same COPY without the three per-row subqueries (departments,
 *   areas, attributes), and COPY of the feed's own rendered CSV lines in one query.
 * - a 1000-row cursor page past row 900,000 against the first page (same filters), autocannon.
 * - the plan of one deep keyset batch, as the server sends it, by auto_explain.
 * - the embedded database: the same loader into a temporary DATA_DIR, then a full CSV export.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type SQL, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { PgDialect } from 'drizzle-orm/pg-core'
import pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import { request } from 'undici'
import { type Database, openDatabase, queryRows } from '../src/db/database.js'
import * as schema from '../src/db/schema.js'
import { resolveJurisdiction } from '../src/domain/jurisdictions.js'
import { decodeCursor, encodeCursor } from '../src/domain/open-data/cursor.js'
import { microsOf } from '../src/domain/open-data/horizon.js'
import { type FeedPlan, feedChunks, feedRows, planFeed } from '../src/domain/open-data/keyset-feed.js'
import { parseRequestFeed, REQUEST_FEED, type RequestFeedFilter } from '../src/domain/open-data/request-feed.js'
import { csvLine } from '../src/domain/open-data/feed-fields.js'
import { REQUEST_FIELDS } from '../src/domain/open-data/request-fields.js'
import { benchUrl, embeddedEnv, loadSyntheticRequests, median, quiet, startDeployedServer } from './setup.js'

/** One line of run.ts's table (a rate in the req/s column, named in the scenario). */
export interface OpenDataFigure {
  scenario: string
  reqPerSec: number
  p50: number
  p99: number
  note?: string
}

/** What run.ts lends: its scenario filter, its table, and its alternating autocannon pair. */
export interface OpenDataBench {
  base: string
  serverPid: number
  /** Requests in the bench database: the deep page starts past 90% of them (row 900,000 of 1M). */
  rows: number
  /** A free port for the embedded server. */
  port: number
  embeddedRows: number
  /** Rounds of the three full exports: each exports every row three times, minutes at 1M. */
  exportRounds: number
  selected(...scenarios: string[]): boolean
  report(figure: OpenDataFigure): void
  /** Two autocannon scenarios at `connections`, alternating; the second's note has the per-round ratios (second / first req/s). */
  alternatingCannon(first: [string, string], second: [string, string], connections: number): Promise<void>
}

const CSV_EXPORT = 'open-data: full CSV export'
const GEOJSON_EXPORT = 'open-data: full GeoJSON export'
const COPY = 'open-data: COPY (SELECT <the same columns>) TO STDOUT WITH CSV'
const COPY_NO_SUBQUERIES = 'open-data: the same COPY without the per-row subqueries (departments, areas, attributes)'
const COPY_RENDERED = "open-data: COPY of the feed's rendered CSV lines, one query"
const FIRST_PAGE = 'open-data: first 1000-row page (CSV), 8 connections'
const deepRow = (rows: number) => Math.floor(rows * 0.9)
const deepPageScenario = (rows: number) => `open-data: 1000-row page past row ${deepRow(rows).toLocaleString('en-US')} (CSV), 8 connections`
const EMBEDDED_EXPORT = 'open-data: embedded database, full CSV export'
const EXPLAIN_FILE = 'bench/.results/open-data-explain.txt'

/** Counts `needle` in a byte stream, across chunk boundaries. */
function occurrences(needle: string) {
  const bytes = Buffer.from(needle)
  let carry = Buffer.alloc(0)
  let count = 0
  return {
    add(chunk: Buffer) {
      const text = carry.length ? Buffer.concat([carry, chunk]) : chunk
      for (let at = text.indexOf(bytes); at !== -1; at = text.indexOf(bytes, at + bytes.length)) count++
      // A needle cut by the chunk boundary is found with the next chunk; one wholly inside the
      // carried tail was counted already and cannot match again (the tail is shorter than it).
      carry = Buffer.from(text.subarray(Math.max(0, text.length - bytes.length + 1)))
    },
    get count() {
      return count
    },
  }
}

interface Transfer {
  seconds: number
  firstByteMs: number
  bytes: number
  /** Lines or features counted in the body, less `skip` (the synthetic data has no line breaks inside values). */
  rows: number
}

/** Reads a byte stream to its end, counting bytes and `needle`, timed from `started`. */
async function consume(body: AsyncIterable<Buffer>, needle: string, started: number, skip = 0): Promise<Transfer> {
  const counter = occurrences(needle)
  let bytes = 0
  let firstByteMs = Number.NaN
  for await (const chunk of body) {
    if (bytes === 0) firstByteMs = performance.now() - started
    bytes += chunk.length
    counter.add(chunk)
  }
  return { seconds: (performance.now() - started) / 1000, firstByteMs, bytes, rows: counter.count - skip }
}

/** A whole feed through undici, without Accept-Encoding: the plain bytes, as a harvester without gzip gets them. */
async function download(url: string, needle: string, skip = 0): Promise<Transfer> {
  const started = performance.now()
  const res = await request(url)
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${await res.body.text()}`)
  return consume(res.body as AsyncIterable<Buffer>, needle, started, skip)
}

/** A whole CSV feed (or page): rows are lines after the header. */
const downloadCsv = (url: string) => download(url, '\r\n', 1)

/** VmRSS of a process, in bytes. */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat, in clock ticks of 1/100 s). */
async function cpuSecondsOf(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

interface Watched<T> {
  result: T
  rssBefore: number
  rssPeak: number
  cpuSeconds: number
}

/** Runs `work` while sampling `pid`'s RSS every 100 ms; also its CPU time over the work. */
async function watching<T>(pid: number, work: () => Promise<T>): Promise<Watched<T>> {
  const rssBefore = await rssOf(pid)
  const cpuBefore = await cpuSecondsOf(pid)
  let rssPeak = rssBefore
  const sampler = setInterval(() => {
    rssOf(pid).then((rss) => (rssPeak = Math.max(rssPeak, rss)), () => {})
  }, 100)
  try {
    const result = await work()
    rssPeak = Math.max(rssPeak, await rssOf(pid))
    return { result, rssBefore, rssPeak, cpuSeconds: (await cpuSecondsOf(pid)) - cpuBefore }
  } finally {
    clearInterval(sampler)
  }
}

/**
 * COPY (`select`) TO STDOUT WITH CSV through pg; rows counted by `needle`: the line end, or for
 * a select of whole CSV lines (quoted by COPY, with their own CRLF inside) what ends each.
 */
async function copyCsv(select: string, needle = '\n'): Promise<Transfer> {
  const client = new pg.Client({ connectionString: benchUrl })
  await client.connect()
  try {
    const started = performance.now()
    return await consume(client.query(copyTo(`COPY (${select}) TO STDOUT WITH CSV`)), needle, started)
  } finally {
    await client.end()
  }
}

/** SQL text with its values written in (COPY takes no parameters). */
const inlined = (query: SQL) => new PgDialect().sqlToQuery(query.inlineParams()).sql

const mb = (bytes: number) => Math.round(bytes / 1048576)
const perSecond = (t: Transfer) => Math.round(t.rows / t.seconds)
const describe = (t: Transfer) => `${t.rows.toLocaleString('en-US')} rows, ${mb(t.bytes)} MB in ${t.seconds.toFixed(1)} s, first byte ${Math.round(t.firstByteMs)} ms`

/** The feed as a whole, its horizon taken now, as the server plans a download without `limit`. */
async function wholeFeed(database: Database, limit?: number) {
  const jurisdiction = await resolveJurisdiction(database.db, undefined)
  const query = parseRequestFeed(limit === undefined ? {} : { limit }, jurisdiction)
  return { query, plan: await planFeed(database.db, database.db, REQUEST_FEED, { ...query, limit: undefined }) }
}

export async function benchOpenData(bench: OpenDataBench) {
  const database = await openDatabase({ databaseUrl: benchUrl, logger: quiet, poolSize: 2 })
  try {
    if (bench.selected(CSV_EXPORT, GEOJSON_EXPORT, COPY)) await exports(bench, database)
    if (bench.selected(COPY_NO_SUBQUERIES, COPY_RENDERED)) await copyBreakdown(bench, database)
    if (bench.selected(FIRST_PAGE, deepPageScenario(bench.rows))) {
      await deepPage(bench, database)
      await explainDeepBatch(database, deepRow(bench.rows))
    }
  } finally {
    await database.close()
  }
  if (bench.selected(EMBEDDED_EXPORT)) await embeddedExport(bench)
}

/** The COPY baseline's SELECT: every field's raw value (or those `keep` keeps), the feed's FROM/WHERE/ORDER BY. */
function copySelect(plan: FeedPlan<RequestFeedFilter>, keep: (value: string) => boolean = () => true) {
  const columns = sql.raw(REQUEST_FIELDS.map((f) => f.value).filter(keep).join(', '))
  return inlined(sql`select ${columns} ${feedRows(REQUEST_FEED, plan.filter, plan.horizonMicros, null, null)}`)
}

/** Rounds of COPY, CSV export and GeoJSON export in turn; each export's ratio to its round's COPY. */
async function exports(bench: OpenDataBench, database: Database) {
  const copies: Transfer[] = []
  const csv: Watched<Transfer>[] = []
  const geojson: Watched<Transfer>[] = []
  for (let round = 0; round < bench.exportRounds; round++) {
    const { plan } = await wholeFeed(database)
    copies.push(await copyCsv(copySelect(plan)))
    console.log(`# COPY, round ${round + 1}: ${describe(copies.at(-1)!)}`)
    csv.push(await watching(bench.serverPid, () => downloadCsv(`${bench.base}/open-data/v1/requests.csv`)))
    console.log(`# CSV export, round ${round + 1}: ${describe(csv.at(-1)!.result)}`)
    geojson.push(await watching(bench.serverPid, () => download(`${bench.base}/open-data/v1/requests.geojson`, '"Feature"')))
    console.log(`# GeoJSON export, round ${round + 1}: ${describe(geojson.at(-1)!.result)}`)
  }
  const copyRates = copies.map(perSecond)
  bench.report({
    scenario: `${COPY} (rows/s)`,
    reqPerSec: median(copyRates),
    p50: Number.NaN,
    p99: Number.NaN,
    note: `${bench.exportRounds} rounds: ${copyRates.map((r) => r.toLocaleString('en-US')).join(', ')} rows/s; ${describe(copies.at(-1)!)}`,
  })
  for (const [scenario, runs] of [
    [CSV_EXPORT, csv],
    [GEOJSON_EXPORT, geojson],
  ] as const) {
    const rates = runs.map((w) => perSecond(w.result))
    const ratios = rates.map((rate, round) => rate / copyRates[round]!)
    const growth = Math.max(...runs.map((w) => w.rssPeak - w.rssBefore))
    const rowsMatch = runs.every((w, round) => w.result.rows === copies[round]!.rows)
    bench.report({
      scenario: `${scenario} (rows/s, no compression)`,
      reqPerSec: median(rates),
      p50: Number.NaN,
      p99: Number.NaN,
      note:
        `${bench.exportRounds} rounds: ${rates.map((r) => r.toLocaleString('en-US')).join(', ')} rows/s; ` +
        `per-round ratio to COPY ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${median(ratios).toFixed(2)}; ` +
        `server RSS growth (peak − before) max ${mb(growth)} MB, before ${mb(runs[0]!.rssBefore)} MB; ` +
        `server CPU ${runs.map((w) => w.cpuSeconds.toFixed(1)).join(', ')} s; ${describe(runs.at(-1)!.result)}` +
        (rowsMatch ? '; rows = COPY rows' : '; ROWS DIFFER FROM COPY'),
    })
  }
}

/** Where the COPY's time goes: without the per-row subqueries, and the feed's own rendering in one query. */
async function copyBreakdown(bench: OpenDataBench, database: Database) {
  const { plan } = await wholeFeed(database)
  const plain = await copyCsv(copySelect(plan, (value) => !value.trimStart().startsWith('(select')))
  bench.report({ scenario: `${COPY_NO_SUBQUERIES} (rows/s)`, reqPerSec: perSecond(plain), p50: Number.NaN, p99: Number.NaN, note: describe(plain) })
  const rendered = await copyCsv(inlined(sql`select ${sql.raw(csvLine(REQUEST_FIELDS))} ${feedRows(REQUEST_FEED, plan.filter, plan.horizonMicros, null, null)}`), '\r\n"\n')
  bench.report({ scenario: `${COPY_RENDERED} (rows/s)`, reqPerSec: perSecond(rendered), p50: Number.NaN, p99: Number.NaN, note: describe(rendered) })
}

/** The position of the `row`-th row of the feed (1-based), in the feed's order. */
async function positionOf(database: Database, plan: FeedPlan<RequestFeedFilter>, row: number) {
  const [key] = await queryRows<{ id: number; micros: string }>(
    database.db,
    sql`select sr.id, ${microsOf(sql`sr.updated_at`)} as micros ${feedRows(REQUEST_FEED, plan.filter, plan.horizonMicros, null, null)} offset ${row - 1} limit 1`,
  )
  if (!key) throw new Error(`the feed has fewer than ${row} rows`)
  return key
}

/**
 * The first page against one past row 900,000 (of 1M). The deep page's URL is the first page's
 * with a cursor that the first page's own Link would lead to after 900 pages: its horizon and
 * filter hash are the real cursor's, its position row 900,000's.
 */
async function deepPage(bench: OpenDataBench, database: Database) {
  const firstUrl = `${bench.base}/open-data/v1/requests.csv?limit=1000`
  const first = await request(firstUrl)
  await first.body.text()
  const link = /<[^>]*[?&]cursor=([^&>]+)[^>]*>; rel="next"/.exec(String(first.headers.link))
  if (first.statusCode !== 200 || !link) throw new Error(`${firstUrl}: ${first.statusCode}, Link ${first.headers.link}`)
  const { query, plan } = await wholeFeed(database, 1000)
  const real = decodeCursor(decodeURIComponent(link[1]!), query.hash)
  const key = await positionOf(database, plan, deepRow(bench.rows))
  const deepUrl = `${firstUrl}&cursor=${encodeCursor({ timeMicros: key.micros, id: key.id, horizonMicros: real.horizonMicros }, query.hash)}`
  const deep = await downloadCsv(deepUrl)
  // A deep page that answered an error or a short page would be timed as a cheap one.
  if (deep.rows !== 1000) throw new Error(`${deepUrl}: ${deep.rows} rows, not 1000`)
  console.log(`# deep page: ${deepUrl}`)
  await bench.alternatingCannon([FIRST_PAGE, firstUrl], [deepPageScenario(bench.rows), deepUrl], 8)
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of the first batch of a whole feed read from past row 900,000,
 * exactly as the server sends it: feedChunks on a connection with auto_explain, which
 * hands each plan back as a NOTICE. Written to bench/.results/open-data-explain.txt.
 */
async function explainDeepBatch(database: Database, row: number) {
  const { plan } = await wholeFeed(database)
  const after = await positionOf(database, plan, row)
  const client = new pg.Client({ connectionString: benchUrl })
  await client.connect()
  const plans: string[] = []
  client.on('notice', (notice) => plans.push(notice.message ?? ''))
  try {
    await client.query(`load 'auto_explain'`)
    for (const setting of ['log_min_duration = 0', 'log_analyze = on', 'log_buffers = on', 'log_timing = on', "log_level = 'notice'"]) {
      await client.query(`set auto_explain.${setting}`)
    }
    const chunks = feedChunks(drizzle({ client, schema }), REQUEST_FEED, { ...plan, after: { micros: after.micros, id: after.id } }, 'csv')
    await chunks.next() // the header
    await chunks.next() // the first batch
    await chunks.return(undefined)
  } finally {
    await client.end()
  }
  const text = plans.join('\n\n')
  await writeFile(EXPLAIN_FILE, `${text}\n`)
  console.log(`# the deep batch's plan (${EXPLAIN_FILE}):\n${text}`)
}

/** The same loader into a temporary DATA_DIR, then the embedded server as deployed, one full CSV export. */
async function embeddedExport(bench: OpenDataBench) {
  const dataDir = await mkdtemp(join(tmpdir(), 'open311-bench-embedded-'))
  try {
    // Where the server keeps its embedded database under DATA_DIR (src/app.ts).
    const database = await openDatabase({ dataDir: join(dataDir, 'pglite'), logger: quiet })
    try {
      await database.migrate()
      await loadSyntheticRequests(database, bench.embeddedRows)
    } finally {
      await database.close()
    }
    const server = await startDeployedServer(process.cwd(), bench.port, 'bench/.results/server-embedded.log', embeddedEnv(bench.port, dataDir))
    try {
      const watched = await watching(server.pid, () => downloadCsv(`${server.base}/open-data/v1/requests.csv`))
      const t = watched.result
      bench.report({
        scenario: `${EMBEDDED_EXPORT}, ${bench.embeddedRows.toLocaleString('en-US')} rows (rows/s, no compression)`,
        reqPerSec: perSecond(t),
        p50: Number.NaN,
        p99: Number.NaN,
        note: `${describe(t)}; server RSS growth ${mb(watched.rssPeak - watched.rssBefore)} MB; server CPU ${watched.cpuSeconds.toFixed(1)} s`,
      })
    } finally {
      await server.stop()
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
}
