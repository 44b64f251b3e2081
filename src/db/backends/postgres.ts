import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import pg from 'pg'
import { type Database, type DatabaseOptions, statementNameOf } from '../database.js'
import { MIGRATIONS_FOLDER } from '../migrations-folder.js'
import { isDatabaseUnavailable, quietDuringOutages, trackOutages } from '../outages.js'
import * as schema from '../schema.js'
import { createPostgresListener } from './postgres-listener.js'

// Raw queries must see bigint ids as numbers on both backends (PGlite already answers numbers).
// drizzle's per-query parsers fall back to pg's global table, so this is where it is set;
// ids stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value))

/**
 * A pg client that sends the statements preparedRows registered (database.ts) with their name,
 * as pg's own `{ name, text, values }` query config: PostgreSQL then parses and plans each once
 * per connection. Every other query passes through as it came.
 */
class NamingClient extends pg.Client {}
const unnamedQuery = pg.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown
NamingClient.prototype.query = function query(this: pg.Client, config: unknown, ...rest: unknown[]) {
  const name = isUnnamedConfig(config) ? statementNameOf(config.text) : undefined
  return unnamedQuery.call(this, name ? { ...(config as object), name } : config, ...rest)
} as pg.Client['query']

const isUnnamedConfig = (config: unknown): config is { text: string; name?: string } =>
  typeof config === 'object' && config !== null && typeof (config as { text?: unknown }).text === 'string' && !(config as { name?: unknown }).name

/**
 * A pool whose checked-out clients are given back when their connection dies. drizzle's
 * transaction (drizzle-orm 0.45.4, node-postgres session) sends BEGIN before its try/finally,
 * so a BEGIN on a connection lost a moment before (a database restart, a cut network) never
 * releases the client: each outage would leak pool slots until the pool has none. Here a
 * statement failing for want of a connection releases its client at once, as broken (the pool
 * drops it), and a later release — the transaction's own — is a no-op. Promise-style connect
 * only: that is what drizzle uses; pool.query manages its clients itself.
 */
export class ReleasingPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void
  override connect(callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void) {
    if (callback) return super.connect(callback)
    return super.connect().then(releasedWhenBroken)
  }
}

/** Per pooled client: the release of its current checkout (pg-pool gives each checkout a fresh `release`). */
const checkoutRelease = new WeakMap<pg.PoolClient, (err?: Error | boolean) => void>()

function releasedWhenBroken(client: pg.PoolClient): pg.PoolClient {
  const release = client.release.bind(client)
  let released = false
  const releaseOnce = (err?: Error | boolean) => {
    if (released) return
    released = true
    release(err)
  }
  client.release = releaseOnce
  // The pool hands out the same client object again and again: its query is wrapped on the
  // first checkout only. Wrapping it on every checkout (session 7) nested one wrapper per
  // transaction, so every query walked all of them: POST requests.json fell from ~1,650 to
  // ~620 req/s within minutes and kept falling (bench:compare, session 8).
  if (!checkoutRelease.has(client)) {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown
    client.query = ((...args: unknown[]) => {
      // The checkout this query runs in, read when it is sent: a failure releases that one alone.
      const releaseThisCheckout = checkoutRelease.get(client)!
      const result = query(...args)
      if (result instanceof Promise) {
        result.catch((err: unknown) => {
          if (isDatabaseUnavailable(err)) releaseThisCheckout(err instanceof Error ? err : true)
        })
      }
      return result
    }) as typeof client.query
  }
  checkoutRelease.set(client, releaseOnce)
  return client
}

/** Serialises migrations across every instance starting against the same database. */
const MIGRATION_LOCK_KEY = 311_2_0

export function openPostgres(databaseUrl: string, options: DatabaseOptions): Database {
  const max = options.poolSize ?? 10
  const pool = new ReleasingPool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: 10_000,
    application_name: 'open311-server',
    Client: options.preparedStatements === false ? pg.Client : NamingClient,
  })
  const ping = async () => {
    await pool.query('select 1')
  }
  const outages = trackOutages({ logger: options.logger, ping })
  const logger = quietDuringOutages(options.logger, () => outages)
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => logger.warn({ err }, 'idle database connection failed'))
  // Nor a checked-out one: pg-pool listens for errors only while a client is idle, and a client
  // whose connection dies between two statements of a transaction emits 'error' with no query
  // to fail, which unheard would crash the process. Its next statement fails instead (an
  // outage: 503), and the pool drops it on release.
  pool.on('connect', (client) => client.on('error', (err) => logger.warn({ err }, 'database connection failed')))
  const listener = createPostgresListener({ databaseUrl, logger })
  const db = drizzle({ client: pool, schema })
  let closing: Promise<void> | undefined

  return {
    db,
    outages,
    ping,
    async migrate() {
      const client = await pool.connect()
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
        try {
          await migrate(drizzle({ client, schema }), { migrationsFolder: MIGRATIONS_FOLDER })
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
        }
      } finally {
        client.release()
      }
    },
    listen: listener.listen,
    poolStats: () => ({ max, open: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close() {
      outages.stop()
      closing ??= listener.close().then(() => pool.end())
      return closing
    },
  }
}
