/**
 * The catalog is read on every services, definition and POST request and changes rarely.
 * Each instance keeps the last catalog it loaded per jurisdiction, keyed by the jurisdiction's
 * `catalog_changed_at` — which every read already fetches with the jurisdiction — so a change
 * made through any instance is seen by the next request on every instance: the cache can
 * never serve a catalog older than the database's.
 */
import { and, eq, isNotNull } from 'drizzle-orm'
import { cachePerDatabase } from '../../db/caches.js'
import type { Db } from '../../db/database.js'
import { services } from '../../db/schema.js'
import type { Jurisdiction } from '../jurisdictions.js'
import { loadCatalogServices, type StoredService } from './catalog.js'
import type { ServiceTranslation } from '../../db/schema.js'

const catalogs = cachePerDatabase<{ version: number; services: StoredService[] }>()

/** Active services of the jurisdiction, as of its catalog_changed_at. */
export async function activeServices(db: Db, jurisdiction: Jurisdiction): Promise<StoredService[]> {
  const version = jurisdiction.catalogChangedAt.getTime()
  const cache = catalogs.of(db)
  const cached = cache.get(jurisdiction.id)
  if (cached?.version === version) return cached.services
  const services = await loadCatalogServices(db, jurisdiction.id)
  cache.set(jurisdiction.id, { version, services })
  return services
}

export async function activeService(db: Db, jurisdiction: Jurisdiction, serviceCode: string): Promise<StoredService | undefined> {
  return (await activeServices(db, jurisdiction)).find((s) => s.service_code === serviceCode)
}

const sensitive = cachePerDatabase<{ version: number; any: boolean }>()

/**
 * Whether any service of the jurisdiction, active or not (withdrawn services' requests are still
 * shown), is sensitive: public spatial searches need a wider pre-check only then
 * (find-requests.ts). Kept like the catalog, by its version.
 */
export async function maySensitive(db: Db, jurisdiction: Jurisdiction): Promise<boolean> {
  const version = jurisdiction.catalogChangedAt.getTime()
  const cache = sensitive.of(db)
  const cached = cache.get(jurisdiction.id)
  if (cached?.version === version) return cached.any
  const [row] = await db
    .select({ id: services.id })
    .from(services)
    .where(and(eq(services.jurisdictionId, jurisdiction.id), eq(services.privacy, 'sensitive')))
    .limit(1)
  cache.set(jurisdiction.id, { version, any: row !== undefined })
  return row !== undefined
}

const translated = cachePerDatabase<{ version: number; byId: Map<number, Record<string, ServiceTranslation>> }>()

/**
 * The name of a service (active or withdrawn: request lists show both) in `locale`, or undefined
 * when it has none there (the row's own name stands). Request lists call it per row, so each
 * instance keeps the jurisdiction's translations, by catalog version, as the catalog itself.
 */
export async function translatedServiceNames(db: Db, jurisdiction: Jurisdiction): Promise<(serviceId: number, locale: string) => string | undefined> {
  const version = jurisdiction.catalogChangedAt.getTime()
  const cache = translated.of(db)
  let cached = cache.get(jurisdiction.id)
  if (cached?.version !== version) {
    const rows = await db
      .select({ id: services.id, translations: services.translations })
      .from(services)
      .where(and(eq(services.jurisdictionId, jurisdiction.id), isNotNull(services.translations)))
    cached = { version, byId: new Map(rows.map((r) => [r.id, r.translations!])) }
    cache.set(jurisdiction.id, cached)
  }
  const { byId } = cached
  return (serviceId, locale) => byId.get(serviceId)?.[locale]?.service_name
}
