/**
 * Tenancy (docs/tenancy.md): one server can host several cities' 311, each city's keys acting
 * only in its own jurisdictions. A key's `jurisdiction_ids` is null for every jurisdiction (the
 * server's own operators, and the CLI, which has no key) or the list it acts in. Everything a
 * key reaches goes through these rules: the jurisdiction it names (resolveKeyJurisdiction), the
 * lists that span jurisdictions (jurisdictionFilterOf), and the keys it may hand out
 * (grantableJurisdictions), so a city's key can never mint one that reaches further than itself.
 */
import { type Jurisdiction, listJurisdictions, resolveJurisdiction } from '../jurisdictions.js'
import type { Db } from '../../db/database.js'
import { forbidden, invalid } from '../errors.js'

/** What these rules read of a key. */
export interface JurisdictionScopedKey {
  jurisdiction_ids: string[] | null
}

export function keyActsIn(key: JurisdictionScopedKey, jurisdictionId: string): boolean {
  return key.jurisdiction_ids === null || key.jurisdiction_ids.includes(jurisdictionId)
}

/**
 * The jurisdiction a keyed call acts in: the one it names, which the key must act in, or —
 * named none — the key's only jurisdiction, else the server's only one. A jurisdiction outside
 * the key's is refused as forbidden, naming only the key's own (never the others served).
 */
export async function resolveKeyJurisdiction(db: Db, key: JurisdictionScopedKey, requestedId: string | undefined): Promise<Jurisdiction> {
  const own = key.jurisdiction_ids
  if (own === null) return resolveJurisdiction(db, requestedId)
  if (requestedId === undefined || requestedId === '') {
    if (own.length === 1) return resolveJurisdiction(db, own[0])
    throw invalid(`jurisdiction_id is required: this key acts in several jurisdictions (${own.join(', ')})`)
  }
  if (!own.includes(requestedId)) throw forbidden(notYours(own))
  return resolveJurisdiction(db, requestedId)
}

/** Refuses a jurisdiction the key does not act in (a catalog import's, a POST's). */
export function assertKeyActsIn(key: JurisdictionScopedKey, jurisdictionId: string): void {
  if (!keyActsIn(key, jurisdictionId)) throw forbidden(notYours(key.jurisdiction_ids!))
}

const notYours = (own: string[]) => `this key acts in ${own.length === 1 ? 'jurisdiction' : 'jurisdictions'} ${own.join(', ')} only`

/**
 * For lists that span jurisdictions (audit, alerts, keys): null for a key of every jurisdiction,
 * else the ids it may see — narrowed to one when the caller names one, which must be its own.
 */
export function jurisdictionFilterOf(key: JurisdictionScopedKey, requestedId?: string): string[] | null {
  if (requestedId !== undefined && requestedId !== '') {
    assertKeyActsIn(key, requestedId)
    return [requestedId]
  }
  return key.jurisdiction_ids
}

/** Whether every jurisdiction `other` (a key, an entry) reaches is one `key` acts in. */
export function keyCovers(key: JurisdictionScopedKey, otherJurisdictionIds: string[] | null): boolean {
  if (key.jurisdiction_ids === null) return true
  return otherJurisdictionIds !== null && otherJurisdictionIds.every((id) => key.jurisdiction_ids!.includes(id))
}

/**
 * The jurisdictions of a key that `creator` makes: those asked for, which the creator must act
 * in all of; asked for none, the creator's own (a city's key makes the city's keys).
 */
export function grantableJurisdictions(creator: JurisdictionScopedKey, requested: string[] | undefined): string[] | null {
  if (requested === undefined) return creator.jurisdiction_ids
  const outside = requested.filter((id) => !keyActsIn(creator, id))
  if (outside.length > 0) throw forbidden(`jurisdiction_ids: ${outside.join(', ')}: ${notYours(creator.jurisdiction_ids!)}`)
  return requested
}

/** `ids` deduplicated and sorted, each a jurisdiction this server serves. */
export async function servedJurisdictionIds(db: Db, ids: string[]): Promise<string[]> {
  const served = new Set((await listJurisdictions(db)).map((j) => j.id))
  const unknown = ids.filter((id) => !served.has(id))
  if (unknown.length > 0) {
    throw invalid(`jurisdiction_ids: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not served here; served: ${[...served].join(', ') || 'none'}`)
  }
  if (ids.length === 0) throw invalid('jurisdiction_ids: give at least one, or leave it out for every jurisdiction')
  return [...new Set(ids)].sort()
}

/** Which jurisdiction an audit entry about a key belongs to: its only one, else none (seen by keys of every jurisdiction only). */
export function auditJurisdictionOf(key: JurisdictionScopedKey): string | null {
  return key.jurisdiction_ids?.length === 1 ? key.jurisdiction_ids[0]! : null
}
