/**
 * What an instance keeps of what it read from a database. Every cache here is per database
 * handle, so two databases in one process (tests) never share entries, and `forget` drops a
 * handle's copies by dropping its cache whole: a read still under way then answers its own
 * waiters but lands nowhere.
 */
import { LRUCache } from 'lru-cache'
import type { Db } from './database.js'

/** One `create()`d value per database handle, made on first use. */
function perDatabase<T extends object>(create: () => T): { of(db: Db): T; forget(db: Db): void } {
  const values = new WeakMap<Db, T>()
  return {
    of(db) {
      let value = values.get(db)
      if (!value) values.set(db, (value = create()))
      return value
    },
    forget(db) {
      values.delete(db)
    },
  }
}

/** A plain map per database handle, for caches that decide themselves when an entry is stale. */
export function cachePerDatabase<V>(): { of(db: Db): Map<string, V>; forget(db: Db): void } {
  return perDatabase(() => new Map<string, V>())
}

/**
 * Values read from the database, kept per handle and key for at most `ttlMs` from the moment
 * their read began. A missing or expired value is read once for every request waiting on it
 * (lru-cache's fetch). Failed reads are not remembered, nor is a read that finds nothing
 * (`load` resolving to undefined), so guessed keys cannot grow the cache.
 */
export function expiringCache<V extends {} | undefined>(options: { ttlMs: number; max: number; load: (db: Db, key: string) => Promise<V> }) {
  const caches = perDatabase(
    () =>
      new LRUCache<string, NonNullable<V>, Db>({
        max: options.max,
        ttl: options.ttlMs,
        // A read whose entry is evicted while under way (more than `max` new keys during one read)
        // still answers its waiters with the row it found; one that found nothing rejects them.
        ignoreFetchAbort: true,
        fetchMethod: async (key, _stale, { options: entry, context: db }) => {
          const startedAt = performance.now()
          const value = await options.load(db, key)
          // lru-cache counts a value's age from when it is stored; the read may have begun before
          // a change it did not see, so the value's lifetime runs from the read's start.
          entry.ttl = Math.max(1, options.ttlMs - (performance.now() - startedAt))
          return value
        },
      }),
  )
  return {
    get(db: Db, key: string): Promise<V> {
      // Resolves to what `load` resolved to: undefined only when it did, as no read is aborted.
      return caches.of(db).fetch(key, { context: db }) as Promise<V>
    },
    /** Drops this instance's copies for `db` (after a change made here, or behind its back). */
    forget(db: Db) {
      caches.forget(db)
    },
    /** How many keys are held for `db`, reads under way included. */
    size(db: Db): number {
      return caches.of(db).size
    },
  }
}
