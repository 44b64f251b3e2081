import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { type FeedFormat, type FeedQuery, type FeedSource, feedChunks, feedFormats, planFeed } from '../../../domain/open-data/keyset-feed.js'
import { publicUrlWith } from '../../public-url.js'
import { errorResponses } from '../../schemas/errors.js'
import { feedFormatParams } from '../../schemas/open-data.js'
import { FEED_CONTENT_TYPES, isNotModified, setPageValidators } from './conditional.js'

/** The parameters every feed takes (feedParams in the schemas); each feed adds its filters. */
interface FeedCommonQuery {
  jurisdiction_id?: string
  limit?: number
  cursor?: string
  bom?: boolean
  trailer?: boolean
}

export interface FeedRouteOptions<Filter, Query> {
  url: string
  source: FeedSource<Filter>
  summary: string
  description: string
  querystring: object
  parse: (query: Query, jurisdiction: { id: string; timeZone: string }) => FeedQuery<Filter>
}

/**
 * One feed's GET: parse (a 400 before any byte), plan (Link, validators, a 304 if they match),
 * read the first batch — so a failing database is still an error envelope, not a cut-off 200 —
 * then stream the rest from the read database, compressed by @fastify/compress when asked.
 */
export function feedRoute<Filter, Query>(app: FastifyInstance, options: FeedRouteOptions<Filter, Query>) {
  const formats = feedFormats(options.source as FeedSource<never>)
  app.get<{ Params: { format: FeedFormat }; Querystring: FeedCommonQuery }>(
    options.url,
    {
      schema: {
        tags: ['Open data'],
        summary: options.summary,
        description: `${options.description} With \`limit\`: one page, the next in \`Link: <…>; rel="next"\`. Columns and harvesting: docs/open-data.md.`,
        params: feedFormatParams(formats),
        querystring: options.querystring,
        response: {
          200: { description: `The feed (${formats.map((f) => FEED_CONTENT_TYPES[f].split(';')[0]).join(', ')})`, type: 'string' },
          304: { description: 'Not modified', type: 'null' },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { format } = request.params
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      // The schema (options.querystring) has checked the query against Query's fields.
      const query = options.parse(request.query as Query, jurisdiction)
      const plan = await planFeed(app.readDb, app.db, options.source, query)
      reply.type(FEED_CONTENT_TYPES[format])
      if (plan.next) reply.header('link', `<${publicUrlWith(request, { cursor: plan.next })}>; rel="next"`)
      if (plan.etag) {
        setPageValidators(reply, `${format}.${request.query.bom ? 1 : 0}${request.query.trailer ? 1 : 0}.${plan.etag}`, plan.horizonMicros)
        if (isNotModified(request, reply, plan.horizonMicros)) return reply.code(304).send()
      } else {
        // The whole dump changes all the time; an hour's staleness is fine for a bulk download.
        // A filtered pull (updated_after=…) keeps its URL until new data comes: never from a cache.
        reply.header('cache-control', query.whole ? 'public, max-age=3600' : 'no-cache')
      }
      if (request.method === 'HEAD') return reply.send()
      const rendering = {
        bom: request.query.bom === true,
        trailer: request.query.trailer === true,
        onStopped: (rowsRead: number) => request.log.warn({ rowsRead }, 'feed stopped before its end (client gone or a read failed); nothing more is read'),
      }
      const chunks = feedChunks(app.readDb, options.source, plan, format, rendering)
      const first = await chunks.next()
      return reply.send(Readable.from(continuing(first, chunks)))
    },
  )
}

/** The chunk already read, then the rest. */
async function* continuing(first: IteratorResult<string>, rest: AsyncGenerator<string>): AsyncGenerator<string> {
  if (first.done) return
  yield first.value
  yield* rest
}
