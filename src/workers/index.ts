import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { FastifyInstance } from 'fastify'
import type { Database } from '../db/database.js'
import { OUTBOX_CHANNEL } from '../outbox/outbox.js'
import { deliverDue } from './department-deliveries.js'
import { acceptPendingTokens, TOKEN_PENDING_CHANNEL } from '../domain/requests/tokens.js'
import { refreshRollups } from '../domain/reports/rollups.js'
import { markOverdueWorkOrders } from '../domain/service-levels/overdue.js'
import { runRetention } from '../domain/retention/retention.js'
import { type PeriodicWorker, startPeriodicWorker } from './periodic.js'

const TOKEN_BATCH = 100

/** The background workers every instance runs; they coordinate through the database. */
export async function startWorkers(app: FastifyInstance, database: Database): Promise<PeriodicWorker[]> {
  const tokenAcceptor = await startPeriodicWorker({
    name: 'token-acceptor',
    database,
    logger: app.log,
    channel: TOKEN_PENDING_CHANNEL,
    intervalMs: 5_000,
    batchSize: TOKEN_BATCH,
    work: () => acceptPendingTokens(app.db, TOKEN_BATCH),
  })
  const deliveryBatch = 100
  const dispatcher = await startPeriodicWorker({
    name: 'webhook-dispatcher',
    database,
    logger: app.log,
    channel: OUTBOX_CHANNEL,
    // Retries come due with time, not with a notification: poll for them every second.
    intervalMs: 1_000,
    batchSize: deliveryBatch,
    work: () =>
      deliverDue({
        db: app.db,
        secretBox: app.webhooks.secretBox,
        agent: app.webhooks.agent,
        workerId: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
        timeoutMs: app.webhooks.timeoutMs,
        disableAfterDays: app.webhooks.disableAfterDays,
        batchSize: deliveryBatch,
        ...(app.metrics ? { recorded: app.metrics.recordDeliveries } : {}),
      }),
  })
  // Due dates pass with time, not with a notification: a sweep a minute (docs/service-levels.md).
  const overdueBatch = 100
  const overdueSweeper = await startPeriodicWorker({
    name: 'overdue-sweeper',
    database,
    logger: app.log,
    intervalMs: 60_000,
    batchSize: overdueBatch,
    work: () => markOverdueWorkOrders(app.db, { batchSize: overdueBatch }),
  })
  // Reports recompute pending rollup cells before they answer; this keeps the backlog of cells
  // small between reports, so none of them pays for a busy day's worth (docs/reports.md).
  // Without waiting: while another instance refreshes, this one skips its turn.
  const rollupRefresher = await startPeriodicWorker({
    name: 'report-rollups',
    database,
    logger: app.log,
    intervalMs: 30_000,
    // refreshRollups works through every pending cell itself.
    batchSize: Number.POSITIVE_INFINITY,
    work: () => refreshRollups(app.db, { wait: false }),
  })
  // Retention (docs/retention.md): periods are days and hours, so an hourly pass is plenty. Each
  // batch claims its rows with SKIP LOCKED: instances running it at once split the work.
  const retention = await startPeriodicWorker({
    name: 'retention',
    database,
    logger: app.log,
    intervalMs: 3_600_000,
    // runRetention works through every step to the end itself, or until the instance stops
    // (between two batches: a shutdown never waits for a long first run).
    batchSize: Number.POSITIVE_INFINITY,
    work: async (stopping) => {
      await runRetention(app.db, { periods: app.config.retention, shouldStop: stopping })
      return 0
    },
  })
  return [tokenAcceptor, dispatcher, overdueSweeper, rollupRefresher, retention]
}
