import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import catalogRoutes from './catalogs.js'
import requestFeedRoutes from './requests.js'

/** The open-data feeds under /open-data/v1: public data, read by portals, harvesters and browsers. */
export default async function openDataRoutes(app: FastifyInstance) {
  await app.register(cors, { origin: '*', methods: ['GET', 'HEAD'], exposedHeaders: 'link, etag, last-modified' })
  await app.register(requestFeedRoutes)
  await app.register(catalogRoutes)
}
