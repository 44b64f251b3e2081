/**
 * The published feeds, as the catalogs describe them: data.json has one DCAT dataset per entry
 * and datapackage.json one tabular resource per entry with a CSV form. A new feed (the status
 * history, the removals) is one more entry here; the catalogs follow without other changes.
 */
import { type SQL, sql } from 'drizzle-orm'
import { inRequestFeed } from './request-feed.js'
import type { FeedFormat } from './request-feed.js'
import { type FeedField, REQUEST_FIELDS } from './request-fields.js'

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

export const FEEDS: readonly PublishedFeed[] = [
  {
    name: 'requests',
    title: '311 service requests',
    description:
      'Every public 311 service request: what was reported (the request type, never the reporter), where, when, ' +
      'its status and the departments responsible, one row per request at its latest version. ' +
      'Harvest it whole, or incrementally by updated_datetime (docs/open-data.md).',
    keywords: ['311', 'service requests', 'Open311', 'city services'],
    formats: ['csv', 'json', 'geojson'],
    fields: REQUEST_FIELDS,
    primaryKey: ['service_request_id'],
    // Hourly: the downloadURLs are whole dumps, which caches may keep for an hour
    // (Cache-Control: max-age=3600), so a download reflects changes within the hour. A harvester
    // that wants changes sooner pages with updated_after, which is never cached, as often as it likes.
    accrualPeriodicity: 'R/PT1H',
    // min(requested_at) and max(updated_at) each read one end of their index.
    extent: (jurisdictionId, horizon) => {
      const rows = sql.join([...inRequestFeed(jurisdictionId), sql`sr.updated_at < ${horizon}`], sql` and `)
      return sql`select (select max(sr.updated_at) from service_requests sr where ${rows}) as newest,
                        (select min(sr.requested_at) from service_requests sr where ${rows}) as earliest`
    },
  },
]
