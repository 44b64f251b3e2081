/**
 * Configuration comes from environment variables only, validated once at boot. A bad value
 * stops the process with a message naming the variable; nothing else reads process.env.
 */
import { Ajv } from 'ajv'
import { CONTACT_EMAIL } from './domain/open-data/catalog-settings.js'

export interface AppConfig {
  port: number
  host: string
  /** PostgreSQL + PostGIS connection string; unset selects the embedded database. */
  databaseUrl?: string
  /**
   * A read replica of DATABASE_URL (PostgreSQL only): the open-data feeds read there (each
   * response waits for it to replay the primary's latest writes); unset, they read the primary.
   */
  databaseReadUrl?: string
  /** Connections per pool: the primary's, and the replica's when there is one. */
  databasePoolSize: number
  /** Hot statements as named prepared statements (PostgreSQL); off for PgBouncer in transaction mode. */
  databasePreparedStatements: boolean
  /** Where the embedded database (and other local state) lives. */
  dataDir: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** The externally visible base URL, used in discovery and logged at start. */
  publicBaseUrl: string
  /** Load the demo jurisdiction, catalog and an API key into an empty database at start. */
  seedDemo: boolean
  /** Trust X-Forwarded-* from a reverse proxy (client IPs for rate limits and logs). */
  trustProxy: boolean
  /** POST requests allowed per minute, per client IP and per API key. */
  rateLimits: { perIpPerMinute: number; perKeyPerMinute: number }
  /** Largest request body accepted, in bytes (photos come on top: `media`). */
  bodyLimitBytes: number
  /** Photo uploads on POST requests (`media` file parts): the largest file, and how many per request (0: none). */
  media: { maxBytes: number; maxFiles: number }
  /** 32-byte key (base64) sealing departments' webhook secrets; embedded default: generated under DATA_DIR. */
  secretsKey?: string
  webhooks: {
    /** CIDRs department URLs may reach even though they are private (on-premises systems). */
    allowlist: string[]
    /** Allow plain http:// department URLs (tests, closed networks). */
    allowHttp: boolean
    /** Ports department URLs may use; null allows any. */
    allowedPorts: number[] | null
    timeoutMs: number
    /** Continuous delivery failure for this long disables a department's endpoint. */
    disableAfterDays: number
  }
  /** What the open-data catalogs (data.json, datapackage.json) say about the data's terms and owner. */
  openData: {
    /** The licence's URL. */
    license: string
    /** The publisher's name; unset: the jurisdiction's name. */
    publisher?: string
    /** The contact address; unset: the first address in the jurisdiction's `contact`. */
    contactEmail?: string
  }
  /**
   * How long operational copies are kept (docs/retention.md); the reporters' own data follows
   * each jurisdiction's policy (the catalog's `retention`). Pruned by the retention job.
   */
  retention: {
    /** Delivered (and cancelled) outbox rows, with their payloads, after delivery. */
    deliveredOutboxDays: number
    /** Inbound department events (their ids, for replay detection) after receipt. */
    inboundEventsDays: number
    /** Idempotency-Key records (the first answer, a fingerprint of the request). */
    idempotencyHours: number
    /** Shared rate-limit counters (keys: a client's IP, an API key id) after their window began. */
    rateLimitHours: number
  }
  /** GET /metrics (Prometheus): off unless enabled, and then only with the bearer token. */
  metrics: {
    enabled: boolean
    /** What `Authorization: Bearer` must carry; set whenever `enabled` is. */
    token?: string
  }
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`)
    this.name = 'ConfigError'
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

const envSchema = {
  type: 'object',
  properties: {
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    HOST: { type: 'string', minLength: 1, default: '0.0.0.0' },
    DATABASE_URL: { type: 'string', pattern: '^postgres(ql)?://' },
    DATABASE_READ_URL: { type: 'string', pattern: '^postgres(ql)?://' },
    DATABASE_POOL_SIZE: { type: 'integer', minimum: 1, maximum: 500, default: 10 },
    DATABASE_PREPARED_STATEMENTS: { type: 'boolean', default: true },
    DATA_DIR: { type: 'string', minLength: 1, default: './data' },
    LOG_LEVEL: { type: 'string', enum: LOG_LEVELS, default: 'info' },
    PUBLIC_BASE_URL: { type: 'string', pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' },
    SEED_DEMO: { type: 'boolean' },
    TRUST_PROXY: { type: 'boolean', default: false },
    RATE_LIMIT_POST_PER_IP: { type: 'integer', minimum: 1, default: 120 },
    RATE_LIMIT_POST_PER_KEY: { type: 'integer', minimum: 1, default: 1200 },
    BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024, maximum: 104857600, default: 1048576 },
    // A phone's full-resolution JPEG is 2–8 MB; the rest of a report is under a few KB.
    MEDIA_MAX_BYTES: { type: 'integer', minimum: 1024, maximum: 52428800, default: 10485760 },
    MEDIA_MAX_FILES: { type: 'integer', minimum: 0, maximum: 10, default: 3 },
    SECRETS_KEY: { type: 'string', pattern: '^[A-Za-z0-9+/]{43}=$' },
    OUTBOUND_ALLOWLIST: { type: 'string', pattern: '^[0-9A-Fa-f:./, ]*$', default: '' },
    OUTBOUND_ALLOW_HTTP: { type: 'boolean', default: false },
    OUTBOUND_ALLOWED_PORTS: { type: 'string', pattern: '^(\\*|\\d{1,5}(,\\s*\\d{1,5})*)$', default: '443' },
    WEBHOOK_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 60000, default: 10000 },
    WEBHOOK_DISABLE_AFTER_DAYS: { type: 'number', exclusiveMinimum: 0, default: 5 },
    // PDDL: a public-domain dedication written for databases (it also waives the EU's database
    // right, which CC0 leaves to interpretation), listed among Project Open Data's open licences,
    // so portals and researchers may republish and combine 311 data with no attribution chain.
    OPEN_DATA_LICENSE: { type: 'string', pattern: '^https?://\\S+$', default: 'https://opendatacommons.org/licenses/pddl/1-0/' },
    OPEN_DATA_PUBLISHER: { type: 'string', minLength: 1, maxLength: 200 },
    OPEN_DATA_CONTACT_EMAIL: { type: 'string', pattern: `^${CONTACT_EMAIL.source}$` },
    // Retention periods (docs/retention.md). Inbound events outlive the 5-minute signature window
    // by far: a replay older than that is refused by its timestamp before its id is looked up.
    RETENTION_DELIVERED_OUTBOX_DAYS: { type: 'integer', minimum: 1, maximum: 36500, default: 30 },
    RETENTION_INBOUND_EVENTS_DAYS: { type: 'integer', minimum: 1, maximum: 36500, default: 30 },
    RETENTION_IDEMPOTENCY_HOURS: { type: 'integer', minimum: 1, maximum: 876000, default: 48 },
    RETENTION_RATE_LIMIT_HOURS: { type: 'integer', minimum: 1, maximum: 8760, default: 1 },
    METRICS: { type: 'string', enum: ['off', 'on'], default: 'off' },
    // Long and without spaces: it goes in an Authorization header, and it is the only guard.
    METRICS_TOKEN: { type: 'string', pattern: '^\\S{32,}$' },
  },
} as const

const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: false })
const validateEnv = ajv.compile(envSchema)

/** Reads and validates the configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const values: Record<string, unknown> = {}
  for (const name of Object.keys(envSchema.properties)) {
    const raw = env[name]
    // An empty variable means "not set", as in most deployment tools.
    if (raw !== undefined && raw.trim() !== '') values[name] = raw.trim()
  }
  if (!validateEnv(values)) {
    const error = validateEnv.errors?.[0]
    const variable = error?.instancePath.replace(/^\//, '') || 'environment'
    throw new ConfigError(variable, describeEnvError(variable, error?.message, error?.params))
  }
  const port = values.PORT as number
  const databaseUrl = values.DATABASE_URL as string | undefined
  const databaseReadUrl = values.DATABASE_READ_URL as string | undefined
  // The embedded database has no replicas: a read URL without a primary is a mistake, not a
  // setting to ignore (it would silently serve feeds from a database nobody writes to).
  if (databaseReadUrl && !databaseUrl) throw new ConfigError('DATABASE_READ_URL', 'needs DATABASE_URL (the primary it replicates)')
  const metricsEnabled = values.METRICS === 'on'
  // Never served open: the figures are the city's traffic and queues, and every scrape reads the database.
  if (metricsEnabled && !values.METRICS_TOKEN) throw new ConfigError('METRICS_TOKEN', 'is required with METRICS=on (e.g. `openssl rand -base64 32`)')
  return {
    port,
    host: values.HOST as string,
    ...(databaseUrl ? { databaseUrl } : {}),
    ...(databaseReadUrl ? { databaseReadUrl } : {}),
    databasePoolSize: values.DATABASE_POOL_SIZE as number,
    databasePreparedStatements: values.DATABASE_PREPARED_STATEMENTS as boolean,
    dataDir: values.DATA_DIR as string,
    logLevel: values.LOG_LEVEL as AppConfig['logLevel'],
    publicBaseUrl: ((values.PUBLIC_BASE_URL as string | undefined) ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    seedDemo: (values.SEED_DEMO as boolean | undefined) ?? !databaseUrl,
    trustProxy: values.TRUST_PROXY as boolean,
    rateLimits: {
      perIpPerMinute: values.RATE_LIMIT_POST_PER_IP as number,
      perKeyPerMinute: values.RATE_LIMIT_POST_PER_KEY as number,
    },
    bodyLimitBytes: values.BODY_LIMIT_BYTES as number,
    media: { maxBytes: values.MEDIA_MAX_BYTES as number, maxFiles: values.MEDIA_MAX_FILES as number },
    ...(values.SECRETS_KEY ? { secretsKey: values.SECRETS_KEY as string } : {}),
    webhooks: {
      allowlist: (values.OUTBOUND_ALLOWLIST as string)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      allowHttp: values.OUTBOUND_ALLOW_HTTP as boolean,
      allowedPorts:
        values.OUTBOUND_ALLOWED_PORTS === '*' ? null : (values.OUTBOUND_ALLOWED_PORTS as string).split(',').map((p) => Number(p.trim())),
      timeoutMs: values.WEBHOOK_TIMEOUT_MS as number,
      disableAfterDays: values.WEBHOOK_DISABLE_AFTER_DAYS as number,
    },
    openData: {
      license: values.OPEN_DATA_LICENSE as string,
      ...(values.OPEN_DATA_PUBLISHER ? { publisher: values.OPEN_DATA_PUBLISHER as string } : {}),
      ...(values.OPEN_DATA_CONTACT_EMAIL ? { contactEmail: values.OPEN_DATA_CONTACT_EMAIL as string } : {}),
    },
    retention: {
      deliveredOutboxDays: values.RETENTION_DELIVERED_OUTBOX_DAYS as number,
      inboundEventsDays: values.RETENTION_INBOUND_EVENTS_DAYS as number,
      idempotencyHours: values.RETENTION_IDEMPOTENCY_HOURS as number,
      rateLimitHours: values.RETENTION_RATE_LIMIT_HOURS as number,
    },
    metrics: { enabled: metricsEnabled, ...(metricsEnabled ? { token: values.METRICS_TOKEN as string } : {}) },
  }
}

const FORMAT_HINTS: Record<string, string> = {
  SECRETS_KEY: 'must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)',
  OUTBOUND_ALLOWLIST: 'must be a comma-separated list of IP networks such as 10.20.0.0/16',
  OUTBOUND_ALLOWED_PORTS: 'must be * or a comma-separated list of ports such as 443,8443',
  DATABASE_URL: 'must be a postgres:// or postgresql:// connection URL',
  DATABASE_READ_URL: 'must be a postgres:// or postgresql:// connection URL',
  PUBLIC_BASE_URL: 'must be an absolute http:// or https:// URL',
  OPEN_DATA_LICENSE: 'must be the licence\'s absolute http:// or https:// URL',
  METRICS_TOKEN: 'must be at least 32 characters without spaces (e.g. `openssl rand -base64 32`)',
  OPEN_DATA_CONTACT_EMAIL: 'must be a plain email address (letters, digits and . _ + - before the @; DCAT-US hasEmail has no room for a name), such as opendata@city.example',
}

function describeEnvError(variable: string, message: string | undefined, params: unknown): string {
  const allowed = (params as { allowedValues?: unknown[] } | undefined)?.allowedValues
  if (allowed) return `must be one of: ${allowed.join(', ')}`
  if (message?.startsWith('must match pattern')) return FORMAT_HINTS[variable] ?? 'is not in the expected format'
  return message ?? 'is invalid'
}
