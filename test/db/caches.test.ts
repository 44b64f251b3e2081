import t from 'tap'
import { expiringCache } from '../../src/db/caches.js'
import type { Db } from '../../src/db/database.js'

// The cache only uses a handle as its key and hands it to `load`: two distinct objects stand for two databases.
const first = {} as Db
const second = {} as Db

/** A load whose reads resolve or reject when the test says, counting the reads made. */
function controlledLoad() {
  const pending: { db: Db; key: string; resolve(value: string | undefined): void; reject(err: Error): void }[] = []
  return {
    pending,
    load: (db: Db, key: string) => new Promise<string | undefined>((resolve, reject) => pending.push({ db, key, resolve, reject })),
  }
}

t.test('one read for all waiters, kept per database handle', async (t) => {
  const reads = controlledLoad()
  const cache = expiringCache<string | undefined>({ ttlMs: 60_000, max: 10, load: reads.load })
  const waiting = Promise.all([cache.get(first, 'a'), cache.get(first, 'a')])
  t.equal(reads.pending.length, 1, 'two waiters, one read')
  t.equal(cache.size(first), 1, 'the read under way is counted')
  reads.pending[0]!.resolve('first a')
  t.same(await waiting, ['first a', 'first a'])
  t.equal(await cache.get(first, 'a'), 'first a', 'then answered from the copy')
  t.equal(reads.pending.length, 1)

  const other = cache.get(second, 'a')
  t.equal(reads.pending.length, 2, 'another handle does not see the first one’s entries')
  t.equal(reads.pending[1]!.db, second, 'and its read goes to its own database')
  reads.pending[1]!.resolve('second a')
  t.equal(await other, 'second a')
  t.equal(await cache.get(first, 'a'), 'first a')
})

t.test('nothing found and failed reads are not remembered', async (t) => {
  const reads = controlledLoad()
  const cache = expiringCache<string | undefined>({ ttlMs: 60_000, max: 10, load: reads.load })
  const missing = cache.get(first, 'unknown')
  reads.pending[0]!.resolve(undefined)
  t.equal(await missing, undefined)
  t.equal(cache.size(first), 0, 'a read that found nothing keeps nothing')

  const failing = Promise.allSettled([cache.get(first, 'k'), cache.get(first, 'k')])
  reads.pending[1]!.reject(new Error('database unreachable'))
  t.same(
    (await failing).map((a) => a.status),
    ['rejected', 'rejected'],
    'every waiter sees the failure',
  )
  t.equal(cache.size(first), 0, 'and nothing is held')
  const again = cache.get(first, 'k')
  t.equal(reads.pending.length, 3, 'the next get reads again')
  reads.pending[2]!.resolve('k')
  t.equal(await again, 'k')
})

t.test('forget: the next get reads afresh, and a read under way still answers its waiters', async (t) => {
  const reads = controlledLoad()
  const cache = expiringCache<string | undefined>({ ttlMs: 60_000, max: 10, load: reads.load })
  const before = cache.get(first, 'a')
  cache.forget(first)
  reads.pending[0]!.resolve('old')
  t.equal(await before, 'old', 'the read that began before the forget answers')
  t.equal(cache.size(first), 0, 'but is not kept')
  const after = cache.get(first, 'a')
  t.equal(reads.pending.length, 2, 'a fresh read')
  reads.pending[1]!.resolve('new')
  t.equal(await after, 'new')
})
