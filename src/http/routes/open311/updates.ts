import type { FastifyInstance, FastifyRequest } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { findPublicUpdates } from '../../../domain/requests/find-requests.js'
import { MAX_WINDOW_DAYS, parsePaging } from '../../../domain/requests/search-params.js'
import { parseW3c } from '../../../open311/datetime.js'
import { badRequest } from '../../../open311/errors.js'
import { toRequestUpdate } from '../../../open311/request-representation.js'
import type { Format } from '../../../open311/spark.js'
import { readerOf } from '../../auth.js'
import { answerLocale } from '../../locale.js'
import { sendOpen311 } from '../../reply.js'
import { errorResponses } from '../../schemas/errors.js'
import { formatParams, localisedQuery, pagingQuery, requestUpdate } from '../../schemas/open311.js'
import { OPTIONAL_ADMIN_SECURITY } from '../../schemas/security.js'
import { setPagingHeaders } from './paging.js'

const DAY_MS = 86_400_000

export default async function updateReadRoutes(app: FastifyInstance) {
  app.get<{
    Params: { format: Format }
    Querystring: { jurisdiction_id?: string; locale?: string; start_date?: string; end_date?: string; page?: string; page_size?: string }
  }>(
    '/servicerequestupdates.:format',
    {
      schema: {
        tags: ['Open311'],
        summary: 'GET Service Request Updates (mySociety extension)',
        description:
          'Public history entries in a window on their time: start_date inclusive, end_date exclusive, oldest first. ' +
          'Default: the last 24 hours; at most 90 days. Paged like GET requests: page and page_size (at most 1000), and when more ' +
          'updates follow, X-Next-Page-URL and Link rel="next" headers; the body stays spec-shaped. ' +
          'Updates of requests of sensitive services have an empty description and no media, unless the request carries ' +
          'Authorization: Bearer with an admin key. A note made from a translated template is shown in the negotiated language ' +
          '(`locale`, then Accept-Language; Content-Language names it).',
        'x-xml-root': 'service_request_updates',
        security: OPTIONAL_ADMIN_SECURITY,
        params: formatParams,
        querystring: {
          type: 'object',
          properties: {
            ...localisedQuery.properties,
            start_date: { type: 'string', description: 'W3C datetime, inclusive' },
            end_date: { type: 'string', description: 'W3C datetime, exclusive' },
            ...pagingQuery,
            api_key: { type: 'string', description: 'Accepted and ignored: FixMyStreet sends it' },
          },
        },
        response: { 200: { type: 'array', items: requestUpdate }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const parse = (name: 'start_date' | 'end_date') => {
        const text = request.query[name]
        if (!text) return undefined
        const value = parseW3c(text, jurisdiction.timeZone)
        if (!value) throw badRequest(`${name}: must be a W3C datetime such as 2026-01-31T13:00:00Z`)
        return value
      }
      const end = parse('end_date')
      const start = parse('start_date') ?? new Date((end?.getTime() ?? Date.now()) - DAY_MS)
      if (end && end <= start) throw badRequest('end_date: must be later than start_date')
      if ((end?.getTime() ?? Date.now()) - start.getTime() > MAX_WINDOW_DAYS * DAY_MS) {
        throw badRequest(`end_date: a window may span at most ${MAX_WINDOW_DAYS} days`)
      }
      const paging = parsePaging(request.query)
      const reader = await readerOf(request, reply, jurisdiction)
      const locale = answerLocale(request, reply, jurisdiction)
      // One more than the page: whether another page follows, without counting.
      const rows = await findPublicUpdates(app.db, {
        jurisdictionId: jurisdiction.id,
        from: start,
        ...(end ? { before: end } : {}),
        limit: paging.pageSize + 1,
        offset: (paging.page - 1) * paging.pageSize,
        reader,
      })
      const updates = rows.slice(0, paging.pageSize)
      setPagingHeaders(request as FastifyRequest, reply, paging, rows.length > updates.length)
      return sendOpen311(
        reply,
        request.params.format,
        'service_request_updates',
        updates.map((u) => toRequestUpdate(u, jurisdiction.timeZone, locale)),
      )
    },
  )
}
