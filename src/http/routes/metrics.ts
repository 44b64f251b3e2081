import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Metrics } from '../../metrics/metrics.js'
import { forbidden, notFound } from '../../open311/errors.js'
import { bearerToken } from '../auth.js'
import { errorResponses } from '../schemas/errors.js'

/** Compared as digests: equal lengths for timingSafeEqual, and no early exit that times the token's prefix. */
const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * GET /metrics for Prometheus. Registered whether or not metrics are on, so the API document
 * is the same for every configuration; off, it answers 404 saying how to turn it on. On, only
 * `Authorization: Bearer <METRICS_TOKEN>` reads it: a token from the configuration, not an API
 * key, so a scrape needs no database to be let in — the figures matter most when it is away.
 */
export default async function metricsRoutes(app: FastifyInstance, options: { metrics?: Metrics; token?: string }) {
  const expected = options.token ? digest(options.token) : undefined
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['Operations'],
        summary: 'Prometheus metrics',
        description:
          'The Prometheus text exposition format: requests by route and status with latency histograms, the outbox backlog and its oldest event, ' +
          'webhook deliveries by outcome, overdue work orders, database pools, the process. Off unless `METRICS=on`; then only with `Authorization: Bearer <METRICS_TOKEN>`. ' +
          'Each metric and example alert rules: docs/operations.md.',
        security: [{ metricsToken: [] }],
        response: {
          200: { description: 'The exposition (`text/plain; version=0.0.4`)', content: { 'text/plain': { schema: { type: 'string' } } } },
          403: { $ref: 'Open311Errors#', description: 'No bearer token, or not METRICS_TOKEN' },
          ...errorResponses,
          404: { $ref: 'Open311Errors#', description: 'Metrics are off (METRICS=off, the default)' },
        },
      },
    },
    async (request, reply) => {
      if (!options.metrics || !expected) throw notFound('metrics are off: set METRICS=on and METRICS_TOKEN to serve them')
      const offered = bearerToken(request)
      if (!offered || !timingSafeEqual(digest(offered), expected)) throw forbidden('a bearer token equal to METRICS_TOKEN is required')
      // Every scrape reads the present: no cache may answer one with an older one.
      reply.type(options.metrics.contentType).header('cache-control', 'no-store')
      return options.metrics.render()
    },
  )
}
