/**
 * What every open-data feed does the same way: rows in a fixed order on (change time, id), read
 * in keyset batches below the horizon (horizon.ts), so memory stays constant however long the
 * feed and a cursor page costs the same deep in the table as at its start; pages planned before
 * the first byte (next cursor, validator); the body handed out as text chunks rendered by
 * PostgreSQL (feed-fields.ts). A feed is a `FeedSource`: its table, its columns, its filters.
 */
import { createHash } from 'node:crypto'
import { type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { parseW3cMicros } from '../../open311/datetime.js'
import { invalid } from '../errors.js'
import { type CursorPosition, decodeCursor, encodeCursor, filterHash } from './cursor.js'
import { csvHeader, csvLine, type FeedField, jsonObject } from './feed-fields.js'
import { earlierMicros, feedHorizon, microsOf, timestampOf } from './horizon.js'

export const FEED_FORMATS = ['csv', 'json', 'geojson'] as const
export type FeedFormat = (typeof FEED_FORMATS)[number]
export const MAX_FEED_PAGE = 50_000
/** Rows per query: ~1 MB of text, few round trips, and the most a cancelled stream still reads. */
const BATCH_ROWS = 2000

export interface FeedSource<Filter> {
  /** The feed's name, part of its cursors' hash: a cursor of one feed is refused by another. */
  name: string
  fields: readonly FeedField[]
  /** The FROM clause (constant SQL). */
  from: string
  /** The order: the time each row last changed (stamped by open311_change_time()) and a unique id. */
  time: string
  id: string
  /** The rows in the feed at all, and those the filter keeps. */
  conditions(filter: Filter): SQL[]
  /** SQL for a row as an RFC 7946 Feature, for feeds with a location. */
  geojsonFeature?: string
}

export interface FeedQuery<Filter> {
  filter: Filter
  /** No filter but the jurisdiction and no cursor: the whole dump, which caches may keep a while. */
  whole: boolean
  limit?: number
  cursor?: CursorPosition
  /** What a cursor must have been issued for. */
  hash: string
}

/** A position in a feed's order. */
export interface FeedKey {
  micros: string
  id: number
}

export interface FeedPlan<Filter> {
  filter: Filter
  horizonMicros: string
  /** Rows after this position (exclusive); null from the start. */
  after: FeedKey | null
  /** A page ends at this position (inclusive); null: the feed runs to the horizon. */
  end: FeedKey | null
  /** The cursor of the next page; null on the last page and for a whole feed. */
  next: string | null
  /** For pages: a validator of the page's rows and their versions. */
  etag: string | null
}

export interface FeedRendering {
  /** CSV: a byte-order mark first, for spreadsheets that guess the encoding otherwise. */
  bom?: boolean
  /** CSV: a last line `# complete: N rows`, so a cut-off download can be told from a whole one. */
  trailer?: boolean
  /** Called when the body stops before its end (the reader went away, or a read failed), with the rows read. */
  onStopped?: (rowsRead: number) => void
}

/** The formats a feed is served in: GeoJSON where its rows have a location. */
export const feedFormats = (source: FeedSource<never>): FeedFormat[] => (source.geojsonFeature ? ['csv', 'json', 'geojson'] : ['csv', 'json'])

/** A datetime parameter as microseconds (decimal text), or a 400 naming it. */
export function datetimeParam(name: string, text: string | undefined, timeZone: string): string | undefined {
  if (text === undefined || text.trim() === '') return undefined
  const micros = parseW3cMicros(text, timeZone)
  if (micros === null) throw invalid(`${name}: must be an ISO 8601 datetime such as 2026-01-31T13:00:00.000000Z`)
  return micros
}

/** `<name>_before` must come after `<name>_after`. */
export function checkRange(name: string, after: string | undefined, before: string | undefined) {
  if (after !== undefined && before !== undefined && BigInt(before) <= BigInt(after)) {
    throw invalid(`${name}_before: must be later than ${name}_after`)
  }
}

/**
 * The query for `filter`: its cursor is decoded against the hash of this feed and these
 * filters (`canonical`: the filter's values as text, as filterHash takes them).
 */
export function feedQuery<Filter>(
  source: FeedSource<Filter>,
  filter: Filter,
  canonical: Record<string, string | string[] | undefined>,
  params: { limit?: number; cursor?: string },
): FeedQuery<Filter> {
  const hash = filterHash({ feed: source.name, ...canonical })
  const filtered = Object.entries(canonical).some(([name, value]) => name !== 'jurisdiction' && value !== undefined && [value].flat().length > 0)
  const query: FeedQuery<Filter> = { filter, hash, whole: !filtered && !params.cursor && params.limit === undefined }
  if (params.limit !== undefined) query.limit = params.limit
  if (params.cursor !== undefined && params.cursor !== '') query.cursor = decodeCursor(params.cursor, hash)
  return query
}

/**
 * The feed's rows from `after` (exclusive) to `end` (inclusive), below the horizon, in order.
 * Exported for the benchmark's COPY baseline (bench/open-data.ts), which reads the same rows.
 */
export function feedRows<Filter>(source: FeedSource<Filter>, filter: Filter, horizonMicros: string, after: FeedKey | null, end: FeedKey | null): SQL {
  const time = sql.raw(source.time)
  const id = sql.raw(source.id)
  const conditions = [...source.conditions(filter), sql`${time} < ${timestampOf(horizonMicros)}`]
  // Row comparisons on (time, id): an index range scan on the feed's (time, id) index.
  if (after) conditions.push(sql`(${time}, ${id}) > (${timestampOf(after.micros)}, ${after.id}::bigint)`)
  if (end) conditions.push(sql`(${time}, ${id}) <= (${timestampOf(end.micros)}, ${end.id}::bigint)`)
  return sql`from ${sql.raw(source.from)} where ${sql.join(conditions, sql` and `)} order by ${time}, ${id}`
}

/**
 * Decides what a response holds. A page (with `limit`) reads its rows' positions first — two
 * numbers a row — so the Link to the next page, the ETag and Last-Modified are known before
 * the first byte is sent; a whole feed needs none of them and starts streaming at once.
 * `db` is where the rows are read (a read replica, or the primary itself); the horizon is
 * always the primary's (horizon.ts).
 */
export async function planFeed<Filter>(db: Db, primary: Db, source: FeedSource<Filter>, query: FeedQuery<Filter>): Promise<FeedPlan<Filter>> {
  const now = await feedHorizon(primary, db)
  // A cursor keeps the horizon its harvest started under, so later pages never go past it; a
  // forged or stale one never moves it beyond what is settled now.
  const horizonMicros = query.cursor ? earlierMicros(query.cursor.horizonMicros, now) : now
  const after = query.cursor ? { micros: query.cursor.timeMicros, id: query.cursor.id } : null
  const plan: FeedPlan<Filter> = { filter: query.filter, horizonMicros, after, end: null, next: null, etag: null }
  if (query.limit === undefined) return plan

  const keys = await queryRows<{ id: string | number; micros: string }>(
    db,
    sql`select ${sql.raw(source.id)} as id, ${microsOf(sql.raw(source.time))} as micros
        ${feedRows(source, query.filter, horizonMicros, after, null)} limit ${query.limit + 1}`,
  )
  const page = keys.slice(0, query.limit).map((k) => ({ micros: k.micros, id: Number(k.id) }))
  const last = page.at(-1)
  // An empty page ends where it started: nothing to read, not "everything".
  plan.end = last ?? after ?? { micros: '0', id: 0 }
  if (keys.length > query.limit && last) {
    plan.next = encodeCursor({ timeMicros: last.micros, id: last.id, horizonMicros }, query.hash)
  }
  // Not the next cursor: it carries the horizon, which moves with every request.
  const digest = createHash('sha256').update(query.hash).update(plan.next ? 'more;' : 'last;')
  for (const key of page) digest.update(`${key.id}@${key.micros};`)
  plan.etag = digest.digest('base64url').slice(0, 27)
  return plan
}

/**
 * Runs one batch's read with JIT compilation off. The per-row subqueries (departments, areas,
 * attributes) put a 2000-row batch's estimated cost above jit_above_cost (100,000 by default:
 * 123,552 at 1M rows), so PostgreSQL compiled the same expressions again for each of an
 * export's 500 batches, where COPY of the whole feed pays it once. Gain at 1M on PostGIS, as
 * deployed (docs/benchmarks.md, "Open data"): full CSV export 8,054 → ~10,000 rows/s (+24%),
 * GeoJSON 6,431 → ~9,000 (+40%). Invariant: the transaction holds one read-only statement and
 * exists only to scope SET LOCAL, which ends with it; PGlite has no JIT and accepts the setting.
 */
function withoutJit<T>(db: Db, read: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`set local jit = off`)
    return read(tx)
  })
}

/**
 * The response body as text chunks: the head with the first batch of rows, one chunk per
 * further batch, the tail. The first chunk needs the database, so awaiting it before sending
 * anything turns a failing database into an error answer instead of a cut-off body.
 */
export async function* feedChunks<Filter>(
  db: Db,
  source: FeedSource<Filter>,
  plan: FeedPlan<Filter>,
  format: FeedFormat,
  rendering: FeedRendering = {},
): AsyncGenerator<string> {
  if (format === 'geojson' && !source.geojsonFeature) throw new Error(`the ${source.name} feed has no GeoJSON form`)
  const line = sql.raw(format === 'csv' ? csvLine(source.fields) : `(${format === 'json' ? jsonObject(source.fields) : source.geojsonFeature})::text`)
  const separator = format === 'csv' ? '' : ','
  let head = format === 'csv' ? `${rendering.bom ? '\uFEFF' : ''}${csvHeader(source.fields)}` : format === 'json' ? '[' : '{"type":"FeatureCollection","features":['

  let after = plan.after
  let rows = 0
  let finished = false
  try {
    for (;;) {
      const batch = await withoutJit(db, (tx) =>
        queryRows<{ id: string | number; micros: string; line: string }>(
          tx,
          sql`select ${sql.raw(source.id)} as id, ${microsOf(sql.raw(source.time))} as micros, ${line} as line
              ${feedRows(source, plan.filter, plan.horizonMicros, after, plan.end)} limit ${BATCH_ROWS}`,
        ),
      )
      if (batch.length === 0) break
      const text = batch.map((r) => r.line).join(separator)
      const first = rows === 0
      rows += batch.length
      const last = batch.at(-1)!
      after = { micros: last.micros, id: Number(last.id) }
      // A reader that stops (a client gone: the stream is destroyed) ends the generator here,
      // and no further batch is read.
      yield head + (!first && separator ? separator + text : text)
      head = ''
      if (batch.length < BATCH_ROWS) break
    }
    const tail = format === 'csv' ? (rendering.trailer ? `# complete: ${rows} rows\r\n` : '') : format === 'json' ? ']' : ']}'
    yield head + tail
    finished = true
  } finally {
    if (!finished) rendering.onStopped?.(rows)
  }
}
