/**
 * What GET /metrics reports, in the Prometheus text format (prom-client), from one registry per
 * app: prom-client's global registry would refuse a second app in the same process (tests build
 * several), and its figures would outlive the app that made them.
 *
 * Two kinds of figure, aggregated differently over instances:
 * - this process's own: the requests it served, the deliveries its dispatcher recorded, its
 *   database pools, Node's (CPU, memory, event loop, GC). Counters start at zero with the
 *   process, which rate() and increase() allow for. Sum them over instances.
 * - the shared state, read from the database at each scrape: the outbox backlog, overdue work. Every instance
 *   reads the same database and reports the same value: take max() over instances, never sum().
 *
 * Deliveries are counted where the dispatcher records each outcome, not derived from the outbox
 * table: a row keeps only its last attempt (the failures before a success leave nothing to
 * count), and delivered rows grow without bound, so counting them at every scrape would cost
 * more every day. What the table answers cheaply — what waits now — is the backlog.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Database, DatabaseLogger, PoolStats } from '../db/database.js'
import { quietDuringOutages } from '../db/outages.js'
import { DELIVERY_OUTCOMES, type DeliveryOutcome } from '../integrations/webhooks/dispatcher.js'
import { countOverdueWorkOrders } from '../domain/service-levels/overdue.js'
import { outboxBacklog } from '../outbox/outbox.js'
import { withDeadline } from '../shared/deadline.js'

/** A scrape waits no longer than this for the database: the process's own figures matter most when it is away. */
const SHARED_READ_MS = 2_000

/** Unmatched requests (404s for unknown URLs) share one route label: the raw URL would be a new series per URL. */
export const UNMATCHED_ROUTE = 'unmatched'

export interface Metrics {
  /** The exposition's content type (`text/plain; version=0.0.4`). */
  readonly contentType: string
  /** The whole exposition, the shared figures read from the database first. */
  render(): Promise<string>
  /** One finished request: its route pattern (never its URL), status and seconds since it arrived. */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void
  /** The dispatcher's `recorded` callback. */
  recordDeliveries(outcome: DeliveryOutcome, count: number): void
}

export interface MetricsOptions {
  database: Database
  readReplica?: Database
  logger: DatabaseLogger
}

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry })

  const requestDuration = new Histogram({
    name: 'open311_http_request_duration_seconds',
    help: 'Requests by method, route pattern and status: seconds from arrival to the end of the response',
    labelNames: ['method', 'route', 'status_code'] as const,
    // Up to 2 minutes: a full open-data export streams for tens of seconds.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers,
  })

  const deliveries = new Counter({
    name: 'open311_webhook_deliveries_total',
    help: "Webhook delivery attempts this instance's dispatcher recorded, by outcome (delivered, failed: retried later, dead_lettered: no attempt left, gone: 410, held)",
    labelNames: ['outcome'] as const,
    registers,
  })
  // Every outcome present from the start at 0, so rate() and ratios see a series before the first failure.
  for (const outcome of DELIVERY_OUTCOMES) deliveries.inc({ outcome }, 0)

  const pools = [{ name: 'primary', database: options.database }, ...(options.readReplica ? [{ name: 'replica', database: options.readReplica }] : [])]
  const poolGauge = (name: string, help: string, read: (stats: PoolStats) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['database'] as const,
      registers,
      collect() {
        for (const pool of pools) {
          const value = read(pool.database.poolStats())
          if (value !== undefined) this.set({ database: pool.name }, value)
        }
      },
    })
  poolGauge('open311_database_pool_max_connections', 'Connections the pool may open (the embedded database: its one)', (s) => s.max)
  poolGauge('open311_database_pool_open_connections', 'Connections open now', (s) => s.open)
  poolGauge('open311_database_pool_idle_connections', 'Open connections not in use (PostgreSQL only)', (s) => s.idle)
  poolGauge('open311_database_pool_waiting_queries', 'Queries waiting for a connection (PostgreSQL only)', (s) => s.waiting)

  /*
   * The shared figures, read from the database at every scrape, each by its owner module in one
   * statement: the outbox's backlog, the service levels' overdue work.
   */
  const databaseUp = new Gauge({
    name: 'open311_database_up',
    help: 'Whether this scrape read the shared figures from the database (1) or could not within 2 s (0: they are NaN)',
    registers,
  })
  const pending = new Gauge({ name: 'open311_outbox_pending_events', help: 'Events waiting to be delivered (all instances: shared database)', registers })
  const oldestAge = new Gauge({
    name: 'open311_outbox_oldest_pending_age_seconds',
    help: 'Seconds since the oldest pending event was enqueued; 0 when none is pending (all instances: shared database)',
    registers,
  })
  const deadLettered = new Gauge({
    name: 'open311_outbox_dead_lettered_events',
    help: 'Events that used up their attempts and wait for a replay (all instances: shared database)',
    registers,
  })
  const overdue = new Gauge({
    name: 'open311_work_orders_overdue',
    help: 'Open work orders past their service-level due date, as the overdue sweep marked them (all instances: shared database)',
    registers,
  })

  // A read failing for want of a database is logged once, as the outage, not at every scrape.
  const log = quietDuringOutages(options.logger, () => options.database.outages)
  const readShared = async () => {
    try {
      const db = options.database.db
      const [backlog, overdueCount] = await withDeadline(
        Promise.all([outboxBacklog(db), countOverdueWorkOrders(db)]),
        SHARED_READ_MS,
        'reading the shared figures for /metrics',
      )
      overdue.set(overdueCount)
      pending.set(backlog.pending)
      oldestAge.set(backlog.oldestPendingAgeSeconds)
      deadLettered.set(backlog.deadLettered)
      databaseUp.set(1)
    } catch (err) {
      // NaN, not 0: an alert on the backlog must not read an unknown as "nothing waits".
      for (const gauge of [pending, oldestAge, deadLettered, overdue]) gauge.set(Number.NaN)
      databaseUp.set(0)
      log.warn({ err }, 'metrics: could not read the shared figures')
    }
  }
  // Scrapes that overlap (several Prometheus servers) share one read.
  let reading: Promise<void> | undefined

  return {
    contentType: registry.contentType,
    async render() {
      reading ??= readShared().finally(() => {
        reading = undefined
      })
      await reading
      return registry.metrics()
    },
    observeRequest(method, route, statusCode, seconds) {
      requestDuration.observe({ method, route, status_code: statusCode }, seconds)
    },
    recordDeliveries(outcome, count) {
      deliveries.inc({ outcome }, count)
    },
  }
}
