import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { type CatalogContext, DATA_JSON, DATAPACKAGE_JSON, dataPackage, dcatCatalog, readExtents, readSpatial } from '../../../domain/open-data/catalog.js'
import { catalogSettings } from '../../../domain/open-data/catalog-settings.js'
import { errorResponses } from '../../schemas/errors.js'
import { jurisdictionQuery } from '../../schemas/open311.js'
import { dataPackageResponse, dcatCatalogResponse } from '../../schemas/open-data.js'
import { publicUrl } from '../../public-url.js'

type Query = { jurisdiction_id?: string }

/** The data catalogs: what harvesters read first to find the feeds and what their columns mean. */
export default async function catalogRoutes(app: FastifyInstance) {
  /** The jurisdiction and settings, with URLs that keep the request's jurisdiction_id. */
  async function catalogContext(request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply): Promise<CatalogContext> {
    const requested = request.query.jurisdiction_id
    const jurisdiction = await resolveJurisdiction(app.db, requested)
    const settings = catalogSettings(app.config.openData, jurisdiction)
    // The catalogs change when a feed does; five minutes is fresh enough to decide on a harvest.
    reply.header('cache-control', 'public, max-age=300')
    const params: Record<string, string> = requested ? { jurisdiction_id: requested } : {}
    return { jurisdiction, settings, urlOf: (file) => publicUrl(request, `${app.prefix}/${file}`, params) }
  }

  app.get<{ Querystring: Query }>(
    `/${DATA_JSON}`,
    {
      schema: {
        tags: ['Open data'],
        summary: 'DCAT-US 1.1 catalog of the feeds',
        description:
          'A Project Open Data (DCAT-US 1.1) catalog for data.gov, CKAN and Socrata harvesters: one dataset per feed, ' +
          'a distribution per format, `modified` = the newest change in the feed. Licence, publisher and contact: OPEN_DATA_* settings.',
        querystring: jurisdictionQuery,
        response: { 200: dcatCatalogResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const context = await catalogContext(request, reply)
      const [extents, spatial] = await Promise.all([
        readExtents(app.readDb, app.db, context.jurisdiction.id),
        readSpatial(app.db, context.jurisdiction.id),
      ])
      return dcatCatalog(context, extents, spatial, new Date())
    },
  )

  app.get<{ Querystring: Query }>(
    `/${DATAPACKAGE_JSON}`,
    {
      schema: {
        tags: ['Open data'],
        summary: 'Frictionless Data Package of the CSV feeds',
        description: 'A Tabular Data Package (v1): one resource per CSV feed, with a Table Schema giving every column\'s name, type and meaning, and the primary key.',
        querystring: jurisdictionQuery,
        response: { 200: dataPackageResponse, ...errorResponses },
      },
    },
    async (request, reply) => dataPackage(await catalogContext(request, reply)),
  )
}
