/**
 * Duplicates at intake (docs/service-levels.md): the open requests of a service near a point
 * and recent enough to be the same problem. The POST's statement takes the search as a step
 * (submit-request.ts: `suggest` names them in the answer, `link` makes the new request a
 * duplicate of the nearest); GET request with extensions=true asks the same question of a
 * request already there (possibleDuplicatesOf).
 *
 * A candidate is an original: open, not itself a duplicate (a duplicate's original is the one
 * to follow, and the cascade closes duplicates with it), public and with an id given out (a
 * batch request whose token is still pending has none). Nearest first; the radius is metres on
 * the spheroid (ST_DWithin and ST_Distance on geography agree), the window whole days back
 * from the moment asked about. The composite GiST index on (location, requested_at) answers
 * both conditions at once (docs/benchmarks.md, "Duplicates at intake").
 */
import { type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import type { DuplicatePolicy } from '../../db/schema.js'
import type { StoredService } from '../catalog/catalog.js'
import { TOKEN_ACCEPTED } from './find-requests.js'
import type { Reader } from './sensitive-location.js'

/** At most this many candidates are named (the POST's and the GET's `possible_duplicates`). */
export const MAX_POSSIBLE_DUPLICATES = 5

/** A service's policy when it searches; null when it is off. */
export interface DuplicateSearch {
  policy: Exclude<DuplicatePolicy, 'off'>
  radiusM: number
  windowDays: number
  /** Sensitive services: the distance is not shown to the public (it would place the other report more finely than its grid cell). */
  hideDistance: boolean
}

export function duplicateSearchOf(service: StoredService): DuplicateSearch | null {
  const settings = service.duplicates
  if (!settings || settings.policy === 'off' || settings.radius_m === undefined || settings.window_days === undefined) return null
  return { policy: settings.policy, radiusM: settings.radius_m, windowDays: settings.window_days, hideDistance: service.privacy === 'sensitive' }
}

/** A candidate as the answers show it; `requested_at` in epoch milliseconds. */
export interface PossibleDuplicate {
  service_request_id: string
  /** Rounded to the metre; null where it is not shown (sensitive services, to the public). */
  distance_m: number | null
  requested_at: number
}

interface CandidateQuery {
  jurisdictionId: string
  serviceId: number
  /** A geography expression (the new request's point, or a stored request's location). */
  point: SQL
  search: DuplicateSearch
  /** The moment the window reaches back from (now() for a POST). */
  asOf: SQL
  limit: number
  /**
   * The GET's question, about a request already there: only requests before it (at `asOf`, its
   * own requested_at), and not itself. A POST has no upper bound: a report committed since its
   * transaction began (an Idempotency-Key's) is still one it may duplicate.
   */
  before?: { excludeId: number }
  /**
   * `link`: the chosen original is locked FOR SHARE until the POST commits, so it cannot close
   * between the search and the commit (a close waits, then its cascade sees the new duplicate).
   * A close that committed first is seen by PostgreSQL's re-check of the locked row, which then
   * no longer matches `status = 'open'`: the next candidate is taken, or none.
   */
  lock?: boolean
}

/**
 * The candidates as a query (id, public_id, requested_at, distance_m), nearest first: a step of
 * the POST's statement or a query of its own. The spatial and time conditions are spelled as
 * the GiST index's columns (location, requested_at), so they are one index range.
 */
export function duplicateCandidates(q: CandidateQuery): SQL {
  // The radius, window and limit are written into the text, not sent as parameters: with them
  // as parameters PostgreSQL's generic plan could not estimate the circle and the window and
  // cost the index scan at 30× the custom plans', so the POST's named statement was planned
  // afresh on every execution (~3 ms each; docs/benchmarks.md). They are whole numbers within
  // the catalog's bounds (and the database's checks), so a text per distinct setting: a few.
  const radius = sql.raw(String(wholeNumber(q.search.radiusM)))
  const reachBack = sql.raw(`interval '${wholeNumber(q.search.windowDays)} days'`)
  return sql`select sr.id, sr.public_id, sr.requested_at, ST_Distance(sr.location, ${q.point}) as distance_m
    from service_requests sr
    where ST_DWithin(sr.location, ${q.point}, ${radius})
      and sr.requested_at >= ${q.asOf} - ${reachBack}
      ${q.before ? sql`and sr.requested_at <= ${q.asOf} and sr.id <> ${q.before.excludeId}::bigint` : sql``}
      and sr.service_id = ${q.serviceId}::bigint and sr.jurisdiction_id = ${q.jurisdictionId}::text
      and sr.status = 'open' and sr.parent_request_id is null and sr.is_public and ${TOKEN_ACCEPTED}
    order by distance_m, sr.requested_at, sr.id
    limit ${sql.raw(String(wholeNumber(q.limit)))}
    ${q.lock ? sql`for share of sr` : sql``}`
}

/** A value written into SQL text: only a non-negative safe integer, whatever a caller passes. */
function wholeNumber(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`duplicate search: ${value} is not a whole number`)
  return value
}

/**
 * SQL: the candidates of the step `candidates` as a JSON list of PossibleDuplicate, nearest first
 * (an empty list when there are none).
 */
export function possibleDuplicatesJson(candidates: SQL, hideDistance: boolean): SQL {
  const distance = hideDistance ? sql`null` : sql`round(c.distance_m)::int`
  return sql`(select coalesce(json_agg(json_build_object('service_request_id', c.public_id, 'distance_m', ${distance},
                                                      'requested_at', (extract(epoch from c.requested_at) * 1000)::float8)
                                   order by c.distance_m, c.requested_at, c.id), '[]'::json)
             from ${candidates} c)`
}

/**
 * SQL: the notice naming the nearest candidate of `candidates` (null when there is none), with
 * its day in the jurisdiction's time zone: what `service_notice` says to the reporter.
 */
export function duplicateNotice(candidates: SQL, search: DuplicateSearch, timeZone: string): SQL {
  const where = search.hideDistance ? sql`'within ' || ${search.radiusM}::int || ' m'` : sql`round(c.distance_m)::int || ' m away'`
  const day = sql`to_char(c.requested_at at time zone ${timeZone}::text, 'YYYY-MM-DD')`
  const said =
    search.policy === 'link'
      ? sql`'This report was added to request ' || c.public_id || ', reported ' || ${where} || ' on ' || ${day} ||
            ', which is already being handled; it will be closed when that request is.'`
      : sql`'This looks like request ' || c.public_id || ', reported ' || ${where} || ' on ' || ${day} ||
            '; if it is the same problem, you can follow that request instead.'`
  return sql`(select ${said} from ${candidates} c order by c.distance_m, c.requested_at, c.id limit 1)`
}

/**
 * The possible duplicates of a request already there, as the POST would have named them had it
 * come in now: earlier open originals of its service within the radius and window before its
 * own requested_at. For GET request with extensions=true, on requests of `suggest` services
 * that are open and not duplicates themselves; one indexed query.
 */
export async function possibleDuplicatesOf(
  db: Db,
  request: { id: number; jurisdictionId: string; serviceId: number },
  search: DuplicateSearch,
  reader: Reader,
): Promise<PossibleDuplicate[]> {
  const self = sql`(select location from service_requests where id = ${request.id}::bigint)`
  const candidates = duplicateCandidates({
    jurisdictionId: request.jurisdictionId,
    serviceId: request.serviceId,
    point: self,
    search,
    asOf: sql`(select requested_at from service_requests where id = ${request.id}::bigint)`,
    limit: MAX_POSSIBLE_DUPLICATES,
    before: { excludeId: request.id },
  })
  const [row] = await queryRows<{ found: PossibleDuplicate[] | string }>(
    db,
    sql`with candidates as (${candidates})
        select ${possibleDuplicatesJson(sql`candidates`, search.hideDistance && reader === 'public')} as found`,
  )
  const found = row?.found ?? []
  return typeof found === 'string' ? (JSON.parse(found) as PossibleDuplicate[]) : found
}
