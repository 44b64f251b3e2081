/**
 * A department's own service levels: per service, a deadline that replaces the service's for
 * that department's work orders (Calgary's "work-completion deadlines redefined per
 * department"). Set as a whole list, so the admin API's PUT is idempotent.
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { departments, departmentServiceLevels, services } from '../../db/schema.js'
import type { ServiceLevel } from '../catalog/catalog-schema.js'
import { type AuditActor, changedFields, recordAudit } from '../audit/audit.js'
import { invalid } from '../errors.js'

export type DepartmentServiceLevel = { service_code: string } & ServiceLevel

/** Replaces the department's service levels with `levels`; new work orders follow them (open ones keep their due date). */
export async function setDepartmentServiceLevels(
  db: Db,
  jurisdictionId: string,
  department: { id: number; code: string },
  levels: DepartmentServiceLevel[],
  actor: AuditActor,
) {
  const departmentId = department.id
  const codes = levels.map((l) => l.service_code)
  const repeated = codes.find((code, i) => codes.indexOf(code) !== i)
  if (repeated) throw invalid(`service_levels: ${repeated} appears more than once`)
  return db.transaction(async (tx) => {
    // Two PUTs at once (two operators, two instances) would both delete, then both insert: one
    // waits here for the other's list to be written, then replaces it.
    await tx.select({ id: departments.id }).from(departments).where(eq(departments.id, departmentId)).for('update')
    const found = codes.length
      ? await tx
          .select({ id: services.id, code: services.serviceCode })
          .from(services)
          .where(and(eq(services.jurisdictionId, jurisdictionId), inArray(services.serviceCode, codes)))
      : []
    const ids = new Map(found.map((s) => [s.code, s.id]))
    const unknown = codes.filter((code) => !ids.has(code))
    if (unknown.length) throw invalid(`service_levels: no service ${unknown.join(', ')} in jurisdiction ${jurisdictionId}`)
    const before = await listDepartmentServiceLevels(tx, departmentId)
    await tx.delete(departmentServiceLevels).where(eq(departmentServiceLevels.departmentId, departmentId))
    if (levels.length) {
      await tx.insert(departmentServiceLevels).values(
        levels.map((l) => ({
          departmentId,
          serviceId: ids.get(l.service_code)!,
          slaHours: l.hours ?? null,
          slaBusinessDays: l.business_days ?? null,
          updatedAt: sql`now()`,
        })),
      )
    }
    const after = await listDepartmentServiceLevels(tx, departmentId)
    await recordAudit(tx, actor, {
      action: 'department.service_levels_set',
      entityType: 'department',
      entityId: department.code,
      jurisdictionId,
      changes: changedFields({ service_levels: before }, { service_levels: after }),
    })
    return after
  })
}

export async function listDepartmentServiceLevels(db: Db, departmentId: number): Promise<DepartmentServiceLevel[]> {
  const rows = await db
    .select({ code: services.serviceCode, hours: departmentServiceLevels.slaHours, businessDays: departmentServiceLevels.slaBusinessDays })
    .from(departmentServiceLevels)
    .innerJoin(services, eq(services.id, departmentServiceLevels.serviceId))
    .where(eq(departmentServiceLevels.departmentId, departmentId))
    .orderBy(asc(services.serviceCode))
  return rows.map((r) => (r.hours !== null ? { service_code: r.code, hours: r.hours } : { service_code: r.code, business_days: r.businessDays! }))
}
