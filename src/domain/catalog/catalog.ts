/**
 * The service catalog: import (idempotent upsert) and reads. Plain functions over a Db, so the
 * CLI, the admin API and the demo seeder share one implementation.
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { jurisdictions, serviceAttributes, serviceRequests, services } from '../../db/schema.js'
import { type AuditActor, type AuditEntry, changedFields, recordAudit } from '../audit/audit.js'
import { conflict } from '../errors.js'
import { forgetJurisdictions } from '../jurisdictions.js'
import { type Catalog, type CatalogAttribute, type CatalogService, DEFAULT_CALENDAR, type DuplicateSettings, type ServiceLevel } from './catalog-schema.js'

/** Serialises catalog writers across processes; transaction-scoped, so it can never leak. */
export const CATALOG_LOCK_KEY = 311_002

export interface ImportSummary {
  jurisdiction: string
  created: string[]
  updated: string[]
  unchanged: string[]
  /** Present when the import did something an operator must know of (it added a jurisdiction beside others). */
  warnings?: string[]
}

export interface ImportOptions {
  /**
   * An import that adds a jurisdiction beside those already served turns jurisdiction_id from
   * optional into required for every GeoReport client. Operators' entry points (CLI, admin API)
   * pass whether the operator confirmed it and how one confirms (their own words: a flag, a
   * query parameter); unconfirmed, the import is refused and changes nothing. Absent (seeding,
   * tests), the import goes ahead and the summary still warns.
   */
  newJurisdiction?: { confirmed: boolean; howToConfirm: string }
}

/**
 * Upserts a validated catalog in one transaction; services absent from it are left as they are.
 * Each service created or changed, and the jurisdiction when its settings change, gets an audit
 * entry for `actor`, required: a caller that forgot to say who would otherwise be recorded as
 * the server (seeding, benchmarks and tests pass SERVER_ACTOR themselves).
 */
export async function importCatalog(db: Db, catalog: Catalog, options: ImportOptions, actor: AuditActor): Promise<ImportSummary> {
  const result = await db.transaction(async (tx) => {
    // Two imports at once (two operators, two instances seeding) would race on the unique keys.
    await tx.execute(sql`select pg_advisory_xact_lock(${CATALOG_LOCK_KEY})`)
    const j = catalog.jurisdiction
    const warnings = await checkNewJurisdiction(tx, j.id, options)
    const [jurisdictionBefore] = await tx.select().from(jurisdictions).where(eq(jurisdictions.id, j.id))
    const audit: AuditEntry[] = []
    const calendar = { ...DEFAULT_CALENDAR, ...j.calendar }
    const defaultLocale = j.default_locale ?? 'en'
    const locales = j.locales ?? [defaultLocale]
    const fields = {
      name: j.name,
      timeZone: j.time_zone,
      contact: j.contact,
      keyService: j.key_service,
      workingDays: [...calendar.working_days].sort(),
      opensAt: calendar.opens,
      closesAt: calendar.closes,
      holidays: [...calendar.holidays].sort(),
      // Like the calendar, the whole setting comes from the file: absent, reporters' data is kept.
      anonymiseAfterDays: j.retention?.anonymise_after_days ?? null,
      defaultLocale,
      locales,
    }
    await tx
      .insert(jurisdictions)
      .values({ id: j.id, ...fields })
      .onConflictDoUpdate({
        target: jurisdictions.id,
        set: { ...fields, updatedAt: sql`now()` },
        // Re-importing the same file must not touch the row (and so not move updated_at).
        setWhere: sql`(${jurisdictions.name}, ${jurisdictions.timeZone}, ${jurisdictions.contact}, ${jurisdictions.keyService},
                       ${jurisdictions.workingDays}, ${jurisdictions.opensAt}, ${jurisdictions.closesAt}, ${jurisdictions.holidays},
                       ${jurisdictions.anonymiseAfterDays}, ${jurisdictions.defaultLocale}, ${jurisdictions.locales})
          is distinct from (${j.name}, ${j.time_zone}, ${j.contact}, ${j.key_service}, ${sql.param(fields.workingDays)}::smallint[],
                            ${fields.opensAt}::time, ${fields.closesAt}::time, ${sql.param(fields.holidays)}::date[],
                            ${fields.anonymiseAfterDays}::integer, ${defaultLocale}, ${sql.param(locales)}::text[])`,
      })
    const [jurisdictionAfter] = await tx.select().from(jurisdictions).where(eq(jurisdictions.id, j.id))
    audit.push({
      action: jurisdictionBefore ? 'jurisdiction.updated' : 'jurisdiction.created',
      entityType: 'jurisdiction',
      entityId: j.id,
      jurisdictionId: j.id,
      changes: changedFields(jurisdictionBefore ? auditedJurisdiction(jurisdictionBefore) : null, auditedJurisdiction(jurisdictionAfter!)),
    })

    const existing = new Map((await loadCatalogServices(tx, j.id, { includeInactive: true })).map((s) => [s.service_code, s]))
    const summary: ImportSummary = { jurisdiction: j.id, created: [], updated: [], unchanged: [], ...(warnings.length ? { warnings } : {}) }
    for (const service of catalog.services) {
      const current = existing.get(service.service_code)
      if (current && sameService(current, service)) {
        summary.unchanged.push(service.service_code)
        continue
      }
      await writeService(tx, j.id, service, current?.id)
      audit.push({
        action: current ? 'service.updated' : 'service.created',
        entityType: 'service',
        entityId: service.service_code,
        jurisdictionId: j.id,
        changes: changedFields(current ? catalogFields(current) : null, catalogFields(service)),
      })
      if (current && current.privacy !== service.privacy) {
        // What the public sees of these requests changed: moving their updated_at (the trigger
        // of migration 0009 stamps every update) makes harvesters fetch them again, so a copy
        // taken before a service became sensitive is replaced by the generalised one. Their
        // history's notes are withheld or shown with them: the updates feed sends it again too.
        await tx.update(serviceRequests).set({ updatedAt: sql`default` }).where(eq(serviceRequests.serviceId, current.id))
        await tx.execute(sql`update request_updates set changed_at = default
                             where request_id in (select id from service_requests where service_id = ${current.id})`)
      }
      ;(current ? summary.updated : summary.created).push(service.service_code)
    }
    // The languages served change what every catalog answer says (and which ones exist), as a service change does.
    const languagesChanged =
      jurisdictionBefore !== undefined &&
      (jurisdictionBefore.defaultLocale !== defaultLocale || jurisdictionBefore.locales.join(',') !== locales.join(','))
    if (summary.created.length + summary.updated.length > 0 || languagesChanged) {
      // Strictly increasing, even within one millisecond: caches key on this value.
      await tx
        .update(jurisdictions)
        .set({ catalogChangedAt: sql`greatest(now(), ${jurisdictions.catalogChangedAt} + interval '1 millisecond')` })
        .where(eq(jurisdictions.id, j.id))
    }
    await recordAudit(tx, actor, audit)
    return summary
  })
  forgetJurisdictions(db)
  return result
}

/** A jurisdiction's settings as an audit entry keeps them (its times as text, as the catalog writes them). */
function auditedJurisdiction(row: typeof jurisdictions.$inferSelect) {
  return {
    name: row.name,
    time_zone: row.timeZone,
    contact: row.contact,
    key_service: row.keyService,
    working_days: row.workingDays,
    opens: row.opensAt,
    closes: row.closesAt,
    holidays: row.holidays,
    anonymise_after_days: row.anonymiseAfterDays,
    default_locale: row.defaultLocale,
    locales: row.locales,
  }
}

/** A service in catalog shape, as the file spells it: what an audit entry compares (ids are not the catalog's). */
function catalogFields(service: CatalogService | StoredService): Record<string, unknown> {
  const { id: _id, jurisdiction_id: _j, ...fields } = service as StoredService
  return fields
}

/** Under the catalog lock: refuses an unconfirmed new jurisdiction beside others, or says what a confirmed one means. */
async function checkNewJurisdiction(tx: Db, id: string, options: ImportOptions): Promise<string[]> {
  const served = (await tx.select({ id: jurisdictions.id }).from(jurisdictions).orderBy(asc(jurisdictions.id))).map((r) => r.id)
  if (served.length === 0 || served.includes(id)) return []
  const consequence =
    `once this server serves several jurisdictions, every GeoReport request must name its jurisdiction_id ` +
    `(one of ${[...served, id].sort().join(', ')}); requests without one are refused`
  if (options.newJurisdiction && !options.newJurisdiction.confirmed) {
    throw conflict([
      {
        code: 'new_jurisdiction',
        description: `the catalog adds jurisdiction "${id}" beside ${served.join(', ')}: ${consequence}. Nothing was imported; to add it, ${options.newJurisdiction.howToConfirm}`,
      },
    ])
  }
  return [`jurisdiction "${id}" was added beside ${served.join(', ')}: ${consequence}`]
}

/**
 * An attribute made non-public (or public) changes what the open-data feeds show of every
 * request that answered it, though no request row moves: those requests get a new updated_at,
 * so harvesters replace their copy — a withdrawn answer must not stay published downstream.
 */
async function restampRequestsWhosePublicAnswersChange(tx: Db, serviceId: number, service: CatalogService) {
  const before = await tx
    .select({ code: serviceAttributes.code })
    .from(serviceAttributes)
    .where(and(eq(serviceAttributes.serviceId, serviceId), eq(serviceAttributes.isPublic, true), eq(serviceAttributes.variable, true)))
  const wasPublic = new Set(before.map((a) => a.code))
  const isPublic = new Set(service.attributes.filter((a) => a.public && a.variable).map((a) => a.code))
  const changed = [...wasPublic].filter((c) => !isPublic.has(c)).concat([...isPublic].filter((c) => !wasPublic.has(c)))
  if (changed.length === 0) return
  await tx.execute(sql`update service_requests set updated_at = default
                       where service_id = ${serviceId} and attributes ?| ${sql.param(changed)}::text[]`)
}

async function writeService(tx: Db, jurisdictionId: string, service: CatalogService, id: number | undefined) {
  const fields = {
    serviceName: service.service_name,
    description: service.description,
    type: service.type,
    keywords: service.keywords,
    group: service.group,
    active: service.active,
    closeRule: service.close_rule,
    departmentIssuesReference: service.department_issues_reference,
    privacy: service.privacy,
    slaHours: service.service_level?.hours ?? null,
    slaBusinessDays: service.service_level?.business_days ?? null,
    duplicatePolicy: service.duplicates?.policy ?? 'off',
    duplicateRadiusM: service.duplicates?.radius_m ?? null,
    duplicateWindowDays: service.duplicates?.window_days ?? null,
    translations: service.translations ?? null,
  }
  let serviceId = id
  if (serviceId === undefined) {
    const [row] = await tx
      .insert(services)
      .values({ jurisdictionId, serviceCode: service.service_code, ...fields })
      .returning({ id: services.id })
    serviceId = row!.id
  } else {
    await tx.update(services).set({ ...fields, updatedAt: sql`now()` }).where(eq(services.id, serviceId))
    await restampRequestsWhosePublicAnswersChange(tx, serviceId, service)
    await tx.delete(serviceAttributes).where(eq(serviceAttributes.serviceId, serviceId))
  }
  if (service.attributes.length > 0) {
    await tx.insert(serviceAttributes).values(
      service.attributes.map((a) => ({
        serviceId: serviceId!,
        code: a.code,
        position: a.order!,
        variable: a.variable,
        datatype: a.datatype,
        required: a.required,
        datatypeDescription: a.datatype_description,
        description: a.description,
        values: a.values ?? null,
        translations: a.translations ?? null,
        isPublic: a.public,
      })),
    )
  }
}

export interface StoredService extends CatalogService {
  id: number
  jurisdiction_id: string
}

/** Services of a jurisdiction in catalog shape, attributes ordered; one query per table. */
export async function loadCatalogServices(
  db: Db,
  jurisdictionId: string,
  options: { includeInactive?: boolean; serviceCodes?: string[] } = {},
): Promise<StoredService[]> {
  const conditions = [eq(services.jurisdictionId, jurisdictionId)]
  if (!options.includeInactive) conditions.push(eq(services.active, true))
  if (options.serviceCodes) conditions.push(inArray(services.serviceCode, options.serviceCodes))
  const rows = await db
    .select()
    .from(services)
    .where(and(...conditions))
    .orderBy(asc(services.serviceCode))
  if (rows.length === 0) return []
  const attributeRows = await db
    .select()
    .from(serviceAttributes)
    .where(inArray(serviceAttributes.serviceId, rows.map((r) => r.id)))
    .orderBy(asc(serviceAttributes.serviceId), asc(serviceAttributes.position))
  const attributesByService = new Map<number, CatalogAttribute[]>()
  for (const a of attributeRows) {
    const list = attributesByService.get(a.serviceId) ?? []
    list.push({
      code: a.code,
      datatype: a.datatype,
      description: a.description,
      datatype_description: a.datatypeDescription,
      variable: a.variable,
      required: a.required,
      public: a.isPublic,
      order: a.position,
      ...(a.values ? { values: a.values } : {}),
      ...(a.translations ? { translations: a.translations } : {}),
    })
    attributesByService.set(a.serviceId, list)
  }
  return rows.map((r) => ({
    id: r.id,
    jurisdiction_id: r.jurisdictionId,
    service_code: r.serviceCode,
    service_name: r.serviceName,
    description: r.description,
    type: r.type,
    keywords: r.keywords,
    group: r.group,
    active: r.active,
    close_rule: r.closeRule,
    department_issues_reference: r.departmentIssuesReference,
    privacy: r.privacy,
    ...serviceLevelOf(r),
    ...duplicatesOf(r),
    attributes: attributesByService.get(r.id) ?? [],
    ...(r.translations ? { translations: r.translations } : {}),
  }))
}

/** The catalog's `service_level`, present only when the service has one (so files without it compare equal). */
function serviceLevelOf(row: { slaHours: number | null; slaBusinessDays: number | null }): { service_level?: ServiceLevel } {
  if (row.slaHours !== null) return { service_level: { hours: row.slaHours } }
  if (row.slaBusinessDays !== null) return { service_level: { business_days: row.slaBusinessDays } }
  return {}
}

/** The catalog's `duplicates`, present unless the service is off with nothing kept for later (as for service_level). */
function duplicatesOf(row: { duplicatePolicy: DuplicateSettings['policy']; duplicateRadiusM: number | null; duplicateWindowDays: number | null }): {
  duplicates?: DuplicateSettings
} {
  if (row.duplicatePolicy === 'off' && row.duplicateRadiusM === null && row.duplicateWindowDays === null) return {}
  return {
    duplicates: {
      policy: row.duplicatePolicy,
      ...(row.duplicateRadiusM !== null ? { radius_m: row.duplicateRadiusM } : {}),
      ...(row.duplicateWindowDays !== null ? { window_days: row.duplicateWindowDays } : {}),
    },
  }
}

function sameService(stored: StoredService, incoming: CatalogService): boolean {
  const { id: _id, jurisdiction_id: _j, ...storedFields } = stored
  return canonical(storedFields) === canonical(incoming)
}

/** JSON with sorted keys, so field order in a file never counts as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  )
}
