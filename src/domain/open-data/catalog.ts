/**
 * The open-data catalogs, made from the feed registry (feeds.ts): a DCAT-US 1.1 catalog
 * (data.json, what Project Open Data, data.gov, CKAN and Socrata harvest) and a Frictionless
 * Data Package (datapackage.json, the data dictionary: every column's name, type and meaning).
 * Both are built from the same lists the feeds are rendered from, so they cannot disagree.
 */
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import type { Jurisdiction } from '../jurisdictions.js'
import type { CatalogSettings } from './catalog-settings.js'
import { FEED_MEDIA, FEEDS, type PublishedFeed, type PublishedField } from './feeds.js'
import { feedHorizon, timestampOf } from './horizon.js'
import { isoText, LIST_SEPARATOR } from './feed-fields.js'

export const DATA_JSON = 'data.json'
export const DATAPACKAGE_JSON = 'datapackage.json'

export interface CatalogContext {
  jurisdiction: Jurisdiction
  settings: CatalogSettings
  /** The absolute public URL of a file under /open-data/v1, e.g. `requests.csv`. */
  urlOf: (file: string) => string
}

/** When a feed's data starts and last changed (ISO 8601, as the feeds write them); null while it is empty. */
export interface FeedExtent {
  earliest: string | null
  newest: string | null
}

/**
 * Each feed's extent, read where the feeds are read and below the same horizon, so `modified`
 * is the newest `updated_datetime` a harvester can download now, never one it cannot see yet.
 */
export async function readExtents(db: Db, primary: Db, jurisdictionId: string): Promise<Map<string, FeedExtent>> {
  const horizon = timestampOf(await feedHorizon(primary, db))
  const extents = new Map<string, FeedExtent>()
  for (const feed of FEEDS) {
    const [row] = await queryRows<FeedExtent>(
      db,
      sql`select ${sql.raw(isoText('x.earliest'))} as earliest, ${sql.raw(isoText('x.newest'))} as newest from (${feed.extent(jurisdictionId, horizon)}) x`,
    )
    extents.set(feed.name, row ?? { earliest: null, newest: null })
  }
  return extents
}

/**
 * The jurisdiction's boundary as DCAT-US `spatial` wants a bounding box: "minLong,minLat,maxLong,maxLat"
 * in WGS 84 degrees; null without a boundary.
 */
export async function readSpatial(db: Db, jurisdictionId: string): Promise<string | null> {
  const [row] = await queryRows<{ bbox: string | null }>(
    db,
    sql`select concat_ws(',', round(ST_XMin(g)::numeric, 6)::float8, round(ST_YMin(g)::numeric, 6)::float8, round(ST_XMax(g)::numeric, 6)::float8, round(ST_YMax(g)::numeric, 6)::float8) as bbox
        from (select boundary::geometry as g from jurisdictions where id = ${jurisdictionId} and boundary is not null) x`,
  )
  return row?.bbox ?? null
}

const POD_SCHEMA = 'https://project-open-data.cio.gov/v1.1/schema'

/** A DCAT-US 1.1 catalog (https://resources.data.gov/resources/dcat-us/): one dataset per feed. */
export function dcatCatalog(context: CatalogContext, extents: Map<string, FeedExtent>, spatial: string | null, now: Date) {
  const { jurisdiction, settings, urlOf } = context
  const dictionary = urlOf(DATAPACKAGE_JSON)
  return {
    '@context': `${POD_SCHEMA}/catalog.jsonld`,
    '@id': urlOf(DATA_JSON),
    '@type': 'dcat:Catalog',
    conformsTo: POD_SCHEMA,
    describedBy: `${POD_SCHEMA}/catalog.json`,
    dataset: FEEDS.map((feed) => {
      const extent = extents.get(feed.name)
      return {
        '@type': 'dcat:Dataset',
        title: `${jurisdiction.name}: ${feed.title}`,
        description: feed.description,
        keyword: [...feed.keywords],
        // An empty feed has no change to date, and DCAT-US requires `modified`: the catalog's own time stands in.
        modified: extent?.newest ?? now.toISOString(),
        publisher: { '@type': 'org:Organization', name: settings.publisher },
        contactPoint: { '@type': 'vcard:Contact', fn: settings.publisher, hasEmail: `mailto:${settings.contactEmail}` },
        // Stable when the server moves to another host: harvesters key their copies on it.
        identifier: `${jurisdiction.id}/${feed.name}`,
        accessLevel: 'public',
        license: settings.license,
        ...(spatial ? { spatial } : {}),
        ...(extent?.earliest && extent.newest ? { temporal: `${extent.earliest}/${extent.newest}` } : {}),
        accrualPeriodicity: feed.accrualPeriodicity,
        describedBy: dictionary,
        describedByType: 'application/json',
        distribution: feed.formats.map((format) => ({
          '@type': 'dcat:Distribution',
          title: `${feed.title} (${FEED_MEDIA[format].format})`,
          downloadURL: urlOf(`${feed.name}.${format}`),
          mediaType: FEED_MEDIA[format].mediaType,
          format: FEED_MEDIA[format].format,
          describedBy: dictionary,
          describedByType: 'application/json',
        })),
      }
    }),
  }
}

/**
 * A Table Schema field (https://specs.frictionlessdata.io/table-schema/) for a feed column as
 * the CSV writes it: datetimes always UTC with six fraction digits (a strptime pattern says so
 * exactly; the spec's default format has no fractions), lists as one text of items, attribute
 * answers as a JSON object.
 */
export function tableSchemaField(field: PublishedField) {
  const base = { name: field.name, description: field.description }
  switch (field.type) {
    case 'datetime':
      return { ...base, type: 'datetime', format: '%Y-%m-%dT%H:%M:%S.%fZ' }
    case 'list':
      return {
        ...base,
        type: 'string',
        description: field.description.includes(`"${LIST_SEPARATOR}"`) ? field.description : `${field.description} Items separated by "${LIST_SEPARATOR}".`,
      }
    default:
      return { ...base, type: field.type }
  }
}

function tabularResource(feed: PublishedFeed, urlOf: CatalogContext['urlOf']) {
  return {
    profile: 'tabular-data-resource',
    name: feed.name,
    title: feed.title,
    description: feed.description,
    path: urlOf(`${feed.name}.csv`),
    format: 'csv',
    mediatype: FEED_MEDIA.csv.mediaType,
    encoding: 'utf-8',
    // As the CSV feeds write it: RFC 4180 (request-fields.ts).
    dialect: { delimiter: ',', lineTerminator: '\r\n', quoteChar: '"', doubleQuote: true, header: true },
    schema: {
      fields: feed.fields.map(tableSchemaField),
      // Only a missing value is empty: an empty text is written `""`, which CSV readers also read as empty.
      missingValues: [''],
      ...(feed.primaryKey.length > 0 ? { primaryKey: feed.primaryKey.length === 1 ? feed.primaryKey[0]! : [...feed.primaryKey] } : {}),
    },
  }
}

/** A Tabular Data Package (https://specs.frictionlessdata.io/data-package/): one resource per feed with a CSV form. */
export function dataPackage(context: CatalogContext) {
  const { jurisdiction, settings, urlOf } = context
  return {
    profile: 'tabular-data-package',
    // The spec's name pattern: lower case, digits and -._/ only.
    name: `${jurisdiction.id}-open-data`.toLowerCase().replace(/[^-a-z0-9._/]+/g, '-'),
    title: `${jurisdiction.name}: open 311 data`,
    licenses: [{ path: settings.license }],
    contributors: [{ title: settings.publisher, email: settings.contactEmail, role: 'publisher' }],
    resources: FEEDS.filter((feed) => feed.formats.includes('csv')).map((feed) => tabularResource(feed, urlOf)),
  }
}
