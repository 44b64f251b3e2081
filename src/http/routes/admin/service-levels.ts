import type { FastifyInstance } from 'fastify'
import { catalogServiceSchema } from '../../../domain/catalog/catalog-schema.js'
import { findDepartment } from '../../../domain/departments/departments.js'
import { type DepartmentServiceLevel, listDepartmentServiceLevels, setDepartmentServiceLevels } from '../../../domain/service-levels/department-levels.js'
import { auditActorOf, callerJurisdiction } from '../../auth.js'
import { logAction } from '../../logging.js'
import { adminErrors } from '../../schemas/admin.js'
import { jurisdictionQuery } from '../../schemas/open311.js'

const { properties: levelProperties, ...levelShape } = catalogServiceSchema.properties.service_level
const departmentServiceLevel = {
  ...levelShape,
  required: ['service_code'],
  minProperties: 2,
  maxProperties: 2,
  properties: { service_code: { type: 'string', maxLength: 64 }, ...levelProperties },
} as const
const levels = {
  type: 'object',
  additionalProperties: false,
  required: ['service_levels'],
  properties: { service_levels: { type: 'array', maxItems: 5000, items: departmentServiceLevel } },
} as const
const codeParams = { type: 'object', required: ['code'], properties: { code: { type: 'string', maxLength: 64 } } } as const

/** A department's own deadlines per service (docs/service-levels.md). */
export default async function adminServiceLevelRoutes(app: FastifyInstance) {
  app.get<{ Params: { code: string }; Querystring: { jurisdiction_id?: string } }>(
    '/departments/:code/service-levels',
    {
      schema: {
        tags: ['Admin'],
        summary: "A department's own service levels, which replace the services' for its work orders",
        params: codeParams,
        querystring: jurisdictionQuery,
        response: { 200: levels, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const department = await findDepartment(app.db, jurisdiction.id, request.params.code)
      return { service_levels: await listDepartmentServiceLevels(app.db, department.id) }
    },
  )

  app.put<{ Params: { code: string }; Body: { service_levels: DepartmentServiceLevel[] }; Querystring: { jurisdiction_id?: string } }>(
    '/departments/:code/service-levels',
    {
      schema: {
        tags: ['Admin'],
        summary: "Replace a department's service levels",
        description:
          'Each entry: a service code and `hours` (clock time) or `business_days` (of the jurisdiction\'s calendar). ' +
          'Work orders opened from now on follow them; open ones keep the due date they have.',
        params: codeParams,
        querystring: jurisdictionQuery,
        body: levels,
        response: { 200: levels, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const department = await findDepartment(app.db, jurisdiction.id, request.params.code)
      const saved = await setDepartmentServiceLevels(app.db, jurisdiction.id, department, request.body.service_levels, auditActorOf(request))
      logAction(request, 'department service levels set', { department: department.code, count: saved.length })
      return { service_levels: saved }
    },
  )
}
