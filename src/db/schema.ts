/**
 * The one home of the database schema. drizzle-kit generates `migrations/` from this file;
 * what drizzle cannot express (extensions) lives in hand-written migrations beside them.
 *
 * Privacy rule: the reporter's personal data lives in `request_reporters`, never in
 * `service_requests`, so a public query over service requests cannot select it by accident.
 *
 * Room reserved for the department-integration layer (departments, service routes, work
 * orders, outbox, inbound events): `request_updates.source` already distinguishes
 * department updates, and `api_keys.scopes` carries the department credential scope.
 */
import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  check,
  customType,
  date,
  index,
  integer,
  jsonb,
  pgSequence,
  pgTable,
  primaryKey,
  smallint,
  text,
  time,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core'

/**
 * PostGIS geography; values are written and read through ST_* functions in SQL.
 * drizzle-kit quotes parameterised custom types, so the subtype and SRID
 * (`geography(Point,4326)`, `geography(MultiPolygon,4326)`) are set by the hand-written
 * migration `0002_geography_subtypes.sql`.
 */
const geography = (name: string) =>
  customType<{ data: string; driverData: string }>({ dataType: () => 'geography' })(name)

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow()
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow()
/**
 * When a row that the open-data feeds page through changed: `open311_change_time()` (migration
 * 0009) takes the transaction id before it reads the clock, which is what lets a feed tell which
 * times are settled (src/domain/open-data/horizon.ts). Updates of service requests are stamped
 * by a trigger, so no code sets these by hand.
 */
const changeTime = (name: string) =>
  timestamp(name, { withTimezone: true }).notNull().default(sql`open311_change_time()`)

export const SERVICE_TYPES = ['realtime', 'batch', 'blackbox'] as const
export type ServiceType = (typeof SERVICE_TYPES)[number]

export const ATTRIBUTE_DATATYPES = [
  'string',
  'number',
  'datetime',
  'text',
  'singlevaluelist',
  'multivaluelist',
] as const
export type AttributeDatatype = (typeof ATTRIBUTE_DATATYPES)[number]

/** A service's texts in one of its jurisdiction's other languages; a field left out falls back to the default language's. */
export interface ServiceTranslation {
  service_name?: string
  description?: string
  group?: string
  keywords?: string[]
}

/** An attribute's texts in another language, likewise. */
export interface AttributeTranslation {
  description?: string
  datatype_description?: string
}

/** A list attribute's choice, with its name in other languages. */
export interface AttributeValue {
  key: string
  name: string
  translations?: Record<string, { name?: string }>
}

/**
 * `standard`: requests are published as they are. `sensitive` (e.g. noise at a home, an
 * abandoned vehicle with its plate): the public sees the location generalised to a ~111 m grid
 * cell and no free text (src/domain/requests/sensitive-location.ts, docs/open-data.md).
 */
export const SERVICE_PRIVACY = ['standard', 'sensitive'] as const
export type ServicePrivacy = (typeof SERVICE_PRIVACY)[number]

/**
 * What a POST does with open requests of the same service nearby (docs/service-levels.md,
 * "Duplicates at intake"): `off` looks for none; `suggest` creates the request and names the
 * likely original in the answer; `link` creates it as a duplicate of the nearest one, with no
 * work order of its own (src/domain/requests/duplicate-search.ts).
 */
export const DUPLICATE_POLICIES = ['off', 'suggest', 'link'] as const
export type DuplicatePolicy = (typeof DUPLICATE_POLICIES)[number]
/** Bounds of a policy's radius and window: beyond them the search stops being about one spot and one spell. */
export const DUPLICATE_MAX_RADIUS_M = 5000
export const DUPLICATE_MAX_WINDOW_DAYS = 365

export const OPEN311_STATUSES = ['open', 'closed'] as const
export type Open311Status = (typeof OPEN311_STATUSES)[number]

export const UPDATE_SOURCES = ['citizen', 'operator', 'department', 'system'] as const

/**
 * How a request came in (src/domain/requests/channels.ts): stored on each request, the default
 * of each API key, and what reports group by. Adding one is a migration (api_keys' check).
 */
export const REQUEST_CHANNELS = ['web', 'app', 'phone', 'chat', 'email', 'walk_in', 'text', 'social', 'internal'] as const
export type RequestChannel = (typeof REQUEST_CHANNELS)[number]

const inList = (column: string, values: readonly string[]) =>
  sql.raw(`${column} in (${values.map((v) => `'${v}'`).join(', ')})`)

export const jurisdictions = pgTable('jurisdictions', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  timeZone: text('time_zone').notNull(),
  boundary: geography('boundary'),
  contact: text('contact').notNull().default(''),
  keyService: text('key_service').notNull().default(''),
  /**
   * The business calendar that service levels counted in business days follow, in `time_zone`:
   * ISO weekdays (1 = Monday) that are working days, the working hours of each, and holidays.
   * docs/service-levels.md.
   */
  workingDays: smallint('working_days').array().notNull().default(sql`'{1,2,3,4,5}'::smallint[]`),
  opensAt: time('opens_at').notNull().default('08:00'),
  closesAt: time('closes_at').notNull().default('17:00'),
  holidays: date('holidays').array().notNull().default(sql`'{}'::date[]`),
  /**
   * Retention (docs/retention.md): reporters' personal data is anonymised this many days after
   * their request closed (src/domain/retention/); null keeps it until an operator erases it.
   */
  anonymiseAfterDays: integer('anonymise_after_days'),
  /**
   * Localisation (README "Catalog format"): the language of the catalog's own texts (BCP 47),
   * and every language the jurisdiction serves, the default among them. Translations name one
   * of the others; GeoReport reads negotiate among them (src/domain/catalog/locales.ts).
   */
  defaultLocale: text('default_locale').notNull().default('en'),
  locales: text('locales').array().notNull().default(sql`'{en}'::text[]`),
  /** Moves whenever the service catalog changes: discovery's `changeset` and ETags derive from it. */
  catalogChangedAt: timestamp('catalog_changed_at', { withTimezone: true }).notNull().defaultNow(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, () => [
  check('jurisdictions_calendar_check', sql`cardinality(working_days) > 0 and working_days <@ '{1,2,3,4,5,6,7}'::smallint[] and closes_at > opens_at`),
  check('jurisdictions_anonymise_after_days_check', sql`anonymise_after_days > 0 is not false`),
  check('jurisdictions_default_locale_check', sql`default_locale = any(locales)`),
])

export const services = pgTable(
  'services',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    jurisdictionId: text('jurisdiction_id')
      .notNull()
      .references(() => jurisdictions.id),
    serviceCode: text('service_code').notNull(),
    serviceName: text('service_name').notNull(),
    description: text('description').notNull().default(''),
    type: text('type').$type<ServiceType>().notNull().default('realtime'),
    keywords: text('keywords').array().notNull().default(sql`'{}'::text[]`),
    group: text('service_group').notNull().default(''),
    active: boolean('active').notNull().default(true),
    /** `auto`: the request closes when its last work order completes; `manual`: an operator closes it. */
    closeRule: text('close_rule').$type<'auto' | 'manual'>().notNull().default('auto'),
    /** Tokens resolve only when the department acknowledges the work order (it issues the reference). */
    departmentIssuesReference: boolean('department_issues_reference').notNull().default(false),
    /** What the public sees of its requests: SERVICE_PRIVACY. */
    privacy: text('privacy').$type<ServicePrivacy>().notNull().default('standard'),
    /** The service level: work orders are due this many hours (clock time) after they open … */
    slaHours: integer('sla_hours'),
    /** … or this many business days of the jurisdiction's calendar (at most one of the two; neither: no deadline). */
    slaBusinessDays: integer('sla_business_days'),
    /** Duplicates at intake: DUPLICATE_POLICIES, with its radius (metres) and window (days); both set unless off. */
    duplicatePolicy: text('duplicate_policy').$type<DuplicatePolicy>().notNull().default('off'),
    duplicateRadiusM: integer('duplicate_radius_m'),
    duplicateWindowDays: integer('duplicate_window_days'),
    /** The catalog's `translations` as the file spells them (locale → texts), null when it has none. */
    translations: jsonb('translations').$type<Record<string, ServiceTranslation>>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('services_jurisdiction_code_key').on(t.jurisdictionId, t.serviceCode),
    check('services_duplicate_policy_check', inList('duplicate_policy', DUPLICATE_POLICIES)),
    // Off may keep a radius and window for later; suggest and link need both, within the bounds.
    check(
      'services_duplicate_search_check',
      sql.raw(`(duplicate_policy = 'off' or (duplicate_radius_m is not null and duplicate_window_days is not null))
        and duplicate_radius_m between 1 and ${DUPLICATE_MAX_RADIUS_M} is not false
        and duplicate_window_days between 1 and ${DUPLICATE_MAX_WINDOW_DAYS} is not false`),
    ),
    check('services_sla_check', sql`num_nonnulls(sla_hours, sla_business_days) <= 1 and sla_hours > 0 is not false and sla_business_days > 0 is not false`),
    check('services_type_check', inList('type', SERVICE_TYPES)),
    check('services_code_url_safe', sql`service_code ~ '^[A-Za-z0-9_-]{1,64}$'`),
    check('services_privacy_check', inList('privacy', SERVICE_PRIVACY)),
    // Public reads ask "which services are sensitive?" once per statement and column they
    // generalise (sensitive-location.ts): a few entries, whatever the catalog's size.
    index('services_sensitive_idx').on(t.id).where(sql`privacy = 'sensitive'`),
  ],
)

export const serviceAttributes = pgTable(
  'service_attributes',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    serviceId: bigint('service_id', { mode: 'number' })
      .notNull()
      .references(() => services.id, { onDelete: 'cascade' }),
    code: text('code').notNull(),
    /** Open311 `order`: 1 first, unique within the service. */
    position: integer('position').notNull(),
    variable: boolean('variable').notNull().default(true),
    datatype: text('datatype').$type<AttributeDatatype>().notNull(),
    required: boolean('required').notNull().default(false),
    datatypeDescription: text('datatype_description').notNull().default(''),
    description: text('description').notNull().default(''),
    /** `[{key, name}]` for list datatypes (each with its own `translations` when the file gives them), null otherwise. */
    values: jsonb('values').$type<AttributeValue[]>(),
    /** The catalog's `translations` (locale → texts), null when it has none. */
    translations: jsonb('translations').$type<Record<string, AttributeTranslation>>(),
    /** Whether answers appear in public output (`extensions=true`); e.g. a licence plate may not. */
    isPublic: boolean('is_public').notNull().default(true),
  },
  (t) => [
    uniqueIndex('service_attributes_service_code_key').on(t.serviceId, t.code),
    uniqueIndex('service_attributes_service_position_key').on(t.serviceId, t.position),
    check('service_attributes_datatype_check', inList('datatype', ATTRIBUTE_DATATYPES)),
    check('service_attributes_position_positive', sql`position > 0`),
  ],
)

export const apiKeys = pgTable(
  'api_keys',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** Non-secret lookup id embedded in the raw key, so verification is one indexed read. */
    keyId: text('key_id').notNull(),
    name: text('name').notNull(),
    /** SHA-256 of the whole raw key; the raw key is shown once and never stored. */
    secretHash: text('secret_hash').notNull(),
    scopes: text('scopes').array().notNull().default(sql`'{}'::text[]`),
    /** Set for a department's inbound credential: it may touch only that department's work orders. */
    departmentId: bigint('department_id', { mode: 'number' }),
    /** The channel of the requests this key submits without naming one (REQUEST_CHANNELS). */
    defaultChannel: text('default_channel').$type<RequestChannel>().notNull().default('app'),
    /**
     * The jurisdictions the key acts in (docs/tenancy.md): null for every jurisdiction, the
     * server's own operators' keys; a list for a city's keys on a shared server. A department's
     * key holds its department's jurisdiction.
     */
    jurisdictionIds: text('jurisdiction_ids').array(),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('api_keys_key_id_key').on(t.keyId),
    check('api_keys_default_channel_check', inList('default_channel', REQUEST_CHANNELS)),
    check('api_keys_jurisdiction_ids_check', sql`jurisdiction_ids is null or cardinality(jurisdiction_ids) > 0`),
  ],
)

export const serviceRequestNumber = pgSequence('service_request_number', { startWith: 100001 })

export const serviceRequests = pgTable(
  'service_requests',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** Open311 `service_request_id`: digits only, so it is URL-safe and easy to read over the phone. */
    publicId: text('public_id')
      .notNull()
      .default(sql`nextval('service_request_number')::text`),
    jurisdictionId: text('jurisdiction_id')
      .notNull()
      .references(() => jurisdictions.id),
    serviceId: bigint('service_id', { mode: 'number' })
      .notNull()
      .references(() => services.id),
    status: text('status').$type<Open311Status>().notNull().default('open'),
    detailedStatus: text('detailed_status').notNull().default('submitted'),
    statusNotes: text('status_notes'),
    agencyResponsible: text('agency_responsible'),
    serviceNotice: text('service_notice'),
    description: text('description'),
    requestedAt: timestamp('requested_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: changeTime('updated_at'),
    expectedAt: timestamp('expected_at', { withTimezone: true }),
    closedAt: timestamp('closed_at', { withTimezone: true }),
    address: text('address'),
    addressId: text('address_id'),
    zipcode: text('zipcode'),
    location: geography('location'),
    mediaUrls: text('media_urls').array().notNull().default(sql`'{}'::text[]`),
    /** Answers to the service definition's attributes, keyed by attribute code. */
    attributes: jsonb('attributes').$type<Record<string, string | string[]>>().notNull().default({}),
    /**
     * How it came in (REQUEST_CHANNELS; null where not known), checked by the one writer
     * (submit-request.ts, channels.ts) rather than a constraint: instances of the release before
     * channels, still running during a rolling deploy, write `api` (migration 0014).
     */
    channel: text('channel').$type<RequestChannel>(),
    /** Set when this request duplicates another: Open311 `parent_service_request_id`. */
    parentRequestId: bigint('parent_request_id', { mode: 'number' }),
    isPublic: boolean('is_public').notNull().default(true),
    submittedByKeyId: bigint('submitted_by_key_id', { mode: 'number' }).references(() => apiKeys.id),
  },
  (t) => [
    uniqueIndex('service_requests_public_id_key').on(t.publicId),
    check('service_requests_status_check', inList('status', OPEN311_STATUSES)),
    check('service_requests_closed_at_matches_status', sql`(status = 'closed') = (closed_at is not null)`),
    check('service_requests_not_own_parent', sql`parent_request_id is null or parent_request_id <> id`),
    // The typical Open311 read is "near here, in this date window": one composite GiST index
    // answers it ~16x faster than separate spatial and btree indexes at 10M rows.
    index('service_requests_location_requested_at_gist').using('gist', t.location, t.requestedAt),
    index('service_requests_requested_at_idx').on(t.requestedAt.desc(), t.id.desc()),
    index('service_requests_updated_at_idx').on(t.updatedAt, t.id),
    index('service_requests_service_idx').on(t.serviceId),
    // Only duplicates have a parent: the other requests need no entry (one index write fewer per request).
    index('service_requests_parent_idx').on(t.parentRequestId).where(sql`${t.parentRequestId} is not null`),
    // The report rollups recompute a day from the requests closed on it; open requests need no entry.
    index('service_requests_closed_at_idx').on(t.closedAt).where(sql`${t.closedAt} is not null`),
  ],
)

/**
 * The reporter's personal data, kept apart from every public column. Anonymising a request
 * (src/domain/retention/anonymise.ts) clears every field and sets `anonymised_at`: the row
 * stays, so the job knows what it has done without touching service_requests (whose updates
 * the open-data and report triggers follow).
 */
export const requestReporters = pgTable('request_reporters', {
  requestId: bigint('request_id', { mode: 'number' })
    .primaryKey()
    .references(() => serviceRequests.id, { onDelete: 'cascade' }),
  email: text('email'),
  firstName: text('first_name'),
  lastName: text('last_name'),
  phone: text('phone'),
  deviceId: text('device_id'),
  accountId: text('account_id'),
  anonymisedAt: timestamp('anonymised_at', { withTimezone: true }),
}, (t) => [
  // The retention run's question — whose data is still here? — reads only these, so its cost
  // follows the requests not yet anonymised, not the whole history. An entry leaves the index
  // when its row is anonymised.
  index('request_reporters_not_anonymised_idx').on(t.requestId).where(sql`anonymised_at is null`),
])

export const TOKEN_STATES = ['pending', 'accepted', 'failed'] as const

/** Tokens answered to POSTs on batch/blackbox services; resolved by an asynchronous acceptance step. */
export const requestTokens = pgTable(
  'request_tokens',
  {
    token: text('token').primaryKey(),
    requestId: bigint('request_id', { mode: 'number' })
      .notNull()
      .references(() => serviceRequests.id, { onDelete: 'cascade' }),
    state: text('state').$type<(typeof TOKEN_STATES)[number]>().notNull().default('pending'),
    failureReason: text('failure_reason'),
    createdAt: createdAt(),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('request_tokens_request_key').on(t.requestId),
    // Accepted tokens pile up for good; these stay as small as the tokens still in flight.
    // Every public search asks "is this request's token not accepted yet?" of each row ...
    index('request_tokens_unaccepted_idx').on(t.requestId).where(sql`${t.state} <> 'accepted'`),
    // ... and the acceptor looks for the oldest pending ones every few seconds.
    index('request_tokens_pending_idx').on(t.createdAt).where(sql`${t.state} = 'pending'`),
    check('request_tokens_state_check', inList('state', TOKEN_STATES)),
  ],
)

export const requestUpdateNumber = pgSequence('request_update_number', { startWith: 1 })

/**
 * Pre-approved answers: public text an operator or a department names instead of writing its
 * own (Employment Ontario: 80% of answers pre-approved). Optionally offered only for one
 * service, one department status code or one detailed status. Never deleted once used: notes
 * point at them; `active: false` retires one.
 */
export const responseTemplates = pgTable(
  'response_templates',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    jurisdictionId: text('jurisdiction_id')
      .notNull()
      .references(() => jurisdictions.id),
    code: text('code').notNull(),
    publicText: text('public_text').notNull(),
    /** The public text in the jurisdiction's other languages: locale → `{text}` (empty: none). */
    translations: jsonb('translations').$type<Record<string, { text: string }>>().notNull().default(sql`'{}'::jsonb`),
    active: boolean('active').notNull().default(true),
    serviceId: bigint('service_id', { mode: 'number' }).references(() => services.id),
    departmentStatusCode: text('department_status_code'),
    detailedStatus: text('detailed_status'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('response_templates_code_key').on(t.jurisdictionId, t.code),
    check('response_templates_code_check', sql`code ~ '^[A-Za-z0-9_.-]{1,64}$'`),
  ],
)

/** The request's history: every public or internal change, each with a stable `update_id`. */
export const requestUpdates = pgTable(
  'request_updates',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    updateId: text('update_id')
      .notNull()
      .default(sql`nextval('request_update_number')::text`),
    requestId: bigint('request_id', { mode: 'number' })
      .notNull()
      .references(() => serviceRequests.id, { onDelete: 'cascade' }),
    status: text('status').$type<Open311Status>().notNull(),
    detailedStatus: text('detailed_status').notNull(),
    description: text('description').notNull().default(''),
    isPublic: boolean('is_public').notNull().default(true),
    mediaUrls: text('media_urls').array().notNull().default(sql`'{}'::text[]`),
    externalStatusCode: text('external_status_code'),
    source: text('source').$type<(typeof UPDATE_SOURCES)[number]>().notNull(),
    /** The sender's own id for this update (mySociety `update_id` on POST), unique per department. */
    externalUpdateId: text('external_update_id'),
    departmentId: bigint('department_id', { mode: 'number' }),
    workOrderId: bigint('work_order_id', { mode: 'number' }),
    /** The pre-approved answer its public text came from (docs/service-levels.md, "Templates"). */
    templateId: bigint('template_id', { mode: 'number' }).references(() => responseTemplates.id),
    /**
     * A person's answer to the citizen — an operator's note, a department's own words, a
     * pre-approved answer — rather than a status line the server wrote ("Streets accepted the
     * work"): the templates report's share is over these (docs/reports.md).
     */
    isAnswer: boolean('is_answer').notNull().default(false),
    /**
     * A note made from a template: its public text rendered in the jurisdiction's other
     * languages (locale → text), which GeoReport reads in that locale show; null otherwise.
     */
    descriptionTranslations: jsonb('description_translations').$type<Record<string, string>>(),
    createdAt: changeTime('created_at'),
    /**
     * When the entry last entered the public history: its creation, or later, when its request
     * came (back) into public view. The updates feed's order; created_at stays the entry's time.
     */
    changedAt: changeTime('changed_at'),
  },
  (t) => [
    uniqueIndex('request_updates_update_id_key').on(t.updateId),
    // Only department reports carry an update id of their own.
    uniqueIndex('request_updates_external_key').on(t.departmentId, t.externalUpdateId).where(sql`${t.externalUpdateId} is not null`),
    index('request_updates_request_idx').on(t.requestId, t.createdAt),
    index('request_updates_created_at_idx').on(t.createdAt, t.id),
    index('request_updates_changed_at_idx').on(t.changedAt, t.id),
    check('request_updates_status_check', inList('status', OPEN311_STATUSES)),
    check('request_updates_source_check', inList('source', UPDATE_SOURCES)),
  ],
)

/** Binary data (image bytes): Buffers through pg, Uint8Arrays through PGlite. */
const bytea = (name: string) => customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => 'bytea' })(name)

/**
 * Photos uploaded with a request (POST requests with `media` file parts), stored here rather
 * than in an object store so that every instance serves them with nothing more to run, on both
 * backends, and so that a request and its photos are written in one statement (docs/open311.md,
 * "Photos"). Only re-encoded variants are kept, never the upload: it carries EXIF (GPS, camera
 * serial numbers), which is personal data. `public_id` is the random id in the photo's URL.
 */
export const media = pgTable(
  'media',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    publicId: text('public_id').notNull(),
    requestId: bigint('request_id', { mode: 'number' })
      .notNull()
      .references(() => serviceRequests.id, { onDelete: 'cascade' }),
    /** Order among the request's photos, from 1: its place in `media_urls`. */
    position: integer('position').notNull(),
    /** What was uploaded (jpeg, png, webp, heif): the variants are JPEG whatever it was. */
    sourceFormat: text('source_format').notNull(),
    fullBytes: bytea('full_bytes').notNull(),
    fullWidth: integer('full_width').notNull(),
    fullHeight: integer('full_height').notNull(),
    thumbBytes: bytea('thumb_bytes').notNull(),
    thumbWidth: integer('thumb_width').notNull(),
    thumbHeight: integer('thumb_height').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('media_public_id_key').on(t.publicId),
    uniqueIndex('media_request_position_key').on(t.requestId, t.position),
  ],
)

/** A client retrying a POST with the same Idempotency-Key gets the first answer back. */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    apiKeyId: bigint('api_key_id', { mode: 'number' })
      .notNull()
      .references(() => apiKeys.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    requestFingerprint: text('request_fingerprint').notNull(),
    responseStatus: integer('response_status').notNull(),
    responseBody: jsonb('response_body').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.apiKeyId, t.key] })],
)

/**
 * Fixed-window request counters shared by every instance (rate limits must hold across a
 * load balancer). Rows expire with their window and are pruned opportunistically.
 */
export const rateLimitCounters = pgTable(
  'rate_limit_counters',
  {
    key: text('key').notNull(),
    windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
    hits: integer('hits').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.key, t.windowStart] }), index('rate_limit_counters_window_idx').on(t.windowStart)],
)

// ---------------------------------------------------------------------------------------------
// Department integration: departments, routing, work orders, the outbox and inbound dedupe.

/** A city department (business unit) with its own work-order system. */
export const departments = pgTable(
  'departments',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    jurisdictionId: text('jurisdiction_id')
      .notNull()
      .references(() => jurisdictions.id),
    /** Short stable code used in URLs, payloads and the CLI, e.g. `streets`. */
    code: text('code').notNull(),
    name: text('name').notNull(),
    contact: text('contact').notNull().default(''),
    webhookUrl: text('webhook_url'),
    enabled: boolean('enabled').notNull().default(true),
    /** Whether work orders carry the reporter's contact details to this department. */
    receivesContact: boolean('receives_contact').notNull().default(false),
    /** The department's own status codes → our work-order lifecycle states. */
    statusMap: jsonb('status_map').$type<Record<string, string>>().notNull().default({}),
    /** Start of the current run of failed deliveries; null while deliveries succeed. */
    failingSince: timestamp('failing_since', { withTimezone: true }),
    disabledReason: text('disabled_reason'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('departments_jurisdiction_code_key').on(t.jurisdictionId, t.code),
    check('departments_code_format', sql`code ~ '^[a-z0-9][a-z0-9_-]{0,63}$'`),
  ],
)

/** Standard Webhooks signing secrets, AES-256-GCM encrypted; several are live during a rotation. */
export const departmentSecrets = pgTable(
  'department_secrets',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    departmentId: bigint('department_id', { mode: 'number' })
      .notNull()
      .references(() => departments.id, { onDelete: 'cascade' }),
    ciphertext: text('ciphertext').notNull(),
    createdAt: createdAt(),
    /** Null while current; set to the end of the overlap when a newer secret replaces it. */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
  },
  (t) => [index('department_secrets_department_idx').on(t.departmentId)],
)

/**
 * Which departments a service's requests go to. Routes with an area take the requests whose
 * location falls inside it; routes without one are the defaults, used when no area matches
 * (or the request has no point), so a request never goes nowhere.
 */
export const serviceRoutes = pgTable(
  'service_routes',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    serviceId: bigint('service_id', { mode: 'number' })
      .notNull()
      .references(() => services.id, { onDelete: 'cascade' }),
    departmentId: bigint('department_id', { mode: 'number' })
      .notNull()
      .references(() => departments.id, { onDelete: 'cascade' }),
    area: geography('area'),
    areaName: text('area_name'),
  },
  (t) => [index('service_routes_service_idx').on(t.serviceId)],
)

/**
 * A department's own service level for one service, overriding the service's (Calgary:
 * completion deadlines redefined per department). At most one of hours and business days.
 */
export const departmentServiceLevels = pgTable(
  'department_service_levels',
  {
    departmentId: bigint('department_id', { mode: 'number' })
      .notNull()
      .references(() => departments.id, { onDelete: 'cascade' }),
    serviceId: bigint('service_id', { mode: 'number' })
      .notNull()
      .references(() => services.id, { onDelete: 'cascade' }),
    slaHours: integer('sla_hours'),
    slaBusinessDays: integer('sla_business_days'),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ columns: [t.departmentId, t.serviceId] }),
    check('department_service_levels_sla_check', sql`num_nonnulls(sla_hours, sla_business_days) = 1 and sla_hours > 0 is not false and sla_business_days > 0 is not false`),
  ],
)

export const WORK_ORDER_STATES = [
  'pending',
  'sent',
  'accepted',
  'scheduled',
  'in_progress',
  'on_hold',
  'completed',
  'cancelled',
  'rejected',
  'reassigned',
] as const
export type WorkOrderState = (typeof WORK_ORDER_STATES)[number]
export const TERMINAL_WORK_ORDER_STATES = ['completed', 'cancelled', 'rejected', 'reassigned'] as const

export const workOrders = pgTable(
  'work_orders',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    requestId: bigint('request_id', { mode: 'number' })
      .notNull()
      .references(() => serviceRequests.id, { onDelete: 'cascade' }),
    departmentId: bigint('department_id', { mode: 'number' })
      .notNull()
      .references(() => departments.id),
    state: text('state').$type<WorkOrderState>().notNull().default('pending'),
    /** The department's own reference for this work order. */
    externalRef: text('external_ref'),
    /** The department's raw status code, beside the mapped state. */
    externalStatusCode: text('external_status_code'),
    expectedAt: timestamp('expected_at', { withTimezone: true }),
    /**
     * The service-level commitment, set when the work order opens (open311_work_order_due,
     * migration 0011); compliance is measured against it, whatever date the department gives.
     */
    dueAt: timestamp('due_at', { withTimezone: true }),
    /**
     * When it was found past due while open (the overdue sweep), or completed after due: a
     * breach, recorded once and never cleared.
     */
    overdueAt: timestamp('overdue_at', { withTimezone: true }),
    /**
     * When the department first reported it taken on (accepted or any later working state):
     * time to acknowledge is measured from created_at to here (docs/reports.md). Set by transition.ts.
     */
    acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true }),
    /** When it moved to completed, as the department dates it: SLA compliance compares it with due_at. */
    completedAt: timestamp('completed_at', { withTimezone: true }),
    /** The routing area whose route sent it here (service_routes.area_name); null: a default route. */
    areaName: text('area_name'),
    /** Why it was rejected, cancelled or reassigned. */
    reason: text('reason'),
    reassignedToId: bigint('reassigned_to_id', { mode: 'number' }),
    /** When the department said the latest applied change happened: older callbacks never move it back. */
    lastEventAt: timestamp('last_event_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('work_orders_request_idx').on(t.requestId),
    index('work_orders_department_idx').on(t.departmentId, t.state),
    // The overdue sweep's question: open work past its due date not yet marked.
    index('work_orders_due_idx')
      .on(t.dueAt)
      .where(sql`overdue_at is null and due_at is not null and state not in ('completed', 'cancelled', 'rejected', 'reassigned')`),
    // The report rollups recompute a day from the work orders acknowledged, completed or gone
    // overdue on it (src/domain/reports/rollups.ts); none is set at insert, so a new work order
    // writes no entry in these.
    index('work_orders_acknowledged_at_idx').on(t.acknowledgedAt).where(sql`acknowledged_at is not null`),
    index('work_orders_completed_at_idx').on(t.completedAt).where(sql`completed_at is not null`),
    index('work_orders_overdue_at_idx').on(t.overdueAt).where(sql`overdue_at is not null`),
    // Overdue and still open: the timeliness report's "overdue now" and the /metrics gauge read
    // only these, not every breach ever recorded.
    index('work_orders_open_overdue_idx')
      .on(t.departmentId)
      .where(sql`overdue_at is not null and state not in ('completed', 'cancelled', 'rejected', 'reassigned')`),
    check('work_orders_state_check', inList('state', WORK_ORDER_STATES)),
  ],
)

export const OUTBOX_STATES = ['pending', 'delivered', 'failed', 'cancelled'] as const

/**
 * The transactional outbox: events written in the same transaction as the change they
 * describe, delivered by workers that claim rows with FOR UPDATE SKIP LOCKED.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** Standard Webhooks `webhook-id`: stable across retries, the receiver's idempotency key. */
    eventId: text('event_id').notNull(),
    departmentId: bigint('department_id', { mode: 'number' })
      .notNull()
      .references(() => departments.id),
    workOrderId: bigint('work_order_id', { mode: 'number' }).references(() => workOrders.id),
    eventType: text('event_type').notNull(),
    payload: jsonb('payload').notNull(),
    state: text('state').$type<(typeof OUTBOX_STATES)[number]>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    lockedAt: timestamp('locked_at', { withTimezone: true }),
    lockedBy: text('locked_by'),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    createdAt: createdAt(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    failedAt: timestamp('failed_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('outbox_event_id_key').on(t.eventId),
    index('outbox_due_idx').on(t.nextAttemptAt, t.id).where(sql`state = 'pending'`),
    index('outbox_work_order_idx').on(t.workOrderId, t.id),
    index('outbox_failed_idx').on(t.failedAt).where(sql`state = 'failed'`),
    check('outbox_state_check', inList('state', OUTBOX_STATES)),
  ],
)

/** Inbound callbacks already applied, by the sender's id: replays and duplicates apply once. */
export const inboundEvents = pgTable(
  'inbound_events',
  {
    departmentId: bigint('department_id', { mode: 'number' })
      .notNull()
      .references(() => departments.id, { onDelete: 'cascade' }),
    eventId: text('event_id').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.departmentId, t.eventId] })],
)

/** Things an operator must see: a department endpoint disabled, deliveries dead-lettered. */
export const operatorAlerts = pgTable('operator_alerts', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  kind: text('kind').notNull(),
  departmentId: bigint('department_id', { mode: 'number' }).references(() => departments.id, { onDelete: 'cascade' }),
  message: text('message').notNull(),
  createdAt: createdAt(),
  acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true }),
})

export const REMOVAL_REASONS = ['made_private', 'deleted'] as const

/**
 * Requests that left public view, so open-data harvesters can delete them (`removed` feed).
 * Written by triggers (migration 0009); no foreign key, because the entry outlives a deleted
 * request. An entry goes away when its request becomes public again (it then comes back in
 * the requests feed with a new updated_at).
 */
export const openDataRemovals = pgTable(
  'open_data_removals',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    requestId: bigint('request_id', { mode: 'number' }).notNull(),
    jurisdictionId: text('jurisdiction_id').notNull(),
    serviceRequestId: text('service_request_id').notNull(),
    reason: text('reason').$type<(typeof REMOVAL_REASONS)[number]>().notNull(),
    removedAt: changeTime('removed_at'),
  },
  (t) => [
    index('open_data_removals_removed_at_idx').on(t.removedAt, t.id),
    index('open_data_removals_request_idx').on(t.requestId),
    check('open_data_removals_reason_check', inList('reason', REMOVAL_REASONS)),
  ],
)

/**
 * Report rollups (docs/reports.md): one row per local day of the jurisdiction, service,
 * department, channel and routing area, holding every report figure attributed to that day, so
 * a report reads days × groups rows, whatever the number of requests. Never written by hand:
 * src/domain/reports/rollups.ts recomputes a (jurisdiction, service, day) cell from the base
 * tables whenever a write marked it (report_rollup_pending). Durations are histograms of whole
 * seconds rounded down to 3 significant digits (open311_duration_bucket, migration 0015), kept
 * as two parallel arrays — values ascending, and their counts — so medians merge across days.
 * `department_id` 0 and `area` '' stand for "none" (a key column cannot be null).
 *
 * `grain` (migration 0018): 'full' rows are the cells above; each (jurisdiction, service, day,
 * public) also has its figures summed per channel ('channel': department 0, area ''), per
 * department ('department': channel '') and in all ('service'), with merged histograms, so that
 * a report not asking for areas (nor for departments and channels together) reads a few rows
 * per day and service instead of one per department × channel × area
 * (open311_report_coarse_rows, written in the same transaction as the cell). That function
 * returns whole report_daily rows in the table's column order: a migration adding a column
 * here recreates it too (the refresh fails otherwise, which the report tests catch).
 */
export const REPORT_GRAINS = ['full', 'channel', 'department', 'service'] as const
export type ReportGrain = (typeof REPORT_GRAINS)[number]
export const reportDaily = pgTable(
  'report_daily',
  {
    jurisdictionId: text('jurisdiction_id').notNull(),
    serviceId: bigint('service_id', { mode: 'number' }).notNull(),
    day: date('day').notNull(),
    departmentId: bigint('department_id', { mode: 'number' }).notNull(),
    channel: text('channel').notNull(),
    area: text('area').notNull(),
    /** The requests' is_public: the open-data stats count public requests only (migration 0016). */
    public: boolean('public').notNull(),
    grain: text('grain').$type<ReportGrain>().notNull(),
    created: integer('created').notNull(),
    /** `created` by channel, {"web": 3, …} (channels with none left out): volume's split, on every grain. */
    createdChannels: jsonb('created_channels').$type<Record<string, number>>().notNull(),
    stillOpen: integer('still_open').notNull(),
    duplicates: integer('duplicates').notNull(),
    closed: integer('closed').notNull(),
    closeSeconds: integer('close_seconds').array().notNull(),
    closeCounts: integer('close_counts').array().notNull(),
    acknowledged: integer('acknowledged').notNull(),
    ackSeconds: integer('ack_seconds').array().notNull(),
    ackCounts: integer('ack_counts').array().notNull(),
    completedWithDue: integer('completed_with_due').notNull(),
    completedWithinDue: integer('completed_within_due').notNull(),
    wentOverdue: integer('went_overdue').notNull(),
    publicNotes: integer('public_notes').notNull(),
    fromTemplate: integer('from_template').notNull(),
  },
  (t) => [
    // The grain leads (after the jurisdiction): a report reads one grain's days as one range of
    // the index, and the rows of a grain are written together (rollups.ts), so few pages.
    primaryKey({ columns: [t.jurisdictionId, t.grain, t.day, t.serviceId, t.departmentId, t.channel, t.area, t.public] }),
    check('report_daily_grain_check', inList('grain', REPORT_GRAINS)),
  ],
)

/**
 * Cells of report_daily a write changed, written by triggers on service_requests, work_orders
 * and request_updates (migration 0015) in the writer's transaction: insert-only, so writers never
 * wait on each other here. The refresh (src/domain/reports/rollups.ts) deletes the entries it
 * can see and recomputes their cells; an entry not yet committed stays for the next refresh.
 */
export const reportRollupPending = pgTable('report_rollup_pending', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  jurisdictionId: text('jurisdiction_id').notNull(),
  serviceId: bigint('service_id', { mode: 'number' }).notNull(),
  day: date('day').notNull(),
})

export const AUDIT_ACTOR_KINDS = ['key', 'department', 'cli', 'system'] as const
export type AuditActorKind = (typeof AUDIT_ACTOR_KINDS)[number]

/**
 * The audit trail (docs/audit.md): one row per change an operator, the CLI or the server made,
 * written by the domain use case in the same transaction as the change (src/domain/audit/).
 * Append-only: migration 0019's triggers refuse UPDATE, DELETE and TRUNCATE for every role,
 * replication sessions included, so no code path can rewrite history. `changes` holds only
 * the fields that changed, {field: {before, after}}; personal data and secrets are never
 * stored, only that they changed ("[masked]"). `actor_key_id` and `actor_name` are copies, not
 * references: the entry outlives the key and keeps the name the key had then.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
    actorKind: text('actor_kind').$type<AuditActorKind>().notNull(),
    /** api_keys.id of the key that called (actor_kind 'key'). */
    actorKeyId: bigint('actor_key_id', { mode: 'number' }),
    /** departments.id of the department that reported (actor_kind 'department'); actor_name is its code. */
    actorDepartmentId: bigint('actor_department_id', { mode: 'number' }),
    actorName: text('actor_name').notNull(),
    /** What was done, as `<entity>.<verb>`: department.created, api_key.revoked, … */
    action: text('action').notNull(),
    entityType: text('entity_type').notNull(),
    entityId: text('entity_id').notNull(),
    /** service_requests.id when the change is about one request. */
    requestId: bigint('request_id', { mode: 'number' }),
    jurisdictionId: text('jurisdiction_id'),
    changes: jsonb('changes').$type<Record<string, { before: unknown; after: unknown }>>().notNull().default(sql`'{}'::jsonb`),
  },
  (t) => [
    index('audit_events_occurred_at_idx').on(t.occurredAt, t.id),
    index('audit_events_actor_idx').on(t.actorKeyId, t.id),
    index('audit_events_request_idx').on(t.requestId, t.id).where(sql`request_id is not null`),
    index('audit_events_entity_idx').on(t.entityType, t.entityId, t.id),
    // A city's key on a shared server reads its own jurisdictions' entries, newest first.
    index('audit_events_jurisdiction_idx').on(t.jurisdictionId, t.id),
    check('audit_events_actor_kind_check', inList('actor_kind', AUDIT_ACTOR_KINDS)),
    check('audit_events_key_actor_check', sql`(actor_kind = 'key') = (actor_key_id is not null)`),
    check('audit_events_department_actor_check', sql`(actor_kind = 'department') = (actor_department_id is not null)`),
  ],
)
