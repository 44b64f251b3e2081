import { createHash } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { apiKeys } from '../../src/db/schema.js'
import {
  API_KEY_CACHE_TTL_MS,
  cachedApiKeyRows,
  createApiKey,
  forgetApiKeys,
  listApiKeys,
  revokeApiKey,
  verifyApiKey,
} from '../../src/domain/api-keys/api-keys.js'
import { buildTestApp } from '../helpers/app.js'
import { closeDatabaseUnderApp } from '../helpers/closed-database.js'
import { SERVER_ACTOR, systemActor } from '../../src/domain/audit/audit.js'

// One database per test file; subtests share it and run in order.
const { app, database } = await buildTestApp(t)
const db = app.db

const RAW_KEY = /^o311_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/

/** How many api_keys rows hold `needle` anywhere: every column, rendered as text. */
async function rowsContaining(needle: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from api_keys k where strpos(k::text, ${needle}) > 0`)
  return row!.n
}

async function lastUsedAt(id: number): Promise<Date | null> {
  const [row] = await db.select({ at: apiKeys.lastUsedAt }).from(apiKeys).where(eq(apiKeys.id, id))
  return row!.at
}

t.test('createApiKey returns a raw key of the documented shape, once', async (t) => {
  const created = await createApiKey(db, { name: 'mobile app' }, SERVER_ACTOR)
  t.match(created.key, RAW_KEY)
  t.equal(created.key.slice(5, 17), created.key_id, 'the key id is embedded in the raw key')
  t.match(created, { name: 'mobile app', scopes: ['requests:write'], last_used_at: null, revoked_at: null })
  t.ok(created.created_at instanceof Date)
  t.ok(Number.isInteger(created.id) && created.id > 0)

  const [summary] = (await listApiKeys(db)).filter((k) => k.id === created.id)
  t.ok(summary, 'listed')
  t.notOk(summary && 'key' in summary, 'the listing has no raw key')

  const other = await createApiKey(db, { name: 'other', scopes: ['admin', 'admin', 'requests:write'] }, SERVER_ACTOR)
  t.same(other.scopes, ['admin', 'requests:write'], 'scopes deduplicated')
  t.not(other.key, created.key)
  t.not(other.key_id, created.key_id)
})

t.test('the database never holds the raw key or its secret part', async (t) => {
  const created = await createApiKey(db, { name: 'storage check', scopes: ['admin'] }, SERVER_ACTOR)
  const secret = created.key.slice(18)
  t.equal(secret.length, 43)
  t.equal(await rowsContaining(created.key_id), 1, 'the row is found by its (non-secret) key id: the search works')
  t.equal(await rowsContaining(created.key), 0, 'no column holds the raw key')
  t.equal(await rowsContaining(secret), 0, 'no column holds the secret part')
  t.equal(await rowsContaining(secret.slice(0, 16)), 0, 'not even a prefix of the secret')

  const [row] = await db.select().from(apiKeys).where(eq(apiKeys.id, created.id))
  t.match(row?.secretHash, /^[0-9a-f]{64}$/, 'only a SHA-256 digest is stored')
  t.equal(row?.secretHash, createHash('sha256').update(created.key).digest('hex'))
})

t.test('verifyApiKey', async (t) => {
  const writer = await createApiKey(db, { name: 'writer', scopes: ['requests:write'] }, SERVER_ACTOR)
  const admin = await createApiKey(db, { name: 'admin', scopes: ['admin'] }, SERVER_ACTOR)

  t.test('accepts a valid key for its scope', async (t) => {
    const verified = await verifyApiKey(db, writer.key, 'requests:write')
    t.match(verified, { id: writer.id, key_id: writer.key_id, name: 'writer', scopes: ['requests:write'] })
    t.notOk(verified && 'key' in verified, 'the answer carries no raw key')
    t.match(await verifyApiKey(db, admin.key, 'admin'), { id: admin.id })
  })

  t.test('rejects a scope the key does not hold', async (t) => {
    t.equal(await verifyApiKey(db, writer.key, 'admin'), null)
    t.equal(await verifyApiKey(db, admin.key, 'requests:write'), null)
  })

  t.test('rejects a wrong secret with the right key id', async (t) => {
    const secret = writer.key.slice(18)
    const flipped = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    t.equal(await verifyApiKey(db, `o311_${writer.key_id}_${flipped}`, 'requests:write'), null, 'last character changed')
    t.equal(await verifyApiKey(db, `o311_${writer.key_id}_${admin.key.slice(18)}`, 'requests:write'), null, 'another key\'s secret')
    t.equal(await verifyApiKey(db, `o311_${admin.key_id}_${secret}`, 'admin'), null, 'this secret under another key id')
  })

  t.test('rejects malformed keys and empty input', async (t) => {
    const malformed = [
      '',
      ' ',
      'o311_',
      writer.key.slice(0, -1),
      `${writer.key}x`,
      `${writer.key} `,
      ` ${writer.key}`,
      `Bearer ${writer.key}`,
      writer.key.toUpperCase(),
      writer.key.replace(/^o311_/, 'o312_'),
      writer.key.replace(/_/, '-'),
      `o311_${writer.key_id}`,
      `o311_${'0'.repeat(12)}_${writer.key.slice(18)}`,
      writer.key_id,
      writer.key.slice(18),
    ]
    for (const candidate of malformed) {
      t.equal(await verifyApiKey(db, candidate, 'requests:write'), null, JSON.stringify(candidate))
    }
    t.equal(await verifyApiKey(db, undefined, 'requests:write'), null, 'undefined')
    t.match(await verifyApiKey(db, writer.key, 'requests:write'), { id: writer.id }, 'the key itself still works')
  })

  t.test('a revoked key is rejected immediately', async (t) => {
    const doomed = await createApiKey(db, { name: 'doomed', scopes: ['requests:write', 'admin'] }, SERVER_ACTOR)
    t.match(await verifyApiKey(db, doomed.key, 'admin'), { id: doomed.id })
    const revoked = await revokeApiKey(db, doomed.id, systemActor('test'))
    t.ok(revoked?.revoked_at instanceof Date, 'revoked_at set')
    t.equal(await verifyApiKey(db, doomed.key, 'admin'), null)
    t.equal(await verifyApiKey(db, doomed.key, 'requests:write'), null)
    t.match(await verifyApiKey(db, writer.key, 'requests:write'), { id: writer.id }, 'other keys unaffected')

    const again = await revokeApiKey(db, doomed.id, systemActor('test'))
    t.same(again?.revoked_at, revoked?.revoked_at, 'revoking twice keeps the first time')
    t.equal(await revokeApiKey(db, 987_654_321, systemActor('test')), null, 'unknown id')
  })
})

t.test('last_used_at is set by a successful verification only', async (t) => {
  const key = await createApiKey(db, { name: 'usage', scopes: ['requests:write'] }, SERVER_ACTOR)
  t.equal(await lastUsedAt(key.id), null, 'unused at creation')

  await verifyApiKey(db, key.key, 'admin')
  await verifyApiKey(db, `o311_${key.key_id}_${'A'.repeat(43)}`, 'requests:write')
  t.equal(await lastUsedAt(key.id), null, 'failed verifications leave it alone')

  const [dbNow] = await queryRows<{ now: Date }>(db, sql`select now() as now`)
  await verifyApiKey(db, key.key, 'requests:write')
  const used = await lastUsedAt(key.id)
  t.ok(used instanceof Date, 'set after use')
  t.ok(used!.getTime() >= new Date(dbNow!.now).getTime(), 'set to the time of use')

  // Throttled: a second use within the minute does not write again.
  await verifyApiKey(db, key.key, 'requests:write')
  t.same(await lastUsedAt(key.id), used)

  // An older timestamp is refreshed (the edit behind the instance's back needs its copy dropped).
  await db.update(apiKeys).set({ lastUsedAt: sql`now() - interval '2 minutes'` }).where(eq(apiKeys.id, key.id))
  forgetApiKeys(db)
  const stale = await lastUsedAt(key.id)
  await verifyApiKey(db, key.key, 'requests:write')
  t.ok((await lastUsedAt(key.id))!.getTime() > stale!.getTime(), 'refreshed after a minute')
})

t.test('a revocation made behind this instance’s back applies within API_KEY_CACHE_TTL_MS', async (t) => {
  const key = await createApiKey(db, { name: 'leaked', scopes: ['requests:write'] }, SERVER_ACTOR)
  t.ok(await verifyApiKey(db, key.key, 'requests:write'), 'valid, and now remembered')
  // As the CLI or another instance would: straight in the database.
  await db.update(apiKeys).set({ revokedAt: sql`now()` }).where(eq(apiKeys.id, key.id))
  await new Promise((resolve) => setTimeout(resolve, API_KEY_CACHE_TTL_MS + 50))
  t.equal(await verifyApiKey(db, key.key, 'requests:write'), null, 'refused once the remembered row is older than the TTL')

  const other = await createApiKey(db, { name: 'revoked here', scopes: ['requests:write'] }, SERVER_ACTOR)
  t.ok(await verifyApiKey(db, other.key, 'requests:write'))
  await revokeApiKey(db, other.id, systemActor('test'))
  t.equal(await verifyApiKey(db, other.key, 'requests:write'), null, 'a revocation through this instance applies to the next request')

  const valid = await createApiKey(db, { name: 'remembered', scopes: ['requests:write'] }, SERVER_ACTOR)
  t.ok(await verifyApiKey(db, valid.key, 'requests:write'))
  const tampered = valid.key.slice(0, -1) + (valid.key.endsWith('A') ? 'B' : 'A')
  t.equal(await verifyApiKey(db, tampered, 'requests:write'), null, 'a remembered row still checks the secret')
  t.equal(await verifyApiKey(db, valid.key, 'admin'), null, 'and the scope')
})

t.test('a burst of verifications on an expired copy: all answered from the one read they share', async (t) => {
  const key = await createApiKey(db, { name: 'burst', scopes: ['requests:write'] }, SERVER_ACTOR)
  forgetApiKeys(db)
  const verified = await Promise.all(Array.from({ length: 20 }, () => verifyApiKey(db, key.key, 'requests:write')))
  t.same(new Set(verified.map((v) => v?.id)), new Set([key.id]), 'all twenty verified')
  const wrongSecret = key.key.slice(0, -1) + (key.key.endsWith('A') ? 'B' : 'A')
  forgetApiKeys(db)
  const mixed = await Promise.all(Array.from({ length: 10 }, (_, i) => verifyApiKey(db, i % 2 ? key.key : wrongSecret, 'requests:write')))
  t.same(mixed.map((v) => v?.id ?? null), Array.from({ length: 10 }, (_, i) => (i % 2 ? key.id : null)), 'each checks its own secret against the shared row')
  const unknown = `o311_${'z'.repeat(12)}_${'A'.repeat(43)}` // well formed: it reaches the database
  const guesses = await Promise.all(Array.from({ length: 10 }, () => verifyApiKey(db, unknown, 'requests:write')))
  t.same(guesses, Array(10).fill(null), 'an unknown key id: refused for the whole burst')
  forgetApiKeys(db)
  await verifyApiKey(db, key.key, 'requests:write')
  t.equal(cachedApiKeyRows(db), 1, 'the known key is held')
  await Promise.all(Array.from({ length: 10 }, (_, i) => verifyApiKey(db, `o311_${String(i).padStart(12, 'x')}_${'A'.repeat(43)}`, 'requests:write')))
  t.equal(cachedApiKeyRows(db), 1, 'ten guessed ids add nothing')
})

// Last: it closes the database under the app.
t.test('a failed read is not remembered: every waiter gets the error, and the next request reads again', async (t) => {
  const key = await createApiKey(db, { name: 'outage', scopes: ['requests:write'] }, SERVER_ACTOR)
  forgetApiKeys(db)
  await closeDatabaseUnderApp(database)
  const attempts = await Promise.allSettled(Array.from({ length: 5 }, () => verifyApiKey(db, key.key, 'requests:write')))
  t.same(attempts.map((a) => a.status), Array(5).fill('rejected'), 'all five waiters see the failure')
  t.equal(cachedApiKeyRows(db), 0, 'nothing is held for a key whose read failed')
  await t.rejects(verifyApiKey(db, key.key, 'requests:write'), 'the next request reads again (and fails again, the database being closed)')
  t.equal(cachedApiKeyRows(db), 0)
})
