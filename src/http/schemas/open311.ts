/** JSON schemas of the Open311 wire format, shared by routes (validation, serialisation, OpenAPI). */
import { ATTRIBUTE_KEY } from '../../domain/requests/submission.js'
import { FORMATS } from '../../open311/spark.js'
import { REQUEST_CHANNELS } from '../../domain/requests/channels.js'
import { MAX_LOCALE_LENGTH } from '../../domain/catalog/locales.js'

export const formatParams = {
  type: 'object',
  required: ['format'],
  // The default only preselects json in Swagger UI: the suffix is always in the path.
  properties: { format: { type: 'string', enum: FORMATS, default: 'json', description: 'Response format, by suffix: json or xml' } },
} as const

export const jurisdictionQuery = {
  type: 'object',
  properties: {
    jurisdiction_id: {
      type: 'string',
      maxLength: 253,
      description: 'Required only when this server serves several jurisdictions',
    },
  },
} as const

/** The `locale` query parameter of the GeoReport reads. */
const localeQueryProperty = {
  locale: {
    type: 'string',
    // Longer than any tag, so a malformed value gets the language-tag message rather than a length one.
    maxLength: MAX_LOCALE_LENGTH * 4,
    description:
      "CitySDK's language of the answer (BCP 47, e.g. `fr` or `fr-CA`); wins over Accept-Language. A language the jurisdiction " +
      'does not serve gets its default (never an error); a value that is no language tag is a 400. Content-Language names the one served',
  },
} as const

/** The reads that show catalog text: jurisdiction_id and locale. */
export const localisedQuery = {
  type: 'object',
  properties: { ...jurisdictionQuery.properties, ...localeQueryProperty },
} as const

/**
 * A form field: one value, or several when the key repeats. The example is what Swagger UI's
 * "Try it out" puts in the field (without one it puts the word "string" in every field); an
 * empty one leaves the field empty, and an empty field counts as absent.
 */
export const formField = (description: string, example = '') =>
  ({ anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }], description, examples: [example] }) as const

/**
 * Answers to the service definition's attributes, one field per code in either encoding clients
 * use (src/domain/requests/submission.ts reads both); answers to unknown codes are ignored.
 * The pattern only documents: every field of a parsed form is already a string or a list. The
 * OpenAPI document shows it as additionalProperties (@fastify/swagger converts it), which is
 * true as well: any other field is accepted and ignored, so the description names the pattern.
 */
export const attributeFields = {
  [ATTRIBUTE_KEY.source]: formField(
    'Fields named `attribute[code]` (pattern `' +
      ATTRIBUTE_KEY.source +
      '`) answer attribute `code` of the service definition: `attribute[code]=value`, or `attribute[code][]=value` ' +
      'repeated for a multivaluelist (repeating `attribute[code]` works too). Example: `attribute[size]=LARGE`, ' +
      '`attribute[surface][]=WALL&attribute[surface][]=SIGN`. Other unknown fields are ignored.',
  ),
} as const

/** The two body encodings Open311 clients send; the Open311 scope parses nothing else (415). */
export const FORM_CONTENT_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data']

export const serviceListItem = {
  type: 'object',
  required: ['service_code', 'service_name', 'description', 'metadata', 'type', 'keywords', 'group'],
  properties: {
    service_code: { type: 'string' },
    service_name: { type: 'string' },
    description: { type: 'string' },
    metadata: { type: 'boolean' },
    type: { type: 'string', enum: ['realtime', 'batch', 'blackbox'] },
    keywords: { type: 'string' },
    group: { type: 'string' },
  },
  examples: [
    {
      service_code: 'pothole',
      service_name: 'Pothole',
      description: 'Report a hole or depression in the road surface of a city street or alley.',
      metadata: true,
      type: 'realtime',
      keywords: 'pothole, road damage, street hole, pavement',
      group: 'Streets & Sidewalks',
    },
  ],
} as const

const nullableString = { type: ['string', 'null'] } as const
const w3cDatetime = { type: 'string', description: 'W3C datetime with offset, e.g. 2026-05-01T09:30:00-05:00' } as const

export const attributeDefinition = {
  type: 'object',
  required: ['variable', 'code', 'datatype', 'required', 'datatype_description', 'order', 'description'],
  properties: {
    variable: { type: 'boolean' },
    code: { type: 'string' },
    datatype: { type: 'string', enum: ['string', 'number', 'datetime', 'text', 'singlevaluelist', 'multivaluelist'] },
    required: { type: 'boolean' },
    datatype_description: { type: 'string' },
    order: { type: 'integer' },
    description: { type: 'string' },
    values: {
      type: 'array',
      items: { type: 'object', required: ['key', 'name'], properties: { key: { type: 'string' }, name: { type: 'string' } } },
    },
  },
} as const

export const serviceDefinition = {
  type: 'object',
  description: 'XML: `<service_definition><service_code/><attributes><attribute>…</attribute></attributes></service_definition>`',
  required: ['service_code', 'attributes'],
  properties: { service_code: { type: 'string' }, attributes: { type: 'array', items: attributeDefinition } },
  examples: [
    {
      service_code: 'pothole',
      attributes: [
        {
          variable: true,
          code: 'size',
          datatype: 'singlevaluelist',
          required: true,
          datatype_description: 'Choose the closest size.',
          order: 1,
          description: 'Approximately how wide is the pothole?',
          values: [
            { key: 'SMALL', name: 'Smaller than a dinner plate (under 30 cm)' },
            { key: 'LARGE', name: 'Larger than a car tire (over 60 cm)' },
          ],
        },
      ],
    },
  ],
} as const

const note = {
  type: 'object',
  properties: {
    update_id: { type: 'string' },
    datetime: w3cDatetime,
    status: { type: 'string' },
    detailed_status: { type: 'string' },
    description: { type: 'string' },
    type: { type: 'string' },
  },
} as const

/** An open request that a new one may duplicate (duplicates at intake, docs/service-levels.md). */
export const possibleDuplicate = {
  type: 'object',
  required: ['service_request_id', 'distance_m', 'requested_datetime'],
  properties: {
    service_request_id: { type: 'string' },
    distance_m: { type: ['integer', 'null'], description: 'Metres, rounded; null for sensitive services (to the public)' },
    requested_datetime: w3cDatetime,
  },
} as const

export const possibleDuplicates = {
  type: 'array',
  maxItems: 5,
  description:
    'Only with extensions=true, for services with a duplicate policy: open requests of the same service within its radius and window, ' +
    'nearest first (at most 5; for policy link, the one linked to). XML: `<possible_duplicates><possible_duplicate>…`',
  items: possibleDuplicate,
} as const

export const serviceRequest = {
  type: 'object',
  description: 'XML: `<service_requests><request>…</request></service_requests>`',
  required: ['service_request_id', 'status', 'service_code', 'requested_datetime', 'updated_datetime'],
  properties: {
    service_request_id: { type: 'string' },
    status: { type: 'string', enum: ['open', 'closed'] },
    status_notes: nullableString,
    service_name: { type: 'string' },
    service_code: { type: 'string' },
    description: nullableString,
    agency_responsible: nullableString,
    service_notice: nullableString,
    requested_datetime: w3cDatetime,
    updated_datetime: w3cDatetime,
    expected_datetime: nullableString,
    address: nullableString,
    address_id: nullableString,
    zipcode: nullableString,
    lat: { type: ['number', 'null'] },
    long: { type: ['number', 'null'] },
    media_url: nullableString,
    extended_attributes: {
      type: 'object',
      description: 'Only with extensions=true',
      properties: {
        detailed_status: { type: 'string' },
        channel: { ...nullableString, description: `How it came in: one of ${REQUEST_CHANNELS.join(', ')}` },
        duplicate: { type: 'boolean' },
        parent_service_request_id: nullableString,
        closed_datetime: nullableString,
        media_urls: { type: 'array', items: { type: 'string' } },
      },
    },
    attributes: {
      type: 'array',
      description: 'Only with extensions=true: public answers to the service definition',
      items: {
        type: 'object',
        properties: {
          code: { type: 'string' },
          name: { type: 'string' },
          values: { type: 'array', items: { type: 'string' } },
          labels: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    notes: { type: 'array', description: 'Only with extensions=true: public status history', items: note },
    possible_duplicates: {
      ...possibleDuplicates,
      description:
        'Only with extensions=true, on GET of one request: for an open request (not itself a duplicate) of a service with policy suggest, ' +
        'the earlier open requests it may duplicate, found as its POST would find them now. XML: `<possible_duplicates><possible_duplicate>…`',
    },
  },
  examples: [
    {
      service_request_id: '100042',
      status: 'open',
      status_notes: null,
      service_name: 'Pothole',
      service_code: 'pothole',
      description: 'Deep pothole in the right lane',
      agency_responsible: 'Streets and Sanitation',
      service_notice: null,
      requested_datetime: '2026-05-01T09:30:00-05:00',
      updated_datetime: '2026-05-01T10:05:12-05:00',
      expected_datetime: null,
      address: '121 N LaSalle St',
      address_id: null,
      zipcode: '60602',
      lat: 41.8838,
      long: -87.6321,
      media_url: null,
    },
  ],
} as const

export const postRequestAnswer = {
  type: 'object',
  description: 'service_request_id for realtime services, token for batch and blackbox services — never both',
  properties: {
    service_request_id: { type: 'string' },
    token: { type: 'string' },
    service_notice: nullableString,
    account_id: nullableString,
    possible_duplicates: possibleDuplicates,
  },
  examples: [
    { service_request_id: '100043', service_notice: null, account_id: null },
    {
      service_request_id: '100044',
      service_notice: 'This looks like request 100041, reported 35 m away on 2026-05-01; if it is the same problem, you can follow that request instead.',
      account_id: null,
      possible_duplicates: [{ service_request_id: '100041', distance_m: 35, requested_datetime: '2026-05-01T09:30:00-05:00' }],
    },
  ],
} as const

export const tokenAnswer = {
  type: 'object',
  required: ['token'],
  properties: { service_request_id: { type: 'string' }, token: { type: 'string' } },
  examples: [{ service_request_id: '100044', token: 'a7Kq2xV9mP4wT8zL' }],
} as const

export const requestUpdate = {
  type: 'object',
  description: 'XML: `<service_request_updates><request_update>…</request_update></service_request_updates>`',
  required: ['update_id', 'service_request_id', 'status', 'updated_datetime', 'description', 'media_url'],
  properties: {
    update_id: { type: 'string' },
    service_request_id: { type: 'string' },
    status: { type: 'string' },
    updated_datetime: w3cDatetime,
    description: { type: 'string' },
    media_url: { ...nullableString, description: 'The first photo, or null (XML: an empty element)' },
    external_status_code: nullableString,
    extended_attributes: {
      type: 'object',
      properties: { detailed_status: { type: 'string' }, media_urls: { type: 'array', items: { type: 'string' } } },
    },
  },
  examples: [
    {
      update_id: '5012',
      service_request_id: '100042',
      status: 'open',
      updated_datetime: '2026-05-02T08:15:00-05:00',
      description: 'Crew scheduled for Monday',
      media_url: 'https://photos.riverton.example/100042-1.jpg',
      external_status_code: 'SCHEDULED',
      extended_attributes: { detailed_status: 'scheduled', media_urls: ['https://photos.riverton.example/100042-1.jpg'] },
    },
  ],
} as const

export const discoveryDocument = {
  type: 'object',
  required: ['changeset', 'contact', 'key_service', 'default_locale', 'locales', 'endpoints'],
  properties: {
    changeset: { type: 'string' },
    contact: { type: 'string' },
    key_service: { type: 'string' },
    default_locale: { type: 'string', description: "Extension: the language of the catalog's own texts, served when a client asks for none of `locales`" },
    locales: {
      type: 'array',
      items: { type: 'string' },
      description: 'Extension: the languages the catalog is served in (BCP 47), for the `locale` parameter or Accept-Language. XML: `<locales><locale>…</locale></locales>`',
    },
    endpoints: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          specification: { type: 'string' },
          url: { type: 'string' },
          changeset: { type: 'string' },
          type: { type: 'string', enum: ['production', 'test'] },
          formats: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
  examples: [
    {
      changeset: '2026-05-01T14:00:00Z',
      contact: '311 Open Data team, open311@riverton.example',
      key_service: 'Request an API key from open311@riverton.example',
      default_locale: 'en',
      locales: ['en', 'fr'],
      endpoints: [
        {
          specification: 'http://wiki.open311.org/GeoReport_v2',
          url: 'https://311.riverton.example/open311/v2',
          changeset: '2026-05-01T14:00:00Z',
          type: 'production',
          formats: ['text/xml', 'application/json'],
        },
      ],
    },
  ],
} as const

const listParam = (description: string) => ({ type: 'string', description }) as const

/** Paging of list answers (GET requests, GET servicerequestupdates); metadata travels in headers. */
export const pagingQuery = {
  page: listParam('Extension: 1-based page number (0 reads as 1)'),
  page_size: listParam('Extension: 1–1000, default 1000'),
} as const

export const requestSearchQuery = {
  type: 'object',
  properties: {
    ...localisedQuery.properties,
    service_request_id: listParam('Comma-separated ids; overrides every other filter'),
    service_code: listParam('Comma-separated service codes'),
    status: listParam('open, closed, or both comma-separated'),
    start_date: listParam('Inclusive lower bound on requested_datetime (W3C)'),
    end_date: listParam('Exclusive upper bound on requested_datetime (W3C); at most 90 days after start_date'),
    updated_after: listParam('Extension: updated_datetime strictly after this (W3C); results oldest-updated first'),
    updated_before: listParam('Extension: updated_datetime at or before this (W3C)'),
    lat: listParam('Extension: with long and radius'),
    long: listParam('Extension: with lat and radius'),
    radius: listParam('Extension: metres, at most 5000'),
    bbox: listParam('Extension: min_long,min_lat,max_long,max_lat'),
    ...pagingQuery,
    extensions: { type: 'boolean', description: 'Extension: add extended_attributes, attributes and notes' },
  },
} as const
