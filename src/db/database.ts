/**
 * The database handle the rest of the code sees. Nothing outside `src/db/` knows whether it
 * talks to a PostgreSQL server (DATABASE_URL) or to the embedded PGlite default.
 */
import type { SQL } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import type { BaseLogger } from 'pino'
import type { AppConfig } from '../config.js'
import type { DatabaseOutages } from './outages.js'

/** The little a database backend logs through. */
export type DatabaseLogger = Pick<BaseLogger, 'warn' | 'info' | 'error'>
import type * as schema from './schema.js'

/** A drizzle database or transaction: repositories accept either, services own the transaction. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

export interface Database {
  readonly db: Db
  /** Tells an unreachable database from a failing statement, and logs each outage once. */
  readonly outages: DatabaseOutages
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>
  /** Applies every pending migration in `migrations/`; safe to call from several processes at once. */
  migrate(): Promise<void>
  /**
   * Subscribes to NOTIFY on a channel; returns the function that unsubscribes. A lost listening
   * connection is restored; after that the subscriber is called once with an empty payload
   * (notifications sent meanwhile are lost).
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>
  /** How its connections are used now (for /metrics); cheap, read from memory. */
  poolStats(): PoolStats
  close(): Promise<void>
}

/**
 * A backend's connections: `max` allowed, `open` now; on PostgreSQL also how many of those are
 * idle and how many queries wait for one. The embedded database is one in-process connection
 * that queues statements inside PGlite, which does not say how many wait: it has no `idle` or
 * `waiting`.
 */
export interface PoolStats {
  max: number
  open: number
  idle?: number
  waiting?: number
}

export interface DatabaseOptions {
  /** PostgreSQL connection string; when absent the embedded database is used. */
  databaseUrl?: string
  /** Embedded database directory; absent means in memory. */
  dataDir?: string
  /** Embedded database: start from this dump (made by `dumpEmbeddedTemplate`) instead of an empty cluster. */
  loadDataDir?: Blob
  poolSize?: number
  /**
   * Run preparedRows' statements as named prepared statements (PostgreSQL only; default true).
   * Off for a pooler that cannot keep them per client, such as PgBouncer in transaction mode
   * without max_prepared_statements: every statement then runs unnamed.
   */
  preparedStatements?: boolean
  logger: DatabaseLogger
}

/** The embedded database's own directory under DATA_DIR (PostgreSQL wants its data directory to itself). */
export const embeddedDataDir = (dataDir: string) => `${dataDir}/pglite`

/** The primary database a configuration names: DATABASE_URL, else the embedded one under DATA_DIR. */
export function configuredDatabase(
  config: Pick<AppConfig, 'databaseUrl' | 'dataDir' | 'databasePoolSize' | 'databasePreparedStatements'>,
): Omit<DatabaseOptions, 'logger'> {
  return {
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { dataDir: embeddedDataDir(config.dataDir) }),
    poolSize: config.databasePoolSize,
    preparedStatements: config.databasePreparedStatements,
  }
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) {
    const { openPostgres } = await import('./backends/postgres.js')
    return openPostgres(options.databaseUrl, options)
  }
  const { openEmbedded } = await import('./backends/embedded.js')
  return openEmbedded(options)
}

/** Rows of a raw SQL query; both backends answer `{ rows }`. */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] }
  return result.rows
}

/** One name per distinct SQL text, process-wide: a name always means the same text. */
const statementNames = new Map<string, string>()

/**
 * Each named statement stays prepared, with its plan, on every pooled connection. Clients pick
 * the search's shape (which filters they send), so past this many texts a statement runs
 * unnamed instead: the common shapes get names first and keep them.
 */
export const MAX_NAMED_STATEMENTS = 100

function nameStatement(text: string): void {
  if (!statementNames.has(text) && statementNames.size < MAX_NAMED_STATEMENTS) statementNames.set(text, `open311_${statementNames.size + 1}`)
}

/** The name preparedRows gave this statement text, if any: the PostgreSQL backend sends it as pg's `{ name, text, values }`. */
export function statementNameOf(text: string): string | undefined {
  return statementNames.get(text)
}

/**
 * Like queryRows, as a named prepared statement where the backend keeps them (PostgreSQL with
 * DATABASE_PREPARED_STATEMENTS on): PostgreSQL parses and plans it once per connection instead
 * of on every call (parse and plan were ~0.9 ms of the ~1.7 ms a new request's insert took).
 * For hot queries whose text takes a bounded number of shapes — never for SQL with inlined
 * values. The text is registered here, through drizzle's public getQuery(); the backend's
 * client names it (backends/postgres.ts). PGlite is one connection and runs it as is.
 */
export async function preparedRows<T>(db: Db, query: SQL): Promise<T[]> {
  const statement = db.execute(query)
  nameStatement(statement.getQuery().sql)
  return ((await statement) as unknown as { rows: T[] }).rows
}

/**
 * drizzle leaves timestamptz values of raw queries as PostgreSQL text
 * (`2026-05-01 14:03:09.123456+00`); this turns them into Dates.
 */
export function toDate(value: string | Date): Date
export function toDate(value: string | Date | null): Date | null
export function toDate(value: string | Date | null): Date | null {
  if (value === null || value instanceof Date) return value
  return new Date(value.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00'))
}
