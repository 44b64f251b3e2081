/** JSON schemas of the open-data feeds (/open-data/v1). */
import { MAX_FEED_PAGE } from '../../domain/open-data/keyset-feed.js'
import { jurisdictionQuery } from './open311.js'

export const feedFormatParams = (formats: readonly string[]) =>
  ({
    type: 'object',
    required: ['format'],
    properties: { format: { type: 'string', enum: formats, description: `Response format, by suffix: ${formats.join(', ')}` } },
  }) as const

const datetimeQuery = (description: string) =>
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
    updated_after: datetimeQuery('Only requests changed after this time (exclusive).'),
    updated_before: datetimeQuery('Only requests last changed at or before this time (inclusive).'),
    requested_after: datetimeQuery('Only requests submitted after this time (exclusive).'),
    requested_before: datetimeQuery('Only requests submitted at or before this time (inclusive).'),
    bbox: { type: 'string', maxLength: 200, description: 'min_long,min_lat,max_long,max_lat (WGS 84), at most 10 degrees on a side.' },
  },
} as const

export const updateFeedQuery = {
  type: 'object',
  properties: {
    ...feedParams,
    service_request_id: { type: 'string', maxLength: 20000, description: 'Comma-separated request ids: only their history.' },
    service_code: serviceCodes,
    updated_after: datetimeQuery('Only entries made after this time (exclusive).'),
    updated_before: datetimeQuery('Only entries made at or before this time (inclusive).'),
  },
} as const

export const removalFeedQuery = {
  type: 'object',
  properties: {
    ...feedParams,
    since: datetimeQuery('Only requests removed after this time (exclusive).'),
  },
} as const

// The catalogs (data.json, datapackage.json). Response schemas also decide what is sent: every
// property the documents carry is listed here, or the serialiser would drop it.
const text = { type: 'string' } as const
const texts = { type: 'array', items: text } as const

const dcatDistribution = {
  type: 'object',
  required: ['@type', 'title', 'downloadURL', 'mediaType', 'format', 'describedBy'],
  properties: {
    '@type': { type: 'string', enum: ['dcat:Distribution'] },
    title: text,
    downloadURL: { type: 'string', format: 'uri', description: 'The whole feed in this format' },
    mediaType: text,
    format: text,
    describedBy: { type: 'string', format: 'uri', description: 'The data dictionary: datapackage.json' },
    describedByType: text,
  },
} as const

const dcatDataset = {
  type: 'object',
  required: ['@type', 'title', 'description', 'keyword', 'modified', 'publisher', 'contactPoint', 'identifier', 'accessLevel', 'license', 'accrualPeriodicity', 'distribution'],
  properties: {
    '@type': { type: 'string', enum: ['dcat:Dataset'] },
    title: text,
    description: text,
    keyword: texts,
    modified: { type: 'string', description: 'The newest updated_datetime in the feed (ISO 8601, UTC), or the catalog\'s time when the feed is empty' },
    publisher: { type: 'object', required: ['@type', 'name'], properties: { '@type': { type: 'string', enum: ['org:Organization'] }, name: text } },
    contactPoint: {
      type: 'object',
      required: ['@type', 'fn', 'hasEmail'],
      properties: { '@type': { type: 'string', enum: ['vcard:Contact'] }, fn: text, hasEmail: { type: 'string', description: 'mailto:…' } },
    },
    identifier: text,
    accessLevel: { type: 'string', enum: ['public'] },
    license: { type: 'string', format: 'uri' },
    spatial: { type: 'string', description: 'The jurisdiction\'s bounding box: min_long,min_lat,max_long,max_lat (WGS 84), when it has a boundary' },
    temporal: { type: 'string', description: 'ISO 8601 interval: the first request\'s requested_datetime / the newest updated_datetime' },
    accrualPeriodicity: { type: 'string', description: 'ISO 8601 repeating duration' },
    describedBy: { type: 'string', format: 'uri' },
    describedByType: text,
    distribution: { type: 'array', items: dcatDistribution },
  },
} as const

export const dcatCatalogResponse = {
  description: 'A DCAT-US 1.1 (Project Open Data) catalog: one dataset per feed',
  type: 'object',
  required: ['@context', '@type', 'conformsTo', 'describedBy', 'dataset'],
  properties: {
    '@context': text,
    '@id': text,
    '@type': { type: 'string', enum: ['dcat:Catalog'] },
    conformsTo: text,
    describedBy: text,
    dataset: { type: 'array', items: dcatDataset },
  },
} as const

const tableSchemaField = {
  type: 'object',
  required: ['name', 'type', 'description'],
  properties: {
    name: text,
    type: { type: 'string', enum: ['string', 'number', 'datetime', 'boolean', 'object'] },
    format: { type: 'string', description: 'datetime: a strptime pattern' },
    description: text,
  },
} as const

const tabularResource = {
  type: 'object',
  required: ['profile', 'name', 'path', 'format', 'mediatype', 'encoding', 'dialect', 'schema'],
  properties: {
    profile: { type: 'string', enum: ['tabular-data-resource'] },
    name: text,
    title: text,
    description: text,
    path: { type: 'string', format: 'uri', description: 'The whole CSV feed' },
    format: { type: 'string', enum: ['csv'] },
    mediatype: { type: 'string', enum: ['text/csv'] },
    encoding: { type: 'string', enum: ['utf-8'] },
    dialect: {
      type: 'object',
      properties: { delimiter: text, lineTerminator: text, quoteChar: text, doubleQuote: { type: 'boolean' }, header: { type: 'boolean' } },
    },
    schema: {
      type: 'object',
      required: ['fields'],
      properties: {
        fields: { type: 'array', items: tableSchemaField },
        missingValues: texts,
        primaryKey: { anyOf: [text, texts] },
      },
    },
  },
} as const

export const dataPackageResponse = {
  description: 'A Frictionless Tabular Data Package (v1): one resource per CSV feed, with its Table Schema',
  type: 'object',
  required: ['profile', 'name', 'resources'],
  properties: {
    profile: { type: 'string', enum: ['tabular-data-package'] },
    name: text,
    title: text,
    licenses: { type: 'array', items: { type: 'object', properties: { path: text, name: text, title: text } } },
    contributors: { type: 'array', items: { type: 'object', properties: { title: text, email: text, role: text } } },
    resources: { type: 'array', items: tabularResource },
  },
} as const
