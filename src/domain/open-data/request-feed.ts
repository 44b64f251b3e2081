/**
 * The open-data requests feed: every public request in the fixed order (updated_at, id), read
 * in keyset batches below the horizon (horizon.ts), so memory stays constant however long the
 * feed and a cursor page is as cheap deep in the table as at its start. Rows are rendered by
 * PostgreSQL (request-fields.ts); this module plans pages and hands out text chunks.
 */
import { createHash } from 'node:crypto'
import { type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import type { Open311Status } from '../../db/schema.js'
import { parseW3cMicros } from '../../open311/datetime.js'
import { invalid } from '../errors.js'
import { insideBbox, type RequestFilter, TOKEN_ACCEPTED } from '../requests/find-requests.js'
import { parseBbox, parseList, parseStatuses } from '../requests/search-params.js'
import { type CursorPosition, decodeCursor, encodeCursor, filterHash } from './cursor.js'
import { earlierMicros, feedHorizon, microsOf, timestampOf } from './horizon.js'
import { csvHeader, csvLine, geojsonFeature, jsonObject, REQUEST_FIELDS } from './request-fields.js'

export const FEED_FORMATS = ['csv', 'json', 'geojson'] as const
export type FeedFormat = (typeof FEED_FORMATS)[number]
export const MAX_FEED_PAGE = 50_000
/** Rows per query: ~1 MB of text, few round trips, and the most a cancelled stream still reads. */
const BATCH_ROWS = 2000

export interface RequestFeedParams {
  service_code?: string
  status?: string
  updated_after?: string
  updated_before?: string
  requested_after?: string
  requested_before?: string
  bbox?: string
  limit?: number
  cursor?: string
}

/** Times are microseconds since the epoch (decimal text); `after` bounds are exclusive, `before` inclusive. */
export interface RequestFeedFilter {
  jurisdictionId: string
  serviceCodes?: string[]
  statuses?: Open311Status[]
  updatedAfter?: string
  updatedBefore?: string
  requestedAfter?: string
  requestedBefore?: string
  bbox?: RequestFilter['bbox']
}

export interface RequestFeedQuery {
  filter: RequestFeedFilter
  limit?: number
  cursor?: CursorPosition
  /** What a cursor must have been issued for. */
  hash: string
}

/** A position in the feed's order. */
export interface FeedKey {
  micros: string
  id: number
}

export interface FeedPlan {
  filter: RequestFeedFilter
  horizonMicros: string
  /** Rows after this position (exclusive); null from the start. */
  after: FeedKey | null
  /** A page ends at this position (inclusive); null: the feed runs to the horizon. */
  end: FeedKey | null
  /** The cursor of the next page; null on the last page and for a whole feed. */
  next: string | null
  /** For pages: a validator of the page's rows and versions, and its newest change (µs). */
  etag: string | null
  lastModifiedMicros: string | null
}

function datetime(name: string, text: string | undefined, timeZone: string): string | undefined {
  if (text === undefined || text.trim() === '') return undefined
  const micros = parseW3cMicros(text, timeZone)
  if (micros === null) throw invalid(`${name}: must be an ISO 8601 datetime such as 2026-01-31T13:00:00.000000Z`)
  return micros
}

function range(name: string, after: string | undefined, before: string | undefined) {
  if (after !== undefined && before !== undefined && BigInt(before) <= BigInt(after)) {
    throw invalid(`${name}_before: must be later than ${name}_after`)
  }
}

/** Query parameters → a feed query; every refusal is an `invalid` error naming the parameter. */
export function parseRequestFeed(params: RequestFeedParams, jurisdiction: { id: string; timeZone: string }): RequestFeedQuery {
  const filter: RequestFeedFilter = { jurisdictionId: jurisdiction.id }
  const codes = parseList(params.service_code)
  if (codes) filter.serviceCodes = codes
  const statuses = parseStatuses(params.status)
  if (statuses) filter.statuses = statuses
  for (const [field, key] of [
    ['updated_after', 'updatedAfter'],
    ['updated_before', 'updatedBefore'],
    ['requested_after', 'requestedAfter'],
    ['requested_before', 'requestedBefore'],
  ] as const) {
    const micros = datetime(field, params[field], jurisdiction.timeZone)
    if (micros !== undefined) filter[key] = micros
  }
  range('updated', filter.updatedAfter, filter.updatedBefore)
  range('requested', filter.requestedAfter, filter.requestedBefore)
  const bbox = parseBbox(params.bbox)
  if (bbox) filter.bbox = bbox

  const hash = filterHash({
    jurisdiction: filter.jurisdictionId,
    service_code: filter.serviceCodes,
    status: filter.statuses,
    updated_after: filter.updatedAfter,
    updated_before: filter.updatedBefore,
    requested_after: filter.requestedAfter,
    requested_before: filter.requestedBefore,
    bbox: bbox && [bbox.minLong, bbox.minLat, bbox.maxLong, bbox.maxLat].join(','),
  })
  const query: RequestFeedQuery = { filter, hash }
  if (params.limit !== undefined) query.limit = params.limit
  if (params.cursor !== undefined && params.cursor !== '') query.cursor = decodeCursor(params.cursor, hash)
  return query
}

/**
 * The feed's rows from `after` (exclusive) to `end` (inclusive), below the horizon, in order.
 * Exported for the benchmark's COPY baseline (bench/open-data.ts), which reads the same rows.
 */
export function feedRows(filter: RequestFeedFilter, horizonMicros: string, after: FeedKey | null, end: FeedKey | null): SQL {
  const conditions: SQL[] = [
    sql`sr.jurisdiction_id = ${filter.jurisdictionId}`,
    sql`sr.is_public`,
    TOKEN_ACCEPTED,
    sql`sr.updated_at < ${timestampOf(horizonMicros)}`,
  ]
  // Row comparisons on (updated_at, id): an index range scan on service_requests_updated_at_idx.
  if (after) conditions.push(sql`(sr.updated_at, sr.id) > (${timestampOf(after.micros)}, ${after.id}::bigint)`)
  if (end) conditions.push(sql`(sr.updated_at, sr.id) <= (${timestampOf(end.micros)}, ${end.id}::bigint)`)
  if (filter.serviceCodes) conditions.push(sql`s.service_code = any(${sql.param(filter.serviceCodes)}::text[])`)
  if (filter.statuses) conditions.push(sql`sr.status = any(${sql.param(filter.statuses)}::text[])`)
  if (filter.updatedAfter) conditions.push(sql`sr.updated_at > ${timestampOf(filter.updatedAfter)}`)
  if (filter.updatedBefore) conditions.push(sql`sr.updated_at <= ${timestampOf(filter.updatedBefore)}`)
  if (filter.requestedAfter) conditions.push(sql`sr.requested_at > ${timestampOf(filter.requestedAfter)}`)
  if (filter.requestedBefore) conditions.push(sql`sr.requested_at <= ${timestampOf(filter.requestedBefore)}`)
  if (filter.bbox) conditions.push(insideBbox(filter.bbox))
  return sql`from service_requests sr
             join services s on s.id = sr.service_id
             left join service_requests parent on parent.id = sr.parent_request_id
             where ${sql.join(conditions, sql` and `)}
             order by sr.updated_at, sr.id`
}

/**
 * Decides what a response holds. A page (with `limit`) reads its rows' positions first — two
 * numbers a row — so the Link to the next page, the ETag and Last-Modified are known before
 * the first byte is sent; a whole feed needs none of them and starts streaming at once.
 * `db` is where the rows are read (a read replica, or the primary itself).
 */
export async function planRequestFeed(db: Db, query: RequestFeedQuery, primary: Db = db): Promise<FeedPlan> {
  const now = await feedHorizon(primary, db)
  // A cursor keeps the horizon its harvest started under, so later pages never go past it; a
  // forged or stale one never moves it beyond what is settled now.
  const horizonMicros = query.cursor ? earlierMicros(query.cursor.horizonMicros, now) : now
  const after = query.cursor ? { micros: query.cursor.updatedAtMicros, id: query.cursor.id } : null
  const plan: FeedPlan = { filter: query.filter, horizonMicros, after, end: null, next: null, etag: null, lastModifiedMicros: null }
  if (query.limit === undefined) return plan

  const keys = await queryRows<{ id: string | number; micros: string }>(
    db,
    sql`select sr.id, ${microsOf(sql`sr.updated_at`)} as micros ${feedRows(query.filter, horizonMicros, after, null)} limit ${query.limit + 1}`,
  )
  const page = keys.slice(0, query.limit).map((k) => ({ micros: k.micros, id: Number(k.id) }))
  const last = page.at(-1)
  // An empty page ends where it started: nothing to read, not "everything".
  plan.end = last ?? after ?? { micros: '0', id: 0 }
  if (keys.length > query.limit && last) {
    plan.next = encodeCursor({ updatedAtMicros: last.micros, id: last.id, horizonMicros }, query.hash)
  }
  // Not the next cursor: it carries the horizon, which moves with every request.
  const digest = createHash('sha256').update(query.hash).update(plan.next ? 'more;' : 'last;')
  for (const key of page) digest.update(`${key.id}@${key.micros};`)
  plan.etag = digest.digest('base64url').slice(0, 27)
  // The page is in updated_at order: its last row changed last.
  plan.lastModifiedMicros = last?.micros ?? null
  return plan
}

export interface FeedRendering {
  /** CSV: a byte-order mark first, for spreadsheets that guess the encoding otherwise. */
  bom?: boolean
  /** CSV: a last line `# complete: N rows`, so a cut-off download can be told from a whole one. */
  trailer?: boolean
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

/** The response body as text chunks: the head, one chunk per batch of rows, the tail. */
export async function* requestFeedChunks(db: Db, plan: FeedPlan, format: FeedFormat, rendering: FeedRendering = {}): AsyncGenerator<string> {
  const line = sql.raw(format === 'csv' ? csvLine(REQUEST_FIELDS) : `(${format === 'json' ? jsonObject(REQUEST_FIELDS) : geojsonFeature(REQUEST_FIELDS)})::text`)
  const separator = format === 'csv' ? '' : ','
  if (format === 'csv') yield `${rendering.bom ? '\uFEFF' : ''}${csvHeader(REQUEST_FIELDS)}`
  else yield format === 'json' ? '[' : '{"type":"FeatureCollection","features":['

  let after = plan.after
  let rows = 0
  for (;;) {
    const batch = await withoutJit(db, (tx) =>
      queryRows<{ id: string | number; micros: string; line: string }>(
        tx,
        sql`select sr.id, ${microsOf(sql`sr.updated_at`)} as micros, ${line} as line
            ${feedRows(plan.filter, plan.horizonMicros, after, plan.end)} limit ${BATCH_ROWS}`,
      ),
    )
    if (batch.length === 0) break
    const text = batch.map((r) => r.line).join(separator)
    yield rows > 0 && separator ? separator + text : text
    rows += batch.length
    const last = batch.at(-1)!
    after = { micros: last.micros, id: Number(last.id) }
    if (batch.length < BATCH_ROWS) break
  }

  if (format === 'csv') {
    if (rendering.trailer) yield `# complete: ${rows} rows\r\n`
  } else yield format === 'json' ? ']' : ']}'
}
