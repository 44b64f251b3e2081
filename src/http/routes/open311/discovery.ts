import type { FastifyInstance } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { formatW3c } from '../../../open311/datetime.js'
import type { Format } from '../../../open311/spark.js'
import { CATALOG_ROUTE_OPTIONS, sendCatalogAnswer } from '../../catalog-answers.js'
import { errorResponses } from '../../schemas/errors.js'
import { discoveryDocument, formatParams, jurisdictionQuery } from '../../schemas/open311.js'

export default async function discoveryRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: Format }; Querystring: { jurisdiction_id?: string } }>(
    '/discovery.:format',
    {
      ...CATALOG_ROUTE_OPTIONS,
      schema: {
        tags: ['Open311'],
        summary: 'Service discovery',
        description: 'changeset moves whenever the service catalog changes. XML: `<discovery>…<endpoints><endpoint>…</endpoint></endpoints></discovery>`.',
        'x-xml-root': 'discovery',
        params: formatParams,
        querystring: jurisdictionQuery,
        response: { 200: discoveryDocument, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const changeset = formatW3c(jurisdiction.catalogChangedAt, 'UTC')
      const document = () => ({
        changeset,
        contact: jurisdiction.contact,
        key_service: jurisdiction.keyService,
        endpoints: [
          {
            specification: 'http://wiki.open311.org/GeoReport_v2',
            url: `${app.config.publicBaseUrl}/open311/v2`,
            changeset,
            type: 'production',
            formats: ['text/xml', 'application/json'],
          },
        ],
      })
      return sendCatalogAnswer(request, reply, {
        db: app.db,
        jurisdiction,
        // The jurisdiction's contact details are part of the document, not of the catalog version.
        document: `discovery\n${jurisdiction.contact}\n${jurisdiction.keyService}`,
        format: request.params.format,
        root: 'discovery',
        build: document,
      })
    },
  )
}
