/**
 * The published feeds, as the catalogs describe them: data.json has one DCAT dataset per entry
 * and datapackage.json one tabular resource per entry with a CSV form. A new feed (the status
 * history, the removals) is one more entry here; the catalogs follow without other changes.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { FeedField } from './feed-fields.js'
import { type FeedFormat, type FeedSource, feedFormats } from './keyset-feed.js'
import { REMOVAL_FEED } from './removal-feed.js'
import { REQUEST_FEED } from './request-feed.js'
import { UPDATE_FEED } from './update-feed.js'

/** How each format is announced: the media type (no parameters: DCAT-US's pattern has none) and a name for people. */
export const FEED_MEDIA: Record<FeedFormat, { mediaType: string; format: string }> = {
  csv: { mediaType: 'text/csv', format: 'CSV' },
  json: { mediaType: 'application/json', format: 'JSON' },
  geojson: { mediaType: 'application/geo+json', format: 'GeoJSON' },
}

export interface PublishedFeed {
  /** The path under /open-data/v1 without the suffix, and the Data Package resource's name. */
  name: string
  title: string
  description: string
  keywords: readonly string[]
  formats: readonly FeedFormat[]
  /** The columns, in order: the Table Schema is made from them. */
  fields: readonly FeedField[]
  /** Empty when no column identifies a row (a request can be removed more than once). */
  primaryKey: readonly string[]
  /** DCAT-US accrualPeriodicity: an ISO 8601 repeating duration. */
  accrualPeriodicity: string
  /**
   * SQL for one row (`newest`, `earliest`: timestamptz, null when the feed is empty) over the
   * rows the feed serves below `horizon`: the catalog's `modified` and `temporal`. Each must be
   * an index scan: the catalog is read by every harvester before it decides to download.
   */
  extent(jurisdictionId: string, horizon: SQL): SQL
}

/**
 * The rows a feed serves below `horizon`: their newest change, and the earliest of `earliest`
 * (default: the change time). Both read one end of an index.
 */
function extentOf(source: FeedSource<{ jurisdictionId: string }>, earliest = source.time) {
  return (jurisdictionId: string, horizon: SQL) => {
    const rows = sql.join([...source.conditions({ jurisdictionId }), sql`${sql.raw(source.time)} < ${horizon}`], sql` and `)
    return sql`select (select max(${sql.raw(source.time)}) from ${sql.raw(source.from)} where ${rows}) as newest,
                      (select min(${sql.raw(earliest)}) from ${sql.raw(source.from)} where ${rows}) as earliest`
  }
}

const described = (source: FeedSource<{ jurisdictionId: string }>) => ({ name: source.name, fields: source.fields, formats: feedFormats(source) })

// Hourly: the downloadURLs are whole dumps, which caches may keep for an hour
// (Cache-Control: max-age=3600), so a download reflects changes within the hour. A harvester
// that wants changes sooner pulls with updated_after (or since), never cached, as often as it likes.
const HOURLY = 'R/PT1H'

export const FEEDS: readonly PublishedFeed[] = [
  {
    ...described(REQUEST_FEED),
    title: '311 service requests',
    description:
      'Every public 311 service request: what was reported (the request type, never the reporter), where, when, ' +
      'its status and the departments responsible, one row per request at its latest version. ' +
      'Harvest it whole, or incrementally by updated_datetime (docs/open-data.md).',
    keywords: ['311', 'service requests', 'Open311', 'city services'],
    primaryKey: ['service_request_id'],
    accrualPeriodicity: HOURLY,
    extent: extentOf(REQUEST_FEED, 'sr.requested_at'),
  },
  {
    ...described(UPDATE_FEED),
    title: '311 service request status history',
    description:
      'Every public status change and note of every public 311 service request, one row per history entry. ' +
      'Harvest it whole, or incrementally by updated_datetime (docs/open-data.md).',
    keywords: ['311', 'service requests', 'status history', 'Open311'],
    primaryKey: ['update_id'],
    accrualPeriodicity: HOURLY,
    extent: extentOf(UPDATE_FEED, 'u.created_at'),
  },
  {
    ...described(REMOVAL_FEED),
    title: '311 service requests removed from public view',
    description:
      'The ids of 311 service requests that left public view (withdrawn by an operator, or deleted) and when: ' +
      'delete them from your copy. Pull incrementally with since=<the latest removed_datetime> (docs/open-data.md).',
    keywords: ['311', 'service requests', 'deletions'],
    primaryKey: [],
    accrualPeriodicity: HOURLY,
    extent: extentOf(REMOVAL_FEED),
  },
]
