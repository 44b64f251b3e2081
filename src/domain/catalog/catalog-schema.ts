/**
 * The catalog file format (`services import`, admin `PUT /admin/v1/catalog`): a jurisdiction and
 * its services with their attribute definitions. Documented in README.md ("Catalog format").
 */
import {
  ATTRIBUTE_DATATYPES,
  type AttributeTranslation,
  type AttributeValue,
  DUPLICATE_MAX_RADIUS_M,
  DUPLICATE_MAX_WINDOW_DAYS,
  DUPLICATE_POLICIES,
  type DuplicatePolicy,
  SERVICE_PRIVACY,
  SERVICE_TYPES,
  type ServiceTranslation,
} from '../../db/schema.js'
import { LOCALE_PATTERN } from './locales.js'

const localeTag = { type: 'string', pattern: LOCALE_PATTERN, description: 'a BCP 47 language tag such as en, fr or fr-CA' } as const

/**
 * `{"fr": {…}}`: texts in the jurisdiction's other languages, by locale (each key one of
 * `jurisdiction.locales` but the default, checked in validate-catalog.ts, which names the
 * allowed ones); a field left out falls back to the default language's text.
 */
const translationsOf = (fields: Record<string, unknown>, description: string) =>
  ({
    type: 'object',
    description,
    additionalProperties: { type: 'object', additionalProperties: false, properties: fields },
  }) as const

const attributeValue = {
  type: 'object',
  additionalProperties: false,
  required: ['key', 'name'],
  properties: {
    key: { type: 'string', minLength: 1, maxLength: 200 },
    name: { type: 'string', minLength: 1, maxLength: 500 },
    translations: translationsOf({ name: { type: 'string', minLength: 1, maxLength: 500 } }, 'The choice\'s name in other languages: `{"fr": {"name": "…"}}`'),
  },
} as const

export const catalogAttributeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'datatype', 'description'],
  properties: {
    code: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,100}$', description: '1 to 100 letters, digits, "_", "." or "-"' },
    datatype: { type: 'string', enum: ATTRIBUTE_DATATYPES },
    description: { type: 'string', minLength: 1, maxLength: 2000 },
    datatype_description: { type: 'string', maxLength: 2000, default: '' },
    variable: { type: 'boolean', default: true },
    required: { type: 'boolean', default: false },
    public: { type: 'boolean', default: true, description: 'Whether answers are shown in public output' },
    order: { type: 'integer', minimum: 1, maximum: 10000 },
    values: { type: 'array', minItems: 1, maxItems: 1000, items: attributeValue },
    translations: translationsOf(
      { description: { type: 'string', minLength: 1, maxLength: 2000 }, datatype_description: { type: 'string', maxLength: 2000 } },
      'The attribute\'s texts in other languages: `{"fr": {"description": "…", "datatype_description": "…"}}`',
    ),
  },
} as const

export const catalogServiceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['service_code', 'service_name'],
  properties: {
    service_code: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]{1,64}$',
      description: '1 to 64 letters, digits, "_" or "-" (clients put it in URLs unescaped)',
    },
    service_name: { type: 'string', minLength: 1, maxLength: 200 },
    description: { type: 'string', maxLength: 4000, default: '' },
    type: { type: 'string', enum: SERVICE_TYPES, default: 'realtime' },
    keywords: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 100 }, default: [] },
    group: { type: 'string', maxLength: 200, default: '' },
    active: { type: 'boolean', default: true },
    close_rule: {
      type: 'string',
      enum: ['auto', 'manual'],
      default: 'auto',
      description: 'auto: the request closes when its last work order completes; manual: an operator closes it',
    },
    department_issues_reference: {
      type: 'boolean',
      default: false,
      description: 'Tokens resolve only once the department acknowledges the work order',
    },
    privacy: {
      type: 'string',
      enum: SERVICE_PRIVACY,
      default: 'standard',
      description:
        'sensitive: the public (open-data feeds, GeoReport reads without an admin key) sees the location generalised to a ~111 m grid cell, ' +
        'no address and no free text (docs/open-data.md, "Sensitive categories")',
    },
    service_level: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      description:
        'The deadline of this service\'s work orders: `hours` (clock time) or `business_days` (of the jurisdiction\'s calendar) after each opens; ' +
        'a department may have its own (docs/service-levels.md). Absent: no deadline',
      properties: {
        hours: { type: 'integer', minimum: 1, maximum: 87600 },
        business_days: { type: 'integer', minimum: 1, maximum: 3650 },
      },
    },
    duplicates: {
      type: 'object',
      additionalProperties: false,
      required: ['policy'],
      description:
        'Duplicates at intake (docs/service-levels.md): on POST, open requests of this service within `radius_m` metres and ' +
        '`window_days` days are looked for. `suggest`: the request is created and the answer names the likely original; ' +
        '`link`: it is created as a duplicate of the nearest one, without a work order of its own. Absent: off',
      properties: {
        policy: { type: 'string', enum: DUPLICATE_POLICIES },
        radius_m: { type: 'integer', minimum: 1, maximum: DUPLICATE_MAX_RADIUS_M, description: 'Required unless the policy is off' },
        window_days: { type: 'integer', minimum: 1, maximum: DUPLICATE_MAX_WINDOW_DAYS, description: 'Required unless the policy is off' },
      },
    },
    attributes: { type: 'array', maxItems: 200, items: catalogAttributeSchema, default: [] },
    translations: translationsOf(
      {
        service_name: { type: 'string', minLength: 1, maxLength: 200 },
        description: { type: 'string', maxLength: 4000 },
        group: { type: 'string', maxLength: 200 },
        keywords: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 100 } },
      },
      'The service\'s texts in other languages: `{"fr": {"service_name": "…", "description": "…", "group": "…", "keywords": […]}}`',
    ),
  },
} as const

const clockTime = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' } as const

/** The jurisdiction's business calendar, which deadlines in business days follow (docs/service-levels.md). */
export const catalogCalendarSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Working days (ISO weekdays, 1 = Monday), working hours in the jurisdiction\'s time zone, and holidays',
  properties: {
    working_days: { type: 'array', minItems: 1, maxItems: 7, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 7 } },
    opens: { ...clockTime, description: 'HH:MM, local time' },
    closes: { ...clockTime, description: 'HH:MM, local time, after opens' },
    holidays: { type: 'array', maxItems: 3660, uniqueItems: true, items: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', description: 'YYYY-MM-DD' } },
  },
} as const

/** The jurisdiction's retention policy (docs/retention.md); absent: reporters' data is kept until erased on demand. */
export const catalogRetentionSchema = {
  type: 'object',
  additionalProperties: false,
  description: "How long reporters' personal data is kept once a request closes",
  properties: {
    anonymise_after_days: {
      type: ['integer', 'null'],
      minimum: 1,
      maximum: 36500,
      description: "Days after a request closes when its reporter's personal data is anonymised; null (the default): kept until erased on demand",
    },
  },
} as const

export const catalogSchema = {
  $id: 'catalog',
  type: 'object',
  additionalProperties: false,
  required: ['jurisdiction', 'services'],
  properties: {
    jurisdiction: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'name', 'time_zone'],
      properties: {
        id: {
          type: 'string',
          pattern: '^[A-Za-z0-9.-]{1,253}$',
          description: '1 to 253 letters, digits, "." or "-": the Open311 jurisdiction_id, by convention the city\'s domain',
        },
        name: { type: 'string', minLength: 1, maxLength: 200 },
        time_zone: { type: 'string', minLength: 1, maxLength: 64 },
        contact: { type: 'string', maxLength: 1000, default: '' },
        key_service: { type: 'string', maxLength: 1000, default: '' },
        calendar: catalogCalendarSchema,
        retention: catalogRetentionSchema,
        default_locale: { ...localeTag, default: 'en', description: 'The language of the catalog\'s own texts (BCP 47): served when a client asks for none the jurisdiction has' },
        locales: {
          type: 'array',
          minItems: 1,
          maxItems: 50,
          uniqueItems: true,
          items: localeTag,
          description: 'Every language served, default_locale among them; absent: default_locale alone',
        },
      },
    },
    services: { type: 'array', maxItems: 5000, items: catalogServiceSchema },
  },
} as const

export interface CatalogAttribute {
  code: string
  datatype: (typeof ATTRIBUTE_DATATYPES)[number]
  description: string
  datatype_description: string
  variable: boolean
  required: boolean
  public: boolean
  order?: number
  values?: AttributeValue[]
  translations?: Record<string, AttributeTranslation>
}

export interface CatalogService {
  service_code: string
  service_name: string
  description: string
  type: (typeof SERVICE_TYPES)[number]
  keywords: string[]
  group: string
  active: boolean
  close_rule: 'auto' | 'manual'
  department_issues_reference: boolean
  privacy: (typeof SERVICE_PRIVACY)[number]
  service_level?: ServiceLevel
  duplicates?: DuplicateSettings
  attributes: CatalogAttribute[]
  translations?: Record<string, ServiceTranslation>
}

/** A service's duplicate policy; radius and window are present unless the policy is off (validate-catalog.ts). */
export interface DuplicateSettings {
  policy: DuplicatePolicy
  radius_m?: number
  window_days?: number
}

/** Exactly one of the two. */
export type ServiceLevel = { hours: number; business_days?: never } | { business_days: number; hours?: never }

export interface CatalogCalendar {
  working_days?: number[]
  opens?: string
  closes?: string
  holidays?: string[]
}

export interface CatalogRetention {
  anonymise_after_days?: number | null
}

/** What a jurisdiction without a calendar of its own works: Monday to Friday, 08:00–17:00, no holidays. */
export const DEFAULT_CALENDAR: Required<CatalogCalendar> = { working_days: [1, 2, 3, 4, 5], opens: '08:00', closes: '17:00', holidays: [] }

export interface Catalog {
  jurisdiction: {
    id: string
    name: string
    time_zone: string
    contact: string
    key_service: string
    calendar?: CatalogCalendar
    retention?: CatalogRetention
    /** `en` when absent (validateCatalog fills it in; importCatalog reads it so). */
    default_locale?: string
    /** [default_locale] when absent. */
    locales?: string[]
  }
  services: CatalogService[]
}
