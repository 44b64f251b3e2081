/**
 * The process: read config, build the app, seed the demo when asked, listen, and close
 * gracefully on SIGINT/SIGTERM. The only file that listens.
 */
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './http/logging.js'
import { seedDemoIfEmpty } from './domain/demo/seed-demo.js'
import { describeStartupError } from './startup-errors.js'

const startedAt = performance.now()

async function main() {
  const config = loadConfig()
  // Asynchronous log writes: flushed when the app closes (a signal or a crash) and at exit.
  const { logger, flush } = createLogger(config.logLevel)
  process.once('exit', flush)
  const app = await buildApp({ config, logger, workers: true })
  // Its own lines (a timeout, a second signal or error) go through the app's logger, so an
  // error is serialised like any other (never a statement or its parameters).
  const graceLogger = { error: (err: unknown) => app.log.error({ err }, 'shutdown did not complete cleanly') }
  closeWithGrace({ delay: 10_000, logger: graceLogger }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an uncaught error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
    flush()
  })

  if (config.seedDemo) {
    const seeded = await seedDemoIfEmpty(app.db)
    if (seeded) {
      // warn, not info: the key is shown once and must reach the operator at any log level.
      app.log.warn(
        { jurisdiction: seeded.catalog.jurisdiction, services: seeded.catalog.created.length },
        `demo catalog loaded; demo API key for POST requests (shown once): ${seeded.apiKey.key}`,
      )
    }
  }

  await app.listen({ port: config.port, host: config.host })
  app.log.info(
    { baseUrl: config.publicBaseUrl, startupMs: Math.round(performance.now() - startedAt) },
    `open311-server ready: ${config.publicBaseUrl}/open311/v2/services.json — API docs at ${config.publicBaseUrl}/docs`,
  )
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : describeStartupError(err)
  process.stderr.write(`open311-server failed to start: ${message}\n`)
  process.exit(1)
})
