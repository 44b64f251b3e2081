/**
 * The published feeds, as the catalogs describe them: data.json has one DCAT dataset per entry
 * and datapackage.json one tabular resource per entry with a CSV form. A new feed (the status
 * history, the removals, the statistics) is one more entry here; the catalogs follow without
 * other changes.
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

/** What the catalogs say of a column: its name, type and meaning (the keyset feeds' fields say how to render it too). */
export type PublishedField = Pick<FeedField, 'name' | 'type' | 'description'>

export interface PublishedFeed {
  /** The path under /open-data/v1 without the suffix, and the Data Package resource's name. */
  name: string
  title: string
  description: string
  keywords: readonly string[]
  formats: readonly FeedFormat[]
  /** The columns, in order: the Table Schema is made from them. */
  fields: readonly PublishedField[]
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

/** The statistics' columns (stats.ts, the reports' PUBLIC_STATS), in the order the CSV has them. */
const STATS_FIELDS: readonly PublishedField[] = [
  { name: 'period', type: 'string', description: 'The month, as its first day (YYYY-MM-DD), in the jurisdiction\'s time zone.' },
  { name: 'service_code', type: 'string', description: 'The request type\'s code (GeoReport `service_code`).' },
  { name: 'created', type: 'number', description: 'Public requests received in the month. Empty when from 1 to 4.' },
  { name: 'closed', type: 'number', description: 'Public requests closed in the month. Empty when from 1 to 4.' },
  { name: 'close_median_seconds', type: 'number', description: 'The median time from received to closed of those closed, in seconds (3 significant digits). Empty over fewer than 5.' },
  { name: 'acknowledged', type: 'number', description: 'Work orders of public requests that a department acknowledged in the month. Empty when from 1 to 4.' },
  { name: 'ack_median_seconds', type: 'number', description: 'The median time from received to acknowledged, in seconds (3 significant digits). Empty over fewer than 5.' },
  { name: 'suppressed', type: 'boolean', description: 'Whether a figure of the row was left empty because it was too small to publish.' },
]

/**
 * From the start of the rollups' first day with public requests to the end of their last (or
 * now, while that day lasts), the days being the jurisdiction's: both ends of the primary key's
 * range (jurisdiction, grain, day).
 */
function statsExtent(jurisdictionId: string): SQL {
  const rows = sql`from report_daily where jurisdiction_id = ${jurisdictionId} and grain = 'service' and public`
  const zone = sql`(select time_zone from jurisdictions where id = ${jurisdictionId})`
  return sql`select least(now(), (select (max(day) + 1)::timestamp ${rows}) at time zone ${zone}) as newest,
                    (select min(day)::timestamp ${rows}) at time zone ${zone} as earliest`
}

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
  {
    name: 'stats',
    title: '311 statistics by month and service',
    description:
      'Per month and request type: public requests received and closed, work orders acknowledged, and the median times to close ' +
      'and to acknowledge. Counts from 1 to 4 and medians over fewer than 5 values are left empty, and the row says so (suppressed). ' +
      'Whole calendar months; the last twelve by default, any range with from and to (docs/open-data.md, "Statistics").',
    keywords: ['311', 'service requests', 'statistics', 'response times'],
    formats: ['csv', 'json'],
    fields: STATS_FIELDS,
    primaryKey: ['period', 'service_code'],
    // The current month's figures move every day; past months settle.
    accrualPeriodicity: 'R/P1D',
    extent: statsExtent,
  },
]
