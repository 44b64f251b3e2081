/**
 * The updates feed: the public status history of public requests — what GeoReport's
 * servicerequestupdates shows, without its 90-day window, paged by cursor. The order is when an
 * entry entered the public history (changed_at: its creation, or its request's return to
 * public view, or its batch token's acceptance), not when it happened: an entry that becomes
 * public late must come after what a harvester has already read.
 */
import { type SQL, sql } from 'drizzle-orm'
import { TOKEN_ACCEPTED } from '../requests/find-requests.js'
import { parseList } from '../requests/search-params.js'
import { unlessGeneralised } from '../requests/sensitive-location.js'
import type { FeedField } from './feed-fields.js'
import { timestampOf } from './horizon.js'
import { checkRange, datetimeParam, type FeedQuery, type FeedSource, feedQuery } from './keyset-feed.js'

export const UPDATE_FIELDS: readonly FeedField[] = [
  { name: 'update_id', type: 'string', description: 'The history entry\'s id, as in GeoReport `servicerequestupdates`; stable. The primary key.', value: 'u.update_id' },
  { name: 'service_request_id', type: 'string', description: 'The request it belongs to (a row of the requests feed).', value: 'sr.public_id' },
  { name: 'status', type: 'string', description: 'The request\'s status after this entry: `open` or `closed`.', value: 'u.status' },
  { name: 'detailed_status', type: 'string', description: 'The request\'s detailed status after this entry.', value: 'u.detailed_status' },
  // Free text about the request: withheld for sensitive services, as GeoReport's notes are.
  { name: 'public_note', type: 'string', description: 'The public note of the entry (what servicerequestupdates calls `description`); empty for sensitive request types.', value: unlessGeneralised('public', 'sr', 'u.description') },
  { name: 'datetime', type: 'datetime', description: 'When it happened.', value: 'u.created_at' },
  { name: 'updated_datetime', type: 'datetime', description: 'When it entered the public history (usually `datetime`; later when its request came back into public view): the feed\'s order and the incremental harvest\'s `updated_after`.', value: 'u.changed_at' },
]

export interface UpdateFeedParams {
  service_request_id?: string
  service_code?: string
  updated_after?: string
  updated_before?: string
  limit?: number
  cursor?: string
}

export interface UpdateFeedFilter {
  jurisdictionId: string
  serviceRequestIds?: string[]
  serviceCodes?: string[]
  /** The entry's updated_datetime, microseconds (decimal text): after exclusive, before inclusive. */
  after?: string
  before?: string
}

export const UPDATE_FEED: FeedSource<UpdateFeedFilter> = {
  name: 'updates',
  fields: UPDATE_FIELDS,
  from: `request_updates u
         join service_requests sr on sr.id = u.request_id
         join services s on s.id = sr.service_id`,
  time: 'u.changed_at',
  id: 'u.id',
  conditions(filter) {
    const conditions: SQL[] = [sql`sr.jurisdiction_id = ${filter.jurisdictionId}`, sql`sr.is_public`, sql`u.is_public`, TOKEN_ACCEPTED]
    if (filter.serviceRequestIds) conditions.push(sql`sr.public_id = any(${sql.param(filter.serviceRequestIds)}::text[])`)
    if (filter.serviceCodes) conditions.push(sql`s.service_code = any(${sql.param(filter.serviceCodes)}::text[])`)
    if (filter.after) conditions.push(sql`u.changed_at > ${timestampOf(filter.after)}`)
    if (filter.before) conditions.push(sql`u.changed_at <= ${timestampOf(filter.before)}`)
    return conditions
  },
}

export function parseUpdateFeed(params: UpdateFeedParams, jurisdiction: { id: string; timeZone: string }): FeedQuery<UpdateFeedFilter> {
  const filter: UpdateFeedFilter = { jurisdictionId: jurisdiction.id }
  const ids = parseList(params.service_request_id)
  if (ids) filter.serviceRequestIds = ids
  const codes = parseList(params.service_code)
  if (codes) filter.serviceCodes = codes
  const after = datetimeParam('updated_after', params.updated_after, jurisdiction.timeZone)
  const before = datetimeParam('updated_before', params.updated_before, jurisdiction.timeZone)
  checkRange('updated', after, before)
  if (after) filter.after = after
  if (before) filter.before = before
  return feedQuery(
    UPDATE_FEED,
    filter,
    { jurisdiction: filter.jurisdictionId, service_request_id: ids, service_code: codes, updated_after: after, updated_before: before },
    params,
  )
}
