/**
 * `npx tsx bench/request-metrics.ts` — what METRICS=on adds to every request: the one histogram
 * observation of the onResponse hook (src/http/plugins/request-metrics.ts), timed alone over
 * the label sets of a mix of routes and statuses; the best of 5 rounds of 1,000,000 calls
 * (the least disturbed by other work on the machine). Figures: docs/operations.md, "Cost".
 */
import { performance } from 'node:perf_hooks'
import { openDatabase } from '../src/db/database.js'
import { createMetrics } from '../src/metrics/metrics.js'
import { quiet } from './setup.js'

const CALLS = 1_000_000
const ROUNDS = 5
const MIX: [method: string, route: string, status: number][] = [
  ['GET', '/open311/v2/services.:format', 200],
  ['GET', '/open311/v2/requests.:format', 200],
  ['GET', '/open311/v2/requests.:format', 400],
  ['GET', '/open311/v2/requests/:service_request_id.:format', 200],
  ['GET', '/open311/v2/requests/:service_request_id.:format', 404],
  ['POST', '/open311/v2/requests.:format', 200],
  ['POST', '/open311/v2/requests.:format', 403],
  ['GET', '/open-data/v1/requests.:format', 200],
  ['GET', '/healthz', 200],
  ['GET', 'unmatched', 404],
]

// In memory and never queried: observing touches no database.
const database = await openDatabase({ logger: quiet })
const metrics = createMetrics({ database, logger: quiet })
let best = Number.POSITIVE_INFINITY
for (let round = 0; round < ROUNDS; round++) {
  const started = performance.now()
  for (let i = 0; i < CALLS; i++) {
    const [method, route, status] = MIX[i % MIX.length]!
    metrics.observeRequest(method, route, status, (i % 1000) / 10_000)
  }
  const nsPerCall = ((performance.now() - started) * 1e6) / CALLS
  console.log(`round ${round + 1}: ${nsPerCall.toFixed(0)} ns per observation`)
  best = Math.min(best, nsPerCall)
}
console.log(`best of ${ROUNDS}: ${best.toFixed(0)} ns per request (${MIX.length} label sets)`)
await database.close()
