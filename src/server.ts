/**
 * The process: read config, build the app, seed the demo when asked, listen, and close
 * gracefully on SIGINT/SIGTERM. The only file that listens.
 */
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { seedDemoIfEmpty } from './domain/demo/seed-demo.js'
import { describeStartupError } from './startup-errors.js'

const startedAt = performance.now()

async function main() {
  const config = loadConfig()
  const app = await buildApp({ config, workers: true })
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an uncaught error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
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
