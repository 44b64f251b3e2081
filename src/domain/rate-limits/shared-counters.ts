/**
 * Fixed-window hit counters shared by every instance through the database, without a round
 * trip per hit. The first hit on a key in a window is counted in the database at once, so an
 * instance learns what the others have already counted for that client; later hits are
 * counted here and folded into the shared row every FLUSH_MS, each flush bringing back the
 * global total. The price, documented in docs/architecture.md: when one client spreads its
 * requests over several instances, each may admit up to FLUSH_MS worth of its requests
 * beyond the limit before it sees the others' counts.
 *
 * Kept fast path: POST requests.json ran at 1.51× a round trip to the shared row per hit
 * (1,206 vs 761 req/s, all three rounds faster: `npm run bench:compare -- --baseline 8d5040c
 * --rows 20000 --duration 6 --rounds 3 --deliveries 1000`, 8d5040c = this class with every hit
 * sent to the database, 32 connections, session 11; docs/benchmarks.md). Invariant: a key's
 * first hit in a window is counted in the database before it is answered, and every local hit
 * reaches the shared row within FLUSH_MS (or on close).
 */
import { sql } from 'drizzle-orm'
import { type Db, type DatabaseLogger, queryRows } from '../../db/database.js'

export const FLUSH_MS = 100
/** How often a first hit also sweeps out ended windows, here and in the table: no extra job. */
export const SWEEP_MS = 10_000
/** Rows of windows older than this are deleted by the sweep. */
const KEEP_WINDOWS_MS = 3_600_000

interface Counter {
  windowStart: number
  windowEnd: number
  /** The shared total as of the last answer from the database. */
  known: number
  /** Hits sent to the database and not yet answered. */
  inFlight: number
  /** Hits counted here only. */
  pending: number
}

export interface Hit {
  current: number
  /** Milliseconds until the window ends. */
  ttl: number
}

export class SharedCounters {
  private readonly counters = new Map<string, Counter>()
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined
  private lastSweep = 0

  constructor(
    private readonly getDb: () => Db,
    private readonly log: DatabaseLogger,
    private readonly sweepMs = SWEEP_MS,
  ) {}

  /** Keys counted here (windows not yet swept out). */
  get size(): number {
    return this.counters.size
  }

  async hit(key: string, timeWindow: number): Promise<Hit> {
    const now = Date.now()
    const windowStart = now - (now % timeWindow)
    const ttl = windowStart + timeWindow - now
    const counter = this.counters.get(key)
    if (!counter || counter.windowStart !== windowStart) {
      this.sweep(now)
      const [row] = await this.add([{ key, windowStart, hits: 1 }])
      const current = Number(row?.hits ?? 1)
      // Concurrent first hits all went to the database; the first answer creates the entry,
      // later ones only raise what it knows (never replace it: it may hold local hits by now).
      const created = this.counters.get(key)
      if (created?.windowStart === windowStart) created.known = Math.max(created.known, current)
      else this.counters.set(key, { windowStart, windowEnd: windowStart + timeWindow, known: current, inFlight: 0, pending: 0 })
      return { current, ttl }
    }
    counter.pending++
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref()
    return { current: counter.known + counter.inFlight + counter.pending, ttl }
  }

  /** Folds every locally held hit into the shared counters; calls queue behind each other. */
  flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    const next = (this.flushing ?? Promise.resolve()).then(() => this.flushOnce())
    this.flushing = next
    void next.finally(() => {
      if (this.flushing === next) this.flushing = undefined
    })
    return next
  }

  async close(): Promise<void> {
    await this.flush()
  }

  private async flushOnce(): Promise<void> {
    const batch: { key: string; counter: Counter; hits: number }[] = []
    for (const [key, counter] of this.counters) {
      if (counter.pending === 0) continue
      batch.push({ key, counter, hits: counter.pending })
      counter.inFlight += counter.pending
      counter.pending = 0
    }
    if (batch.length === 0) return
    let rows: Awaited<ReturnType<SharedCounters['add']>>
    try {
      rows = await this.add(batch.map(({ key, counter, hits }) => ({ key, windowStart: counter.windowStart, hits })))
    } catch (err) {
      // Keep the hits for the next flush rather than forget them.
      for (const { counter, hits } of batch) {
        counter.inFlight -= hits
        counter.pending += hits
      }
      this.log.warn({ err }, 'rate-limit counters could not be flushed')
      return
    }
    const totals = new Map(rows.map((r) => [`${r.key}\n${new Date(r.window_start).getTime()}`, Number(r.hits)]))
    for (const { key, counter, hits } of batch) {
      counter.inFlight -= hits
      counter.known = Math.max(counter.known, totals.get(`${key}\n${counter.windowStart}`) ?? counter.known + hits)
    }
  }

  /**
   * Drops the counters of ended windows, so clients seen once do not stay in memory, and now and
   * then the table's old rows. Runs on first hits, the only path that adds entries.
   */
  private sweep(now: number) {
    if (now - this.lastSweep < this.sweepMs) return
    this.lastSweep = now
    for (const [key, counter] of this.counters) {
      if (counter.windowEnd <= now && counter.pending === 0 && counter.inFlight === 0) this.counters.delete(key)
    }
    // Not awaited: a failure only leaves the rows for the next sweep.
    this.getDb()
      .execute(sql`delete from rate_limit_counters where window_start < ${new Date(now - KEEP_WINDOWS_MS).toISOString()}`)
      .catch((err: unknown) => this.log.warn({ err }, 'old rate-limit counters could not be pruned'))
  }

  /** Adds hits to shared counters in one statement; answers with the new totals. */
  private add(entries: { key: string; windowStart: number; hits: number }[]) {
    return queryRows<{ key: string; window_start: string | Date; hits: number }>(
      this.getDb(),
      sql`insert into rate_limit_counters (key, window_start, hits)
          select * from unnest(${sql.param(entries.map((e) => e.key))}::text[],
                               ${sql.param(entries.map((e) => new Date(e.windowStart).toISOString()))}::timestamptz[],
                               ${sql.param(entries.map((e) => e.hits))}::int[])
          on conflict (key, window_start) do update set hits = rate_limit_counters.hits + excluded.hits
          returning key, window_start, hits`,
    )
  }
}
