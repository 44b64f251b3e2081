/**
 * OpenAPI 3.1 generated from the route schemas; `openapi/openapi.json` is this document,
 * committed and checked for staleness in CI. Swagger UI at /docs, where "Try it out" sends what
 * the server reads: the GeoReport POSTs as forms (their schemas' `consumes`), keys by the
 * schemes in src/http/schemas/security.ts, and XML examples beside the JSON ones (openapi-xml.ts).
 * A test drives it in a real browser (test/http/docs-browser.test.ts).
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { addXmlVariants } from '../openapi-xml.js'
import { securitySchemes } from '../schemas/security.js'

async function openapiPlugin(app: FastifyInstance, options: { serveUi: boolean }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'open311-server',
        version: '0.1.0',
        description:
          'Open311 GeoReport v2 (XML and JSON by URL suffix) with extensions, plus the operators\' admin API. ' +
          'Every error is an Open311 error list: JSON `[{"code": 400, "description": "…"}]`, XML `<errors><error>…</error></errors>`. ' +
          'Keys: "Authorize" takes a client key (clientKey or apiKeyQuery) for the GeoReport POSTs and an admin key (adminKey) ' +
          'for the admin API; `npm run cli -- keys create` makes them.',
      },
      tags: [
        { name: 'Open311', description: 'GeoReport v2; `.xml` answers carry the same data with the spec element names' },
        { name: 'Admin', description: 'Operators: catalog, API keys, departments, deliveries. Bearer key with the admin scope.' },
        { name: 'Reports', description: 'Managers: volume, timeliness, backlog, duplicates and templates, from daily rollups (docs/reports.md). Admin scope.' },
        { name: 'Departments', description: 'Inbound progress from department systems (signed webhooks)' },
        { name: 'Operations', description: 'Health and readiness probes, Prometheus metrics' },
      ],
      components: { securitySchemes },
    },
    transformObject: (document) => ('openapiObject' in document ? addXmlVariants(document.openapiObject) : document.swaggerObject),
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  })
  if (options.serveUi) await app.register(swaggerUi, { routePrefix: '/docs' })
}

export default fp(openapiPlugin, { name: 'openapi' })
