/**
 * Times every request for /metrics (METRICS=on only; off, this plugin is not registered and
 * costs nothing). One onResponse hook (async, as every hook here: the callback form showed no
 * gain, docs/benchmarks.md) making one histogram observation: reply.elapsedTime is a clock read
 * from the start Fastify already recorded, and prom-client's observe checks three label values, joins them into a key, finds
 * that series and walks 13 bucket bounds — 1.7 µs (bench/request-metrics.ts, docs/operations.md),
 * well under 1% of a search or a POST, a few percent of the cached services.json at its peak
 * rate. The histogram's count is the request counter: nothing else is counted per request.
 *
 * The route label is the pattern the router matched (`/open311/v2/requests/:service_request_id.:format`),
 * never the URL: URLs carry ids and query strings (API keys too), and every distinct value
 * would be a new series.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type Metrics, UNMATCHED_ROUTE } from '../../metrics/metrics.js'

async function requestMetricsPlugin(app: FastifyInstance, options: { metrics: Metrics }) {
  const { metrics } = options
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime / 1000)
  })
}

export default fp(requestMetricsPlugin, { name: 'request-metrics' })
