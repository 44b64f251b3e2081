/**
 * The database handle the rest of the code sees. Nothing outside `src/db/` knows whether it
 * talks to a PostgreSQL server (DATABASE_URL) or to the embedded PGlite default.
 */
import type { SQL } from 'drizzle-orm'
import type { PgDatabase, PgDialect, PgQueryResultHKT, PgSession } from 'drizzle-orm/pg-core'
import type { BaseLogger } from 'pino'
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
  close(): Promise<void>
}

export interface DatabaseOptions {
  /** PostgreSQL connection string; when absent the embedded database is used. */
  databaseUrl?: string
  /** Embedded database directory; absent means in memory. */
  dataDir?: string
  /** Embedded database: start from this dump (made by `dumpEmbeddedTemplate`) instead of an empty cluster. */
  loadDataDir?: Blob
  poolSize?: number
  logger: DatabaseLogger
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

/**
 * An instance's cache, one map per database handle, so two databases in one process (tests)
 * never share entries. Returns the map for a handle, creating it on first use.
 */
export function cachePerDatabase<V>(): { of(db: Db): Map<string, V>; forget(db: Db): void } {
  const maps = new WeakMap<Db, Map<string, V>>()
  return {
    of(db) {
      let map = maps.get(db)
      if (!map) maps.set(db, (map = new Map()))
      return map
    },
    forget(db) {
      maps.delete(db)
    },
  }
}

interface Expiring<V> {
  at: number
  value?: V
  /** The read under way: a burst of requests at expiry shares it instead of sending one each. */
  loading?: Promise<V>
}

/**
 * Values read from the database, kept per handle and key for `ttlMs`. A fresh copy comes back
 * without a promise; a missing or expired one is read once for every request waiting on it.
 * Failed reads, and values `keep` refuses, are not remembered (so guessed keys cannot grow it).
 */
export function expiringCache<V>(options: { ttlMs: number; load: (db: Db, key: string) => Promise<V>; keep?: (value: V) => boolean }) {
  const entries = cachePerDatabase<Expiring<V>>()
  const keep = options.keep ?? (() => true)
  const drop = (map: Map<string, Expiring<V>>, key: string, entry: Expiring<V>) => map.get(key) === entry && map.delete(key)
  return {
    get(db: Db, key: string): V | Promise<V> {
      const map = entries.of(db)
      const cached = map.get(key)
      if (cached?.value !== undefined && Date.now() - cached.at < options.ttlMs) return cached.value
      if (cached?.loading) return cached.loading
      const entry: Expiring<V> = cached ?? { at: 0 }
      map.set(key, entry)
      const startedAt = Date.now()
      entry.loading = options
        .load(db, key)
        .then(
          (value) => {
            if (keep(value)) Object.assign(entry, { value, at: startedAt })
            else drop(map, key, entry)
            return value
          },
          (err: unknown) => {
            if (entry.value === undefined) drop(map, key, entry)
            throw err
          },
        )
        .finally(() => (entry.loading = undefined))
      return entry.loading
    },
    /** Drops this instance's copies for `db` (after a change made here, or behind its back). */
    forget(db: Db) {
      entries.forget(db)
    },
    /** How many keys are held for `db`, reads under way included. */
    size(db: Db): number {
      return entries.of(db).size
    },
  }
}

/** One name per distinct SQL text, process-wide: a name always means the same text. */
const statementNames = new Map<string, string>()

/**
 * Each named statement stays prepared, with its plan, on every pooled connection. Clients pick
 * the search's shape (which filters they send), so past this many texts a statement runs
 * unnamed instead: the common shapes get names first and keep them.
 */
export const MAX_NAMED_STATEMENTS = 100

function statementName(text: string): string | undefined {
  let name = statementNames.get(text)
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `open311_${statementNames.size + 1}`
    statementNames.set(text, name)
  }
  return name
}

/**
 * Like queryRows, as a named prepared statement: PostgreSQL parses and plans it once per
 * connection instead of on every call (parse and plan were ~0.9 ms of the ~1.7 ms a new
 * request's insert took). For hot queries whose text takes a bounded number of shapes —
 * never for SQL with inlined values. drizzle names prepared statements only for query-builder
 * queries; this is db.execute()'s own session call, with a name. PGlite ignores names.
 */
export async function preparedRows<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await prepare(db, query).execute()) as { rows: T[] }).rows
}

/**
 * A named prepared statement whose text is built once: the query holds `sql.placeholder(name)`
 * for each value, and every call only fills them in. For the hottest writes, where building a
 * large statement's text and its driver objects on every call costs more than running it.
 */
export function preparedStatement<T>(query: SQL): (db: Db, values: Record<string, unknown>) => Promise<T[]> {
  // Per handle: a transaction is its own handle, with its own session.
  const prepared = new WeakMap<Db, PreparedQuery>()
  return async (db, values) => {
    let statement = prepared.get(db)
    if (!statement) prepared.set(db, (statement = prepare(db, query)))
    return ((await statement.execute(values)) as { rows: T[] }).rows
  }
}

/** db.execute()'s own session call, with a name (see statementName). */
function prepare(db: Db, query: SQL): PreparedQuery {
  const { dialect, session } = db as unknown as DrizzleInternals
  const built = dialect.sqlToQuery(query)
  return session.prepareQuery(built, undefined, statementName(built.sql), false)
}

type PreparedQuery = ReturnType<PgSession['prepareQuery']>

interface DrizzleInternals {
  dialect: PgDialect
  session: PgSession
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
