/** JSON schemas of the open-data feeds (/open-data/v1). */
import { MAX_FEED_PAGE } from '../../domain/open-data/keyset-feed.js'
import { jurisdictionQuery } from './open311.js'

export const feedFormatParams = (formats: readonly string[]) =>
  ({
    type: 'object',
    required: ['format'],
    properties: { format: { type: 'string', enum: formats, description: `Response format, by suffix: ${formats.join(', ')}` } },
  }) as const

const datetimeParam = (description: string) =>
  ({ type: 'string', maxLength: 64, description: `${description} ISO 8601, e.g. 2026-01-31T13:00:00.123456Z (without an offset: the jurisdiction's local time).` }) as const

/** What every feed takes: paging, CSV options, the jurisdiction. */
const feedParams = {
  ...jurisdictionQuery.properties,
  limit: {
    type: 'integer',
    minimum: 1,
    maximum: MAX_FEED_PAGE,
    description: `A page of at most this many rows; the next page's URL is in the Link header (rel="next"). Without it the whole feed streams in one response.`,
  },
  cursor: { type: 'string', maxLength: 512, description: 'Opaque: from the previous page\'s Link header, with the same filters.' },
  bom: { type: 'boolean', default: false, description: 'CSV: start with a UTF-8 byte-order mark (for spreadsheets).' },
  trailer: { type: 'boolean', default: false, description: 'CSV: end with a line `# complete: N rows`, so a cut-off download shows.' },
} as const

const serviceCodes = { type: 'string', maxLength: 4000, description: 'Comma-separated service codes.' } as const

export const requestFeedQuery = {
  type: 'object',
  properties: {
    ...feedParams,
    service_code: serviceCodes,
    status: { type: 'string', maxLength: 20, description: 'open, closed, or both comma-separated.' },
    updated_after: datetimeParam('Only requests changed after this time (exclusive).'),
    updated_before: datetimeParam('Only requests last changed at or before this time (inclusive).'),
    requested_after: datetimeParam('Only requests submitted after this time (exclusive).'),
    requested_before: datetimeParam('Only requests submitted at or before this time (inclusive).'),
    bbox: { type: 'string', maxLength: 200, description: 'min_long,min_lat,max_long,max_lat (WGS 84), at most 10 degrees on a side.' },
  },
} as const

export const updateFeedQuery = {
  type: 'object',
  properties: {
    ...feedParams,
    service_request_id: { type: 'string', maxLength: 20000, description: 'Comma-separated request ids: only their history.' },
    service_code: serviceCodes,
    updated_after: datetimeParam('Only entries made after this time (exclusive).'),
    updated_before: datetimeParam('Only entries made at or before this time (inclusive).'),
  },
} as const

export const removalFeedQuery = {
  type: 'object',
  properties: {
    ...feedParams,
    since: datetimeParam('Only requests removed after this time (exclusive).'),
  },
} as const
