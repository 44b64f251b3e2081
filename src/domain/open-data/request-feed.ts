/**
 * The requests feed: every public request, in the order of its last change. Its columns are
 * request-fields.ts; how it is read and paged, keyset-feed.ts.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { Open311Status } from '../../db/schema.js'
import { insideBbox, type RequestFilter, spatialMatch, TOKEN_ACCEPTED } from '../requests/find-requests.js'
import { parseBbox, parseList, parseStatuses } from '../requests/search-params.js'
import { checkRange, datetimeParam, type FeedQuery, type FeedSource, feedQuery } from './keyset-feed.js'
import { timestampOf } from './horizon.js'
import { geojsonFeature, REQUEST_FIELDS } from './request-fields.js'

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

export const REQUEST_FEED: FeedSource<RequestFeedFilter> = {
  name: 'requests',
  fields: REQUEST_FIELDS,
  from: `service_requests sr
         join services s on s.id = sr.service_id
         left join service_requests parent on parent.id = sr.parent_request_id`,
  time: 'sr.updated_at',
  id: 'sr.id',
  geojsonFeature: geojsonFeature(REQUEST_FIELDS),
  conditions(filter) {
    const conditions: SQL[] = [sql`sr.jurisdiction_id = ${filter.jurisdictionId}`, sql`sr.is_public`, TOKEN_ACCEPTED]
    if (filter.serviceCodes) conditions.push(sql`s.service_code = any(${sql.param(filter.serviceCodes)}::text[])`)
    if (filter.statuses) conditions.push(sql`sr.status = any(${sql.param(filter.statuses)}::text[])`)
    if (filter.updatedAfter) conditions.push(sql`sr.updated_at > ${timestampOf(filter.updatedAfter)}`)
    if (filter.updatedBefore) conditions.push(sql`sr.updated_at <= ${timestampOf(filter.updatedBefore)}`)
    if (filter.requestedAfter) conditions.push(sql`sr.requested_at > ${timestampOf(filter.requestedAfter)}`)
    if (filter.requestedBefore) conditions.push(sql`sr.requested_at <= ${timestampOf(filter.requestedBefore)}`)
    // By the point published, for the same reason as GeoReport's public searches. The wider
    // pre-check costs a walk in (updated_at, id) order nothing, so it is not made conditional.
    if (filter.bbox) conditions.push(insideBbox(filter.bbox, spatialMatch('public', true)))
    return conditions
  },
}

/** Query parameters → a feed query; every refusal is an `invalid` error naming the parameter. */
export function parseRequestFeed(params: RequestFeedParams, jurisdiction: { id: string; timeZone: string }): FeedQuery<RequestFeedFilter> {
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
    const micros = datetimeParam(field, params[field], jurisdiction.timeZone)
    if (micros !== undefined) filter[key] = micros
  }
  checkRange('updated', filter.updatedAfter, filter.updatedBefore)
  checkRange('requested', filter.requestedAfter, filter.requestedBefore)
  const bbox = parseBbox(params.bbox)
  if (bbox) filter.bbox = bbox
  return feedQuery(
    REQUEST_FEED,
    filter,
    {
      jurisdiction: filter.jurisdictionId,
      service_code: filter.serviceCodes,
      status: filter.statuses,
      updated_after: filter.updatedAfter,
      updated_before: filter.updatedBefore,
      requested_after: filter.requestedAfter,
      requested_before: filter.requestedBefore,
      bbox: bbox && [bbox.minLong, bbox.minLat, bbox.maxLong, bbox.maxLat].join(','),
    },
    params,
  )
}
