import type { FastifyInstance } from 'fastify'
import { requireAdminKey } from '../../auth.js'
import { bodyErrorResponses } from '../../schemas/errors.js'
import { ADMIN_SECURITY } from '../../schemas/security.js'
import adminAuditRoutes from './audit.js'
import adminCatalogRoutes from './catalog.js'
import adminDepartmentRoutes from './departments.js'
import adminKeyRoutes from './keys.js'
import adminOperationRoutes from './operations.js'
import adminReportRoutes from './reports.js'
import adminRetentionRoutes from './retention.js'
import adminServiceLevelRoutes from './service-levels.js'
import adminTemplateRoutes from './templates.js'
import adminWorkOrderRoutes from './work-orders.js'

const READ_ONLY_NOTE = 'Open to read-only `admin:read` keys as well.'

/**
 * The operators' API under /admin/v1: every route needs a bearer key with the admin scope, or
 * on the read-only routes (`config: { adminRead: true }`) the admin:read scope; each resolves
 * its jurisdiction among the key's (callerJurisdiction, docs/tenancy.md).
 */
export default async function adminRoutes(app: FastifyInstance) {
  // onRequest: nobody gets a body parsed or validated before they are authenticated.
  app.addHook('onRequest', requireAdminKey)
  // The same requirement in the OpenAPI document, for every route here, so that Swagger UI's
  // "Authorize" sends the key; a route that reads a body also answers 413 and 415.
  app.addHook('onRoute', (route) => {
    if (!route.schema || route.schema.hide) return
    const bodyErrors = route.schema.body ? bodyErrorResponses('application/json') : {}
    const readOnly = (route.config as { adminRead?: boolean } | undefined)?.adminRead === true
    route.schema = {
      ...route.schema,
      ...(readOnly ? { description: [route.schema.description, READ_ONLY_NOTE].filter(Boolean).join(' ') } : {}),
      security: ADMIN_SECURITY,
      response: { ...bodyErrors, ...(route.schema.response as Record<string, unknown>) },
    }
  })
  await app.register(adminAuditRoutes)
  await app.register(adminCatalogRoutes)
  await app.register(adminKeyRoutes)
  await app.register(adminDepartmentRoutes)
  await app.register(adminOperationRoutes)
  await app.register(adminReportRoutes)
  await app.register(adminRetentionRoutes)
  await app.register(adminServiceLevelRoutes)
  await app.register(adminTemplateRoutes)
  await app.register(adminWorkOrderRoutes)
}
