/**
 * Departments (business units): registration, signing secrets and their rotation, the
 * inbound credential, and routing of services to departments.
 */
import { and, asc, eq, gt, isNull, or, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { departmentSecrets, departments, serviceRoutes, services } from '../../db/schema.js'
import { conflict, invalid, notFound } from '../errors.js'
import { createApiKey } from '../api-keys/api-keys.js'
import { type AuditActor, auditUrl, changedFields, maskedChange, recordAudit } from '../audit/audit.js'
import { validateStatusMap } from './status-map.js'

export type Department = typeof departments.$inferSelect

export interface DepartmentInput {
  jurisdictionId: string
  code: string
  name: string
  contact?: string
  webhookUrl?: string | null
  receivesContact?: boolean
  statusMap?: Record<string, string>
  enabled?: boolean
}

/** Seals signing secrets for storage and opens them again (with SECRETS_KEY). */
export interface SecretSealer {
  seal(plaintext: string): string
  open(sealed: string): string
}

/** What registering departments needs from the webhook layer (src/integrations/webhooks/context.ts provides it). */
export interface DepartmentDeps {
  /** Null when no SECRETS_KEY is configured: departments can then not be given secrets. */
  secretBox: SecretSealer | null
  /** Why deliveries may not go to `url` (a private address, a port not allowed, …), or null when they may. */
  refuseWebhookUrl(url: string): Promise<string | null>
  /** A new signing secret, in the form a department's verifier takes. */
  newSigningSecret(): string
}

function requireBox(deps: DepartmentDeps): SecretSealer {
  if (!deps.secretBox) throw invalid('SECRETS_KEY is not configured: department signing secrets cannot be stored')
  return deps.secretBox
}

async function checkUrl(url: string | null | undefined, deps: DepartmentDeps) {
  if (!url) return
  const refusal = await deps.refuseWebhookUrl(url)
  if (refusal) throw invalid(`webhook_url: ${refusal}`)
}

export interface CreatedDepartment {
  department: Department
  /** Shown once: the Standard Webhooks secret the department verifies our deliveries with (and signs its callbacks with). */
  signingSecret: string
  /** Shown once: the department's API key for POST servicerequestupdates. */
  inboundKey: string
}

/** What an audit entry says of a department: its settings (the webhook URL without credentials), never its secrets. */
const auditedDepartment = (d: Department) => ({
  name: d.name,
  contact: d.contact,
  webhook_url: auditUrl(d.webhookUrl),
  receives_contact: d.receivesContact,
  status_map: d.statusMap,
  enabled: d.enabled,
  failing_since: d.failingSince,
  disabled_reason: d.disabledReason,
})

const departmentEntry = (d: Department, action: string, changes: Record<string, { before: unknown; after: unknown }>) => ({
  action,
  entityType: 'department',
  entityId: d.code,
  jurisdictionId: d.jurisdictionId,
  changes,
})

export async function createDepartment(db: Db, deps: DepartmentDeps, input: DepartmentInput, actor: AuditActor): Promise<CreatedDepartment> {
  const box = requireBox(deps)
  const mapProblem = input.statusMap ? validateStatusMap(input.statusMap) : null
  if (mapProblem) throw invalid(mapProblem)
  await checkUrl(input.webhookUrl, deps)
  return db.transaction(async (tx) => {
    const [department] = await tx
      .insert(departments)
      .values({
        jurisdictionId: input.jurisdictionId,
        code: input.code,
        name: input.name,
        contact: input.contact ?? '',
        webhookUrl: input.webhookUrl ?? null,
        receivesContact: input.receivesContact ?? false,
        statusMap: input.statusMap ?? {},
        enabled: input.enabled ?? true,
      })
      // The unique key decides, so two registrations of one code at once cannot both pass a check.
      .onConflictDoNothing({ target: [departments.jurisdictionId, departments.code] })
      .returning()
    if (!department) throw conflict(`code: a department "${input.code}" already exists`)
    const signingSecret = deps.newSigningSecret()
    await tx.insert(departmentSecrets).values({ departmentId: department.id, ciphertext: box.seal(signingSecret) })
    const key = await createApiKey(tx, { name: `department:${input.code}`, scopes: ['department'], departmentId: department.id, jurisdictionIds: [department.jurisdictionId] }, actor)
    await recordAudit(
      tx,
      actor,
      departmentEntry(department, 'department.created', { ...changedFields(null, auditedDepartment(department)), signing_secret: maskedChange(null, 'set') }),
    )
    return { department, signingSecret, inboundKey: key.key }
  })
}

export async function updateDepartment(
  db: Db,
  deps: DepartmentDeps,
  department: Department,
  patch: Partial<Omit<DepartmentInput, 'jurisdictionId' | 'code'>>,
  actor: AuditActor,
): Promise<Department> {
  const mapProblem = patch.statusMap ? validateStatusMap(patch.statusMap) : null
  if (mapProblem) throw invalid(mapProblem)
  if (patch.webhookUrl !== undefined) await checkUrl(patch.webhookUrl, deps)
  return db.transaction(async (tx) => {
    // The row as it is now, locked, so the entry's "before" is what this update replaced (not the caller's older copy).
    const [current] = await tx.select().from(departments).where(eq(departments.id, department.id)).for('update')
    const [updated] = await tx
      .update(departments)
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.contact !== undefined ? { contact: patch.contact } : {}),
        ...(patch.webhookUrl !== undefined ? { webhookUrl: patch.webhookUrl } : {}),
        ...(patch.receivesContact !== undefined ? { receivesContact: patch.receivesContact } : {}),
        ...(patch.statusMap !== undefined ? { statusMap: patch.statusMap } : {}),
        // Re-enabling clears the failure run, so the endpoint gets a fresh N days.
        ...(patch.enabled !== undefined ? { enabled: patch.enabled, ...(patch.enabled ? { failingSince: null, disabledReason: null } : {}) } : {}),
        updatedAt: sql`now()`,
      })
      .where(eq(departments.id, department.id))
      .returning()
    await recordAudit(tx, actor, departmentEntry(updated!, 'department.updated', changedFields(auditedDepartment(current ?? department), auditedDepartment(updated!))))
    return updated!
  })
}

export async function findDepartment(db: Db, jurisdictionId: string, code: string): Promise<Department> {
  const [department] = await db
    .select()
    .from(departments)
    .where(and(eq(departments.jurisdictionId, jurisdictionId), eq(departments.code, code)))
  if (!department) throw notFound(`department "${code}" does not exist`)
  return department
}

export async function listDepartments(db: Db, jurisdictionId: string): Promise<Department[]> {
  return db.select().from(departments).where(eq(departments.jurisdictionId, jurisdictionId)).orderBy(asc(departments.code))
}

/**
 * Starts a rotation: a new secret signs from now on, and the current ones keep signing too
 * until the overlap ends, so a department can switch its verifier without missing a delivery.
 */
export async function rotateSecret(db: Db, deps: DepartmentDeps, department: Department, overlapHours: number, actor: AuditActor): Promise<string> {
  const box = requireBox(deps)
  const secret = deps.newSigningSecret()
  await db.transaction(async (tx) => {
    // Every secret still signing stops at the end of this overlap at the latest (one still in an
    // earlier, longer overlap is cut short too).
    await tx
      .update(departmentSecrets)
      .set({ expiresAt: sql`least(coalesce(${departmentSecrets.expiresAt}, 'infinity'), now() + make_interval(hours => ${overlapHours}))` })
      .where(and(eq(departmentSecrets.departmentId, department.id), or(isNull(departmentSecrets.expiresAt), gt(departmentSecrets.expiresAt, sql`now()`))))
    await tx.insert(departmentSecrets).values({ departmentId: department.id, ciphertext: box.seal(secret) })
    await recordAudit(
      tx,
      actor,
      departmentEntry(department, 'department.secret_rotated', {
        signing_secret: maskedChange('set', 'set'),
        secret_overlap_hours: { before: null, after: overlapHours },
      }),
    )
  })
  return secret
}

/** The secrets that sign (and verify) at `now`: the current one plus any still in their overlap. */
export async function liveSecrets(db: Db, secretBox: SecretSealer | null, departmentId: number, now: Date): Promise<string[]> {
  if (!secretBox) return []
  const rows = await db
    .select({ ciphertext: departmentSecrets.ciphertext })
    .from(departmentSecrets)
    .where(
      and(
        eq(departmentSecrets.departmentId, departmentId),
        or(isNull(departmentSecrets.expiresAt), gt(departmentSecrets.expiresAt, now)),
      ),
    )
    .orderBy(asc(departmentSecrets.id))
  return rows.map((r) => secretBox.open(r.ciphertext))
}

export interface RouteInput {
  department: string
  /** GeoJSON Polygon or MultiPolygon; absent for a default route. */
  area?: { type: 'Polygon' | 'MultiPolygon'; coordinates: unknown }
  area_name?: string
}

/**
 * What `PUT /admin/v1/services/{code}/routes` and `routes set --file` take: a list of routes, or,
 * like the CLI's `--department`, the departments' codes, each then a default route.
 */
export type RoutesDocument = RouteInput[] | { departments: string[] }

/** The two shapes, for an error that shows what was expected. */
export const ROUTES_DOCUMENT_SHAPE =
  'a list of routes, [{"department": "streets"}, {"department": "streets-north", "area_name": "Ward 1", "area": {"type": "Polygon", "coordinates": [...]}}], ' +
  'or {"departments": ["streets", "parks"]} (each a default route, without an area)'

export const routeInputs = (document: RoutesDocument): RouteInput[] =>
  Array.isArray(document) ? document : document.departments.map((department) => ({ department }))

/** Replaces a service's routes. At least one default route (without an area) is required. */
export async function setServiceRoutes(db: Db, jurisdictionId: string, serviceCode: string, routes: RouteInput[], actor: AuditActor) {
  if (!routes.some((r) => !r.area)) throw invalid('routes: at least one route without an area (the default) is required')
  return db.transaction(async (tx) => {
    const [service] = await tx
      .select({ id: services.id })
      .from(services)
      .where(and(eq(services.jurisdictionId, jurisdictionId), eq(services.serviceCode, serviceCode)))
    if (!service) throw notFound(`service_code "${serviceCode}" does not exist`)
    const before = await auditedRoutes(tx, service.id)
    await tx.delete(serviceRoutes).where(eq(serviceRoutes.serviceId, service.id))
    for (const [i, route] of routes.entries()) {
      const department = await findDepartment(tx, jurisdictionId, route.department)
      const area = route.area
        ? sql`ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(${JSON.stringify(route.area)}), 4326))::geography`
        : null
      if (route.area) {
        // A self-intersecting or unclosed ring would route silently wrong: refuse it by name.
        const [check] = await tx
          .transaction(async (sp) =>
            queryRows<{ valid: boolean; reason: string }>(
              sp,
              sql`select ST_IsValid(g) and not ST_IsEmpty(g) as valid, ST_IsValidReason(g) as reason
                  from (select ST_SetSRID(ST_GeomFromGeoJSON(${JSON.stringify(route.area)}), 4326) as g) x`,
            ),
          )
          .catch((err: Error) => [{ valid: false, reason: err.message.split('\n')[0] ?? 'unreadable' }])
        if (!check?.valid) throw invalid(`routes[${i}].area: not a valid polygon (${check?.reason})`)
      }
      await tx.execute(sql`insert into service_routes (service_id, department_id, area, area_name)
                           values (${service.id}, ${department.id}, ${area}, ${route.area_name ?? null})`)
    }
    await recordAudit(tx, actor, {
      action: 'service.routes_set',
      entityType: 'service',
      entityId: serviceCode,
      jurisdictionId,
      changes: changedFields({ routes: before }, { routes: await auditedRoutes(tx, service.id) }),
    })
    return listServiceRoutes(tx, service.id)
  })
}

/** A service's routes as an audit entry keeps them: each department, area name and area (GeoJSON, as the database normalised it). */
async function auditedRoutes(db: Db, serviceId: number) {
  const rows = await queryRows<{ department: string; area_name: string | null; area: string | null }>(
    db,
    sql`select d.code as department, r.area_name, ST_AsGeoJSON(r.area) as area
        from service_routes r join departments d on d.id = r.department_id
        where r.service_id = ${serviceId} order by r.id`,
  )
  return rows.map((r) => ({ department: r.department, area_name: r.area_name, area: r.area === null ? null : (JSON.parse(r.area) as unknown) }))
}

export async function listServiceRoutes(db: Db, serviceId: number) {
  return queryRows<{ department: string; area_name: string | null; has_area: boolean }>(
    db,
    sql`select d.code as department, r.area_name, r.area is not null as has_area
        from service_routes r join departments d on d.id = r.department_id
        where r.service_id = ${serviceId} order by r.id`,
  )
}
