/**
 * Open311 `jurisdiction_id` rules: optional while the server holds one jurisdiction (but when
 * given it must match), required once it holds several; unknown ids are 404.
 */
import { asc } from 'drizzle-orm'
import { expiringCache } from '../db/caches.js'
import type { Db } from '../db/database.js'
import { jurisdictions } from '../db/schema.js'
import { invalid, notFound } from './errors.js'

export type Jurisdiction = typeof jurisdictions.$inferSelect

/**
 * Every public request resolves its jurisdiction, and jurisdictions (with their
 * catalog_changed_at) change a few times a year. Each instance keeps them for at most
 * JURISDICTION_TTL_MS; a change made through this instance is seen at once, one made through
 * another instance within that second. Per database handle.
 */
export const JURISDICTION_TTL_MS = 1_000

const cached = expiringCache<Jurisdiction[]>({
  ttlMs: JURISDICTION_TTL_MS,
  // One entry, the whole list.
  max: 1,
  load: (db) => db.select().from(jurisdictions).orderBy(asc(jurisdictions.id)),
})

/** Drops this instance's copy after a change (catalog import, jurisdiction edits). */
export function forgetJurisdictions(db: Db) {
  cached.forget(db)
}

/** Every jurisdiction served, as this instance holds them (at most JURISDICTION_TTL_MS old). */
export async function servedJurisdictions(db: Db): Promise<Jurisdiction[]> {
  return cached.get(db, '')
}

/** The jurisdiction a request names, or the only one. */
export async function resolveJurisdiction(db: Db, requestedId: string | undefined): Promise<Jurisdiction> {
  return choose(await cached.get(db, ''), requestedId)
}

function choose(all: Jurisdiction[], requestedId: string | undefined): Jurisdiction {
  if (requestedId) {
    const found = all.find((j) => j.id === requestedId)
    if (!found) throw notFound(`jurisdiction_id "${requestedId}" is not served here${all.length ? `; served: ${idList(all)}` : ''}`)
    return found
  }
  if (all.length === 0) throw notFound('no jurisdiction is configured on this server')
  if (all.length > 1) throw invalid(`jurisdiction_id is required: this server serves several jurisdictions (${idList(all)})`)
  return all[0]!
}

/** Enough ids to pick from; a server with hundreds names the first ones. No secret: clients put them in every URL. */
const LISTED_IDS = 20

function idList(all: Jurisdiction[]): string {
  const ids = all.slice(0, LISTED_IDS).map((j) => j.id)
  return all.length > LISTED_IDS ? `${ids.join(', ')} and ${all.length - LISTED_IDS} more` : ids.join(', ')
}

export async function listJurisdictions(db: Db): Promise<Jurisdiction[]> {
  return db.select().from(jurisdictions).orderBy(asc(jurisdictions.id))
}
