/**
 * Runs a unit of background work whenever a NOTIFY arrives on `channel`, and every
 * `intervalMs` in any case (notifications can be missed, e.g. across a reconnect). Work is
 * coordinated through the database (SKIP LOCKED), so every instance may run the same worker.
 */
import type { Database } from '../db/database.js'
import type { DatabaseLogger } from '../db/database.js'
import { quietDuringOutages } from '../db/outages.js'

export interface PeriodicWorker {
  /** Runs the work now and waits for it (tests use this to step the worker). */
  runOnce(): Promise<void>
  stop(): Promise<void>
}

export async function startPeriodicWorker(options: {
  name: string
  database: Database
  logger: DatabaseLogger
  channel?: string
  intervalMs: number
  /**
   * Returns how many items it handled; a full batch means "run again at once". `stopping` says
   * whether the instance is shutting down: long work checks it between its batches.
   */
  work: (stopping: () => boolean) => Promise<number>
  batchSize: number
}): Promise<PeriodicWorker> {
  // An outage is logged once by the database's outage tracker, not once per poll.
  const log = quietDuringOutages(options.logger, () => options.database.outages)
  let running: Promise<void> | null = null
  let again = false
  let stopped = false

  const run = (): Promise<void> => {
    if (running) {
      again = true
      return running
    }
    running = (async () => {
      try {
        do {
          again = false
          const handled = await options.work(() => stopped)
          if (handled >= options.batchSize) again = true
        } while (again && !stopped)
      } catch (err) {
        log.error({ err, worker: options.name }, 'background work failed; will retry')
      } finally {
        running = null
      }
    })()
    return running
  }

  const unlisten = options.channel ? await options.database.listen(options.channel, () => void run()) : async () => {}
  const timer = setInterval(() => void run(), options.intervalMs)
  timer.unref()
  void run()

  return {
    runOnce: run,
    async stop() {
      stopped = true
      clearInterval(timer)
      await unlisten()
      await running
    },
  }
}
