import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import {
  type FeedFormat,
  parseRequestFeed,
  planRequestFeed,
  type RequestFeedParams,
  requestFeedChunks,
} from '../../../domain/open-data/request-feed.js'
import { errorResponses } from '../../schemas/open311.js'
import { feedFormatParams, requestFeedQuery } from '../../schemas/open-data.js'
import { publicUrlWith } from '../../public-url.js'
import { FEED_CONTENT_TYPES, isNotModified, setPageValidators } from './conditional.js'

type Query = RequestFeedParams & { jurisdiction_id?: string; bom?: boolean; trailer?: boolean }

export default async function requestFeedRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: FeedFormat }; Querystring: Query }>(
    '/requests.:format',
    {
      schema: {
        tags: ['Open data'],
        summary: 'Every public request',
        description:
          'All public requests in (updated_datetime, service_request_id) order, as CSV, JSON or GeoJSON, streamed. ' +
          'With `limit`: one page, the next in `Link: <…>; rel="next"`. Columns and harvesting: docs/open-data.md.',
        params: feedFormatParams,
        querystring: requestFeedQuery,
        response: { 200: { description: 'The feed (text/csv, application/json or application/geo+json)', type: 'string' }, 304: { description: 'Not modified', type: 'null' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { format } = request.params
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const query = parseRequestFeed(request.query, jurisdiction)
      const plan = await planRequestFeed(app.readDb, query, app.db)
      reply.type(FEED_CONTENT_TYPES[format])
      if (plan.next) reply.header('link', `<${publicUrlWith(request, { cursor: plan.next })}>; rel="next"`)
      if (plan.etag) {
        setPageValidators(reply, `${format}.${request.query.bom ? 1 : 0}${request.query.trailer ? 1 : 0}.${plan.etag}`, plan.lastModifiedMicros)
        if (isNotModified(request, reply)) return reply.code(304).send()
      } else {
        // A whole feed changes all the time; an hour's staleness is fine for a bulk download.
        reply.header('cache-control', 'public, max-age=3600')
      }
      if (request.method === 'HEAD') return reply.send()
      return reply.send(Readable.from(requestFeedChunks(app.readDb, plan, format, { bom: request.query.bom, trailer: request.query.trailer })))
    },
  )
}
