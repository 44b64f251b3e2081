/**
 * OpenAPI 3.1 generated from the route schemas; `openapi/openapi.json` is this document,
 * committed and checked for staleness in CI. Swagger UI at /docs.
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

async function openapiPlugin(app: FastifyInstance, options: { serveUi: boolean }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'open311-server',
        version: '0.1.0',
        description:
          'Open311 GeoReport v2 (XML and JSON by URL suffix) with extensions, plus the operators\' admin API. ' +
          'Every error is an Open311 error list: JSON `[{"code","description"}]`, XML `<errors><error>…</error></errors>`.',
      },
      tags: [
        { name: 'Open311', description: 'GeoReport v2; `.xml` answers carry the same data with the spec element names' },
        { name: 'Admin', description: 'Operators: catalog and API keys. Bearer key with the admin scope.' },
        { name: 'Departments', description: 'Inbound progress from department systems (signed webhooks)' },
        { name: 'Operations', description: 'Health and readiness probes' },
      ],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key (o311_…)' } },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  })
  if (options.serveUi) await app.register(swaggerUi, { routePrefix: '/docs' })
}

export default fp(openapiPlugin, { name: 'openapi' })
