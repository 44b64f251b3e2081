/**
 * The feeds' consistency horizon. Every change to a row the feeds page through is stamped by
 * `open311_change_time()`, and `open311_feed_horizon()` returns a time before which all stamped
 * changes are committed and none can still come (both in migration 0009, which explains why).
 * A feed serves only rows stamped before its horizon, so a keyset page over them is final: no
 * row can later appear behind a harvester's position, and a row changed during a harvest moves
 * past the horizon and comes again later in the order.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { unavailable } from '../errors.js'

/** How long a feed waits for a lagging replica before answering 503. */
const REPLICA_WAIT_MS = 5000
const REPLICA_POLL_MS = 20
/** SQLSTATE 55000 object_not_in_prerequisite_state, raised by open311_feed_horizon(). */
const HORIZON_REFUSED = '55000'

/**
 * The horizon for reading the feed from `reader`, in microseconds since the epoch (decimal
 * text). Run before the statements that read the feed (each then takes a later snapshot).
 *
 * A replica's pg_stat_activity shows none of the primary's writers, so the horizon is always
 * taken on the primary. When `reader` is a replica it is read only once it has replayed the
 * primary's WAL as far as it reached after the horizon was taken: every change stamped before
 * the horizon committed before that point, so the replica's snapshots then hold all of them.
 */
export async function feedHorizon(primary: Db, reader: Db): Promise<string> {
  const [row] = await queryRows<{ micros: string }>(primary, sql`select ${microsOf(sql`open311_feed_horizon()`)} as micros`).catch((err: unknown) => {
    // The horizon function refuses when it cannot see every writer (migration 0009).
    if ((err as { code?: string }).code === HORIZON_REFUSED) throw unavailable(`the open-data feeds cannot be served: ${(err as Error).message}`)
    throw err
  })
  if (reader === primary) return row!.micros
  // A statement of its own, so it runs after the horizon's look at the writers. The flush
  // position, not the insert position: a replica replays flushed WAL, and an idle primary's
  // insert position can sit past a page header the replica never reaches. Commits are
  // flushed before they are visible unless synchronous_commit is off (docs/open-data.md).
  const [wal] = await queryRows<{ lsn: string }>(primary, sql`select pg_current_wal_flush_lsn()::text as lsn`)
  for (const started = Date.now(); ; ) {
    const [replica] = await queryRows<{ caught_up: boolean }>(reader, sql`select coalesce(pg_last_wal_replay_lsn() >= ${wal!.lsn}::pg_lsn, false) as caught_up`)
    if (replica!.caught_up) return row!.micros
    if (Date.now() - started > REPLICA_WAIT_MS) throw unavailable('the read replica is behind the primary; retry in a few seconds')
    await sleep(REPLICA_POLL_MS)
  }
}

/** A timestamptz expression as exact microseconds since the epoch, in decimal text. */
export const microsOf = (timestamp: ReturnType<typeof sql>) => sql`(extract(epoch from ${timestamp}) * 1000000)::bigint::text`

/** Microseconds since the epoch (decimal text) as a timestamptz, exactly (no float on the way). */
export const timestampOf = (micros: string) => sql`(timestamptz 'epoch' + ${micros}::bigint * interval '1 microsecond')`

/** The earlier of two microsecond times, both decimal text. */
export const earlierMicros = (a: string, b: string) => (BigInt(a) <= BigInt(b) ? a : b)
