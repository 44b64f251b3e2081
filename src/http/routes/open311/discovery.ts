import type { FastifyInstance } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { formatW3c } from '../../../open311/datetime.js'
import type { Format } from '../../../open311/spark.js'
import { CATALOG_ROUTE_OPTIONS, sendCatalogAnswer } from '../../catalog-answers.js'
import { answerLocale } from '../../locale.js'
import { errorResponses } from '../../schemas/errors.js'
import { discoveryDocument, formatParams, localisedQuery } from '../../schemas/open311.js'

export default async function discoveryRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: Format }; Querystring: { jurisdiction_id?: string; locale?: string } }>(
    '/discovery.:format',
    {
      ...CATALOG_ROUTE_OPTIONS,
      schema: {
        tags: ['Open311'],
        summary: 'Service discovery',
        description:
          'changeset moves whenever the service catalog changes; `locales` lists the languages it is served in, `default_locale` the one ' +
          'served when a client asks for none of them. XML: `<discovery>…<endpoints><endpoint>…</endpoint></endpoints></discovery>`.',
        'x-xml-root': 'discovery',
        params: formatParams,
        querystring: localisedQuery,
        response: { 200: discoveryDocument, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const locale = answerLocale(request, reply, jurisdiction)
      const changeset = formatW3c(jurisdiction.catalogChangedAt, 'UTC')
      const document = () => ({
        changeset,
        contact: jurisdiction.contact,
        key_service: jurisdiction.keyService,
        default_locale: jurisdiction.defaultLocale,
        locales: jurisdiction.locales,
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
        // The same text in every language (contact details are not translated), but Content-Language differs.
        locale,
        format: request.params.format,
        root: 'discovery',
        build: document,
      })
    },
  )
}
