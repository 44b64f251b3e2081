import type { FastifyInstance, FastifyRequest } from 'fastify'
import { loadCatalogServices } from '../../../domain/catalog/catalog.js'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { findPublicRequests, findPublicUpdates } from '../../../domain/requests/find-requests.js'
import { parseRequestSearch, type RequestSearchParams } from '../../../domain/requests/search-params.js'
import { notFound } from '../../../open311/errors.js'
import { toRequest } from '../../../open311/request-representation.js'
import type { Format } from '../../../open311/spark.js'
import { sendOpen311 } from '../../reply.js'
import { errorResponses, formatParams, jurisdictionQuery, requestSearchQuery, serviceRequest } from '../../schemas/open311.js'
import { setPagingHeaders } from './paging.js'

type SearchQuery = RequestSearchParams & { jurisdiction_id?: string; extensions?: boolean }

export default async function requestReadRoutes(app: FastifyInstance) {
  /** Rows → wire shapes; with extensions, one extra query each for notes and attribute labels. */
  async function represent(jurisdictionId: string, timeZone: string, rows: Awaited<ReturnType<typeof findPublicRequests>>, extensions: boolean) {
    if (!extensions) return rows.map((row) => toRequest(row, timeZone))
    const [updates, services] = await Promise.all([
      findPublicUpdates(app.db, { jurisdictionId, requestIds: rows.map((r) => r.id) }),
      loadCatalogServices(app.db, jurisdictionId, { includeInactive: true, serviceCodes: [...new Set(rows.map((r) => r.service_code))] }),
    ])
    return rows.map((row) =>
      toRequest(row, timeZone, {
        notes: updates.filter((u) => u.request_id === row.id),
        attributeDefinitions: services.find((s) => s.id === row.service_id)?.attributes ?? [],
      }),
    )
  }

  app.get<{ Params: { format: Format }; Querystring: SearchQuery }>(
    '/requests.:format',
    {
      schema: {
        tags: ['Open311'],
        summary: 'GET Service Requests',
        description:
          'Public requests, newest first (oldest-updated first with updated_after/updated_before). Without dates: the last 90 days. ' +
          'Paging metadata is in the X-Page, X-Page-Size, X-Next-Page-URL and Link headers; the body stays spec-shaped.',
        params: formatParams,
        querystring: requestSearchQuery,
        response: { 200: { type: 'array', items: serviceRequest }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const { filter, paging } = parseRequestSearch(request.query, jurisdiction.id, jurisdiction.timeZone, new Date())
      const rows = await findPublicRequests(app.db, filter)
      const hasMore = rows.length > paging.pageSize
      setPagingHeaders(request as FastifyRequest, reply, paging, hasMore)
      const body = await represent(jurisdiction.id, jurisdiction.timeZone, rows.slice(0, paging.pageSize), request.query.extensions === true)
      return sendOpen311(reply, request.params.format, 'service_requests', body)
    },
  )

  app.get<{ Params: { format: Format; service_request_id: string }; Querystring: { jurisdiction_id?: string; extensions?: boolean } }>(
    '/requests/:service_request_id.:format',
    {
      schema: {
        tags: ['Open311'],
        summary: 'GET Service Request',
        description: 'One request, as a one-element list (Spark).',
        params: {
          type: 'object',
          required: ['service_request_id', 'format'],
          properties: { service_request_id: { type: 'string', maxLength: 64 }, ...formatParams.properties },
        },
        querystring: {
          type: 'object',
          properties: { ...jurisdictionQuery.properties, extensions: requestSearchQuery.properties.extensions },
        },
        response: { 200: { type: 'array', items: serviceRequest, minItems: 1, maxItems: 1 }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const rows = await findPublicRequests(app.db, {
        jurisdictionId: jurisdiction.id,
        serviceRequestIds: [request.params.service_request_id],
        order: 'requested_desc',
        limit: 1,
        offset: 0,
      })
      if (rows.length === 0) throw notFound(`service_request_id "${request.params.service_request_id}" does not exist`)
      const body = await represent(jurisdiction.id, jurisdiction.timeZone, rows, request.query.extensions === true)
      return sendOpen311(reply, request.params.format, 'service_requests', body)
    },
  )
}
