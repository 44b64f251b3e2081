/**
 * The removed feed: requests that left public view (made non-public, deleted), with the time
 * they left, so a harvester can delete them. The entries are written by triggers (migration
 * 0009); one goes away when its request is public again, which then comes back in the requests
 * feed with a later updated_datetime.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { FeedField } from './feed-fields.js'
import { timestampOf } from './horizon.js'
import { datetimeParam, type FeedQuery, type FeedSource, feedQuery } from './keyset-feed.js'

export const REMOVAL_FIELDS: readonly FeedField[] = [
  { name: 'service_request_id', type: 'string', description: 'The request that left public view: delete it from your copy.', value: 'r.service_request_id' },
  { name: 'removed_datetime', type: 'datetime', description: 'When it left: the feed\'s order, and the next pull\'s `since`.', value: 'r.removed_at' },
  { name: 'reason', type: 'string', description: '`made_private` (an operator withdrew it from public view) or `deleted`.', value: 'r.reason' },
]

export interface RemovalFeedParams {
  since?: string
  limit?: number
  cursor?: string
}

export interface RemovalFeedFilter {
  jurisdictionId: string
  /** Microseconds (decimal text), exclusive. */
  since?: string
}

export const REMOVAL_FEED: FeedSource<RemovalFeedFilter> = {
  name: 'removed',
  fields: REMOVAL_FIELDS,
  from: 'open_data_removals r',
  time: 'r.removed_at',
  id: 'r.id',
  conditions(filter) {
    const conditions: SQL[] = [sql`r.jurisdiction_id = ${filter.jurisdictionId}`]
    if (filter.since) conditions.push(sql`r.removed_at > ${timestampOf(filter.since)}`)
    return conditions
  },
}

export function parseRemovalFeed(params: RemovalFeedParams, jurisdiction: { id: string; timeZone: string }): FeedQuery<RemovalFeedFilter> {
  const filter: RemovalFeedFilter = { jurisdictionId: jurisdiction.id }
  const since = datetimeParam('since', params.since, jurisdiction.timeZone)
  if (since) filter.since = since
  return feedQuery(REMOVAL_FEED, filter, { jurisdiction: filter.jurisdictionId, since }, params)
}
