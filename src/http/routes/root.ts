import type { FastifyInstance } from 'fastify'
import { DATA_JSON } from '../../domain/open-data/catalog.js'
import { publicUrl } from '../public-url.js'

const signpost = {
  type: 'object',
  description: 'Where to go from here: every URL is absolute (built from PUBLIC_BASE_URL)',
  required: ['name', 'docs', 'openapi', 'discovery', 'services', 'open_data'],
  properties: {
    name: { type: 'string', description: 'What this server is' },
    docs: { type: 'string', description: 'API documentation for people (Swagger UI)' },
    openapi: { type: 'string', description: 'The OpenAPI 3.1 document' },
    discovery: { type: 'string', description: 'GeoReport v2 service discovery (JSON; .xml for XML)' },
    services: { type: 'string', description: 'GeoReport v2 service list, where clients start (JSON; .xml for XML)' },
    open_data: { type: 'string', description: 'The open-data catalog (DCAT-US data.json) listing the feeds' },
  },
} as const

/**
 * `GET /`: a signpost for whoever opens the bare address (a developer, a browser, a health
 * checker). Small JSON without a database read, so it costs nothing and never fails.
 */
export default async function rootRoutes(app: FastifyInstance) {
  app.get(
    '/',
    {
      schema: {
        tags: ['Operations'],
        summary: 'Where the API documentation, discovery and the service list are',
        response: { 200: signpost },
      },
    },
    async (request) => ({
      name: 'open311-server: Open311 GeoReport v2',
      docs: publicUrl(request, '/docs'),
      openapi: publicUrl(request, '/docs/json'),
      discovery: publicUrl(request, '/open311/v2/discovery.json'),
      services: publicUrl(request, '/open311/v2/services.json'),
      open_data: publicUrl(request, `/open-data/v1/${DATA_JSON}`),
    }),
  )
}
