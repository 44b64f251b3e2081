import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { loadCatalogServices } from '../../../domain/catalog/catalog.js'
import { maySensitive, translatedServiceNames } from '../../../domain/catalog/catalog-cache.js'
import { localiseService } from '../../../domain/catalog/translations.js'
import { type Jurisdiction, resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { duplicateSearchOf, possibleDuplicatesOf } from '../../../domain/requests/duplicate-search.js'
import { type ExtendedRequestRow, findPublicRequests, findPublicUpdates, type RequestFilter } from '../../../domain/requests/find-requests.js'
import { parseRequestSearch, type RequestSearchParams } from '../../../domain/requests/search-params.js'
import { notFound } from '../../../open311/errors.js'
import { toExtendedRequest, toRequest } from '../../../open311/request-representation.js'
import type { Format } from '../../../open311/spark.js'
import { readerOf } from '../../auth.js'
import { answerLocale } from '../../locale.js'
import { sendOpen311 } from '../../reply.js'
import { errorResponses } from '../../schemas/errors.js'
import { formatParams, localisedQuery, requestSearchQuery, serviceRequest } from '../../schemas/open311.js'
import { OPTIONAL_ADMIN_SECURITY } from '../../schemas/security.js'
import { setPagingHeaders } from './paging.js'

/** What the OpenAPI document says of sensitive services (docs/open311.md, decision 23). */
const SENSITIVE_NOTE =
  'Requests of sensitive services (catalog privacy: sensitive) show a ~111 m grid cell centre for lat/long, no address, address_id, ' +
  'description, status_notes, media or free-text answers, and match lat/long/radius and bbox by that centre — unless the request ' +
  'carries Authorization: Bearer with an admin key of the jurisdiction.'

type SearchQuery = RequestSearchParams & { jurisdiction_id?: string; locale?: string; extensions?: boolean }

export default async function requestReadRoutes(app: FastifyInstance) {
  /**
   * Up to `pageSize` requests in their wire shape, and whether the filter's limit found more.
   * With extensions, one extra query each for notes and attribute labels; with `duplicates`
   * (GET of one request), one more for its possible duplicates when its service suggests them.
   * Service names and attribute texts are in the negotiated locale (Content-Language).
   */
  async function findPage(
    request: FastifyRequest,
    reply: FastifyReply,
    jurisdiction: Jurisdiction,
    search: RequestFilter,
    pageSize: number,
    extensions: boolean,
    duplicates = false,
  ) {
    const reader = await readerOf(request, reply, jurisdiction)
    const locale = answerLocale(request, reply, jurisdiction)
    const filter: RequestFilter = { ...search, reader, maySensitive: reader === 'public' && (await maySensitive(app.db, jurisdiction)) }
    // The default language's names are the rows' own: no lookup for most reads.
    const nameIn = locale === jurisdiction.defaultLocale ? undefined : await translatedServiceNames(app.db, jurisdiction)
    const localised = <T extends { service_id: number; service_name: string }>(row: T): T =>
      nameIn ? { ...row, service_name: nameIn(row.service_id, locale) ?? row.service_name } : row
    if (!extensions) {
      const rows = await findPublicRequests(app.db, filter, 'core')
      return { more: rows.length > pageSize, page: rows.slice(0, pageSize).map((row) => toRequest(localised(row), jurisdiction.timeZone)) }
    }
    const rows = await findPublicRequests(app.db, filter, 'extended')
    const page = rows.slice(0, pageSize).map(localised)
    const [updates, stored] = await Promise.all([
      findPublicUpdates(app.db, { jurisdictionId: jurisdiction.id, requestIds: page.map((r) => r.id), reader }),
      loadCatalogServices(app.db, jurisdiction.id, { includeInactive: true, serviceCodes: [...new Set(page.map((r) => r.service_code))] }),
    ])
    const services = stored.map((s) => localiseService(s, locale))
    const suggestions = async (row: ExtendedRequestRow) => {
      const service = services.find((s) => s.id === row.service_id)
      const found = service && duplicateSearchOf(service)
      // Live, for what is still worth suggesting: an open original of a suggest service, with a point.
      if (!duplicates || found?.policy !== 'suggest' || row.status !== 'open' || row.parent_service_request_id !== null || row.lat === null) return {}
      return { possibleDuplicates: await possibleDuplicatesOf(app.db, { id: row.id, jurisdictionId: jurisdiction.id, serviceId: row.service_id }, found, reader) }
    }
    return {
      more: rows.length > page.length,
      page: await Promise.all(
        page.map(async (row) =>
          toExtendedRequest(row, jurisdiction.timeZone, {
            notes: updates.filter((u) => u.request_id === row.id),
            locale,
            attributeDefinitions: services.find((s) => s.id === row.service_id)?.attributes ?? [],
            ...(await suggestions(row)),
          }),
        ),
      ),
    }
  }

  app.get<{ Params: { format: Format }; Querystring: SearchQuery }>(
    '/requests.:format',
    {
      schema: {
        tags: ['Open311'],
        summary: 'GET Service Requests',
        description:
          'Public requests, newest first (oldest-updated first with updated_after/updated_before). Without dates: the last 90 days. ' +
          'Paging metadata is in the X-Page, X-Page-Size, X-Next-Page-URL and Link headers; the body stays spec-shaped. ' +
          SENSITIVE_NOTE,
        'x-xml-root': 'service_requests',
        security: OPTIONAL_ADMIN_SECURITY,
        params: formatParams,
        querystring: requestSearchQuery,
        response: { 200: { type: 'array', items: serviceRequest }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const { filter, paging } = parseRequestSearch(request.query, jurisdiction.id, jurisdiction.timeZone, new Date())
      const { page, more } = await findPage(request, reply, jurisdiction, filter, paging.pageSize, request.query.extensions === true)
      setPagingHeaders(request as FastifyRequest, reply, paging, more)
      return sendOpen311(reply, request.params.format, 'service_requests', page)
    },
  )

  app.get<{ Params: { format: Format; service_request_id: string }; Querystring: { jurisdiction_id?: string; locale?: string; extensions?: boolean } }>(
    '/requests/:service_request_id.:format',
    {
      schema: {
        tags: ['Open311'],
        summary: 'GET Service Request',
        description:
          'One request, as a one-element list (Spark). With extensions=true, an open request of a service whose duplicate policy is suggest ' +
          `also lists possible_duplicates (computed now; docs/service-levels.md). ${SENSITIVE_NOTE}`,
        'x-xml-root': 'service_requests',
        security: OPTIONAL_ADMIN_SECURITY,
        params: {
          type: 'object',
          required: ['service_request_id', 'format'],
          properties: { service_request_id: { type: 'string', maxLength: 64 }, ...formatParams.properties },
        },
        querystring: {
          type: 'object',
          properties: { ...localisedQuery.properties, extensions: requestSearchQuery.properties.extensions },
        },
        response: { 200: { type: 'array', items: serviceRequest, minItems: 1, maxItems: 1 }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const filter: RequestFilter = {
        jurisdictionId: jurisdiction.id,
        serviceRequestIds: [request.params.service_request_id],
        order: 'requested_desc',
        limit: 1,
        offset: 0,
      }
      const { page } = await findPage(request, reply, jurisdiction, filter, 1, request.query.extensions === true, true)
      if (page.length === 0) throw notFound(`service_request_id "${request.params.service_request_id}" does not exist`)
      return sendOpen311(reply, request.params.format, 'service_requests', page)
    },
  )
}
