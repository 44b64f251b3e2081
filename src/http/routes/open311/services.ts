import type { FastifyInstance } from 'fastify'
import { activeService, activeServices } from '../../../domain/catalog/catalog-cache.js'
import { localiseService } from '../../../domain/catalog/translations.js'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { notFound } from '../../../open311/errors.js'
import { toServiceDefinition, toServiceListItem } from '../../../open311/representations.js'
import type { Format } from '../../../open311/spark.js'
import { CATALOG_ROUTE_OPTIONS, sendCatalogAnswer } from '../../catalog-answers.js'
import { answerLocale } from '../../locale.js'
import { errorResponses } from '../../schemas/errors.js'
import { formatParams, localisedQuery, serviceDefinition, serviceListItem } from '../../schemas/open311.js'

export default async function serviceRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: Format }; Querystring: { jurisdiction_id?: string; locale?: string } }>(
    '/services.:format',
    {
      ...CATALOG_ROUTE_OPTIONS,
      schema: {
        tags: ['Open311'],
        summary: 'GET Service List',
        description:
          'Active request types, their texts in the negotiated language (`locale`, then Accept-Language; Content-Language names it). ' +
          'XML: `<services><service>…</service></services>`.',
        'x-xml-root': 'services',
        params: formatParams,
        querystring: localisedQuery,
        response: { 200: { type: 'array', items: serviceListItem }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const locale = answerLocale(request, reply, jurisdiction)
      return sendCatalogAnswer(request, reply, {
        db: app.db,
        jurisdiction,
        document: 'services',
        locale,
        format: request.params.format,
        root: 'services',
        build: async () => (await activeServices(app.db, jurisdiction)).map((s) => toServiceListItem(localiseService(s, locale))),
      })
    },
  )

  app.get<{ Params: { format: Format; service_code: string }; Querystring: { jurisdiction_id?: string; locale?: string } }>(
    '/services/:service_code.:format',
    {
      ...CATALOG_ROUTE_OPTIONS,
      schema: {
        tags: ['Open311'],
        summary: 'GET Service Definition',
        description:
          'Attributes in display order; values only for list datatypes. A service without attributes has an empty list. ' +
          'Texts in the negotiated language, as for the service list.',
        'x-xml-root': 'service_definition',
        params: {
          type: 'object',
          required: ['service_code', 'format'],
          properties: { service_code: { type: 'string', maxLength: 64 }, ...formatParams.properties },
        },
        querystring: localisedQuery,
        response: { 200: serviceDefinition, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const serviceCode = request.params.service_code
      const locale = answerLocale(request, reply, jurisdiction)
      return sendCatalogAnswer(request, reply, {
        db: app.db,
        jurisdiction,
        document: `services/${serviceCode}`,
        locale,
        format: request.params.format,
        root: 'service_definition',
        build: async () => {
          const service = await activeService(app.db, jurisdiction, serviceCode)
          if (!service) throw notFound(`service_code "${serviceCode}" does not exist`)
          return toServiceDefinition(localiseService(service, locale))
        },
      })
    },
  )
}
