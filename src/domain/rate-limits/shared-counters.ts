/**
 * Fixed-window hit counters shared by every instance through the database, without a round
 * trip per hit. The first hit on a key in a window is counted in the database at once, so an
 * instance learns what the others have already counted for that client; later hits are
 * counted here and folded into the shared row every FLUSH_MS, each flush bringing back the
 * global total. The price, documented in docs/architecture.md: when one client spreads its
 * requests over several instances, each may admit up to FLUSH_MS worth of its requests
 * beyond the limit before it sees the others' counts.
 */
import { sql } from 'drizzle-orm'
import { type Db, type DatabaseLogger, queryRows } from '../../db/database.js'

export const FLUSH_MS = 100
/** Windows older than this are deleted by a share of flushes, so no extra job is needed. */
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

  constructor(
    private readonly getDb: () => Db,
    private readonly log: DatabaseLogger,
  ) {}

  async hit(key: string, timeWindow: number): Promise<Hit> {
    const now = Date.now()
    const windowStart = now - (now % timeWindow)
    const ttl = windowStart + timeWindow - now
    const counter = this.counters.get(key)
    if (!counter || counter.windowStart !== windowStart) {
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

  /** Folds every locally held hit into the shared counters. */
  async flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flushing
    this.flushing = this.flushOnce().finally(() => {
      this.flushing = undefined
    })
    return this.flushing
  }

  async close(): Promise<void> {
    await this.flush()
  }

  private async flushOnce(): Promise<void> {
    const now = Date.now()
    const batch: { key: string; counter: Counter; hits: number }[] = []
    for (const [key, counter] of this.counters) {
      if (counter.pending > 0) {
        batch.push({ key, counter, hits: counter.pending })
        counter.inFlight += counter.pending
        counter.pending = 0
      } else if (counter.inFlight === 0 && counter.windowEnd <= now) {
        this.counters.delete(key)
      }
    }
    if (batch.length === 0) return
    try {
      const rows = await this.add(batch.map(({ key, counter, hits }) => ({ key, windowStart: counter.windowStart, hits })))
      const totals = new Map(rows.map((r) => [`${r.key}\n${new Date(r.window_start).getTime()}`, Number(r.hits)]))
      for (const { key, counter, hits } of batch) {
        counter.inFlight -= hits
        counter.known = Math.max(counter.known, totals.get(`${key}\n${counter.windowStart}`) ?? counter.known + hits)
      }
      if (Math.random() < 0.01) {
        await this.getDb().execute(sql`delete from rate_limit_counters where window_start < ${new Date(now - KEEP_WINDOWS_MS).toISOString()}`)
      }
    } catch (err) {
      // Keep the hits for the next flush rather than forget them.
      for (const { counter, hits } of batch) {
        counter.inFlight -= hits
        counter.pending += hits
      }
      this.log.warn({ err }, 'rate-limit counters could not be flushed')
    }
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
