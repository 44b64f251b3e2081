import { Ajv } from 'ajv'
import type { FastifyInstance } from 'fastify'
import { importCatalog, loadCatalogServices } from '../../../domain/catalog/catalog.js'
import { catalogSchema, catalogServiceSchema } from '../../../domain/catalog/catalog-schema.js'
import { parseCatalogJson } from '../../../domain/catalog/catalog-json.js'
import { validateCatalog } from '../../../domain/catalog/validate-catalog.js'
import { assertKeyActsIn } from '../../../domain/api-keys/key-jurisdictions.js'
import { auditActorOf, callerJurisdiction } from '../../auth.js'
import { adminErrors, importSummary } from '../../schemas/admin.js'

/** For the query string only (booleans come as text): this route's validator compiler is its own. */
const queryAjv = new Ajv({ coerceTypes: 'array', useDefaults: true })

const storedService = {
  type: 'object',
  properties: { ...catalogServiceSchema.properties, jurisdiction_id: { type: 'string' } },
} as const

export default async function adminCatalogRoutes(app: FastifyInstance) {
  // This plugin's own JSON parser (the other routes keep Fastify's): a syntax error in a catalog
  // says its line and column, as the CLI's does for a file.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    try {
      done(null, parseCatalogJson(text as string, 'request body'))
    } catch (err) {
      done(err as Error)
    }
  })

  app.put<{ Querystring: { add_jurisdiction: boolean } }>(
    '/catalog',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Import (upsert) a service catalog',
        description:
          'Same format and rules as `npm run cli -- services import <file>`. Idempotent: services absent from the body are left unchanged. ' +
          'An invalid catalog is refused whole with 400, one error per problem (field path, bad value, what is allowed). ' +
          'A catalog whose jurisdiction is new while the server already serves another is refused with 409 ' +
          '(code `new_jurisdiction`) unless `add_jurisdiction=true`: from then on every GeoReport request must name its jurisdiction_id. ' +
          'The answer then carries that in `warnings`.',
        querystring: {
          type: 'object',
          properties: {
            add_jurisdiction: {
              type: 'boolean',
              default: false,
              description: 'Confirms that this import may add a jurisdiction beside those already served',
            },
          },
        },
        body: { ...catalogSchema, $id: undefined },
        response: { 200: importSummary, 409: { $ref: 'Open311Errors#' }, ...adminErrors },
      },
      // The schema documents the body; validateCatalog checks it, strictly (no type coercion)
      // and with the same messages as the CLI. The query string is checked as usual.
      validatorCompiler: ({ schema, httpPart }) => (httpPart === 'body' ? () => true : queryAjv.compile(schema)),
    },
    async (request) => {
      const catalog = validateCatalog(request.body, 'request body')
      // A city's key imports its own catalogs; only a key of every jurisdiction adds one.
      assertKeyActsIn(request.apiKey!, catalog.jurisdiction.id)
      return importCatalog(
        app.db,
        catalog,
        { newJurisdiction: { confirmed: request.query.add_jurisdiction, howToConfirm: 'send the request again with ?add_jurisdiction=true' } },
        auditActorOf(request),
      )
    },
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
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      return loadCatalogServices(app.db, jurisdiction.id, { includeInactive: request.query.include_inactive })
    },
  )
}
