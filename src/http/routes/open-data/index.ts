import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import { parseRemovalFeed, REMOVAL_FEED } from '../../../domain/open-data/removal-feed.js'
import { parseRequestFeed, REQUEST_FEED } from '../../../domain/open-data/request-feed.js'
import { parseUpdateFeed, UPDATE_FEED } from '../../../domain/open-data/update-feed.js'
import { removalFeedQuery, requestFeedQuery, updateFeedQuery } from '../../schemas/open-data.js'
import catalogRoutes from './catalogs.js'
import { feedRoute } from './feed-route.js'
import statsRoutes from './stats.js'

/** The open-data feeds under /open-data/v1: public data, read by portals, harvesters and browsers. */
export default async function openDataRoutes(app: FastifyInstance) {
  await app.register(cors, { origin: '*', methods: ['GET', 'HEAD'], exposedHeaders: 'link, etag, last-modified, retry-after' })
  feedRoute(app, {
    url: '/requests.:format',
    source: REQUEST_FEED,
    summary: 'Every public request',
    description: 'All public requests in (updated_datetime, service_request_id) order, as CSV, JSON or GeoJSON, streamed.',
    querystring: requestFeedQuery,
    parse: parseRequestFeed,
  })
  feedRoute(app, {
    url: '/updates.:format',
    source: UPDATE_FEED,
    summary: 'The public status history',
    description: 'Every public history entry of every public request, in (updated_datetime, update_id) order, as CSV or JSON, streamed.',
    querystring: updateFeedQuery,
    parse: parseUpdateFeed,
  })
  feedRoute(app, {
    url: '/removed.:format',
    source: REMOVAL_FEED,
    summary: 'Requests that left public view',
    description: 'Ids of requests that were made non-public or deleted, with the time they left, in that order: delete them from your copy.',
    querystring: removalFeedQuery,
    parse: parseRemovalFeed,
  })
  await app.register(statsRoutes)
  await app.register(catalogRoutes)
}
