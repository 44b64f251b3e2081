import type { FastifyInstance } from 'fastify'
import { importCatalog, loadCatalogServices } from '../../../domain/catalog/catalog.js'
import { catalogSchema, catalogServiceSchema } from '../../../domain/catalog/catalog-schema.js'
import { validateCatalog } from '../../../domain/catalog/validate-catalog.js'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { adminErrors, importSummary } from '../../schemas/admin.js'

const storedService = {
  type: 'object',
  properties: { ...catalogServiceSchema.properties, jurisdiction_id: { type: 'string' } },
} as const

export default async function adminCatalogRoutes(app: FastifyInstance) {
  app.put(
    '/catalog',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Import (upsert) a service catalog',
        description:
          'Same format and rules as `npm run cli -- services import <file>`. Idempotent: services absent from the body are left unchanged.',
        body: { ...catalogSchema, $id: undefined },
        response: { 200: importSummary, ...adminErrors },
      },
      // The schema documents the body; validateCatalog checks it, strictly (no type coercion)
      // and with the same messages as the CLI.
      validatorCompiler: () => () => true,
    },
    async (request) => importCatalog(app.db, validateCatalog(request.body, 'request body')),
  )

  app.get<{ Querystring: { jurisdiction_id?: string; include_inactive?: boolean } }>(
    '/services',
    {
      schema: {
        tags: ['Admin'],
        summary: 'List the catalog, including inactive services',
        querystring: {
          type: 'object',
          properties: { jurisdiction_id: { type: 'string' }, include_inactive: { type: 'boolean', default: true } },
        },
        response: { 200: { type: 'array', items: storedService }, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      return loadCatalogServices(app.db, jurisdiction.id, { includeInactive: request.query.include_inactive })
    },
  )
}
