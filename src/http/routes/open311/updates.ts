import type { FastifyInstance } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { findPublicUpdates } from '../../../domain/requests/find-requests.js'
import { MAX_PAGE_SIZE, MAX_WINDOW_DAYS } from '../../../domain/requests/search-params.js'
import { parseW3c } from '../../../open311/datetime.js'
import { badRequest } from '../../../open311/errors.js'
import { toRequestUpdate } from '../../../open311/request-representation.js'
import type { Format } from '../../../open311/spark.js'
import { sendOpen311 } from '../../reply.js'
import { errorResponses, formatParams, jurisdictionQuery, requestUpdate } from '../../schemas/open311.js'

const DAY_MS = 86_400_000

export default async function updateReadRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: Format }; Querystring: { jurisdiction_id?: string; start_date?: string; end_date?: string } }>(
    '/servicerequestupdates.:format',
    {
      schema: {
        tags: ['Open311'],
        summary: 'GET Service Request Updates (mySociety extension)',
        description:
          'Public history entries in a window on their time: start_date inclusive, end_date exclusive, oldest first. ' +
          'Default: the last 24 hours; at most 90 days; at most 1000 updates (narrow the window for more).',
        params: formatParams,
        querystring: {
          type: 'object',
          properties: {
            ...jurisdictionQuery.properties,
            start_date: { type: 'string', description: 'W3C datetime, inclusive' },
            end_date: { type: 'string', description: 'W3C datetime, exclusive' },
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
      const updates = await findPublicUpdates(app.db, {
        jurisdictionId: jurisdiction.id,
        from: start,
        ...(end ? { before: end } : {}),
        limit: MAX_PAGE_SIZE,
      })
      return sendOpen311(
        reply,
        request.params.format,
        'service_request_updates',
        updates.map((u) => toRequestUpdate(u, jurisdiction.timeZone)),
      )
    },
  )
}
