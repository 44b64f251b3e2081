/**
 * The demo: a fictional city with a realistic 311 catalog, so `npm start` on a bare machine
 * serves something real. Loaded only into an empty database at start, or on demand by the CLI.
 */
import { count, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { jurisdictions } from '../../db/schema.js'
import { type CreatedApiKey, createApiKey } from '../api-keys/api-keys.js'
import { type AuditActor, systemActor } from '../audit/audit.js'
import { CATALOG_LOCK_KEY, type ImportOptions, type ImportSummary, importCatalog } from '../catalog/catalog.js'
import { validateCatalog } from '../catalog/validate-catalog.js'
import demoCatalog from './demo-catalog.json' with { type: 'json' }

/** The first start's seeding, as the audit trail names it. */
const DEMO_ACTOR = systemActor('demo seed')

/** Loads (or refreshes) the demo jurisdiction and catalog; idempotent. */
export async function loadDemoCatalog(db: Db, options: ImportOptions = {}, actor: AuditActor = DEMO_ACTOR): Promise<ImportSummary> {
  // structuredClone: validation fills defaults in place and the imported JSON is shared.
  return importCatalog(db, validateCatalog(structuredClone(demoCatalog), 'demo-catalog.json'), options, actor)
}

export interface DemoSeed {
  catalog: ImportSummary
  /** For client apps: POST requests (requests:write). */
  clientKey: CreatedApiKey
  /** For the operator trying the admin API (admin): without it a first run could not reach /admin/v1 at all. */
  adminKey: CreatedApiKey
}

/** Seeds the demo, a client key and an admin key when the database holds no jurisdiction; otherwise does nothing. */
export async function seedDemoIfEmpty(db: Db): Promise<DemoSeed | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${CATALOG_LOCK_KEY})`)
    const [row] = await tx.select({ n: count() }).from(jurisdictions)
    if ((row?.n ?? 0) > 0) return null
    const catalog = await loadDemoCatalog(tx)
    const clientKey = await createApiKey(tx, { name: 'demo', scopes: ['requests:write'] }, DEMO_ACTOR)
    const adminKey = await createApiKey(tx, { name: 'demo-admin', scopes: ['admin'] }, DEMO_ACTOR)
    return { catalog, clientKey, adminKey }
  })
}
