/**
 * The process: check Node and the port, open and migrate the database (saying so on stderr
 * while the embedded one initialises), seed the demo when asked, listen, hand over the first
 * run's banner, serve local CLI commands on the embedded database, and close gracefully on
 * SIGINT/SIGTERM. The only file that listens.
 */
import './startup/supported-node.js'
import { existsSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { type CommandService, serveCommands } from './cli/command-service.js'
import { ConfigError, loadConfig } from './config.js'
import { configuredDatabase, type Database, embeddedDataDir, openDatabase } from './db/database.js'
import { type DemoSeed, seedDemoIfEmpty } from './domain/demo/seed-demo.js'
import { createLogger } from './http/logging.js'
import { firstRunBanner } from './startup/first-run-banner.js'
import { reservePort } from './startup/port-reservation.js'
import { startupProgress } from './startup/progress.js'
import { describeStartupError } from './startup-errors.js'

// Compiled (dist/server.js) or run from source by tsx: the banner names the CLI the same way.
const CLI = import.meta.url.endsWith('.js') ? 'node dist/cli/main.js' : 'npm run cli --'
const writeStderr = (text: string) => void process.stderr.write(text)

/** The demo seeded by this start: its keys exist nowhere else, so even a failed start hands them over. */
let seeded: DemoSeed | null = null

async function main() {
  const config = loadConfig()
  const embedded = !config.databaseUrl
  const progress = startupProgress(embedded ? writeStderr : null)
  // First, so a busy port fails in milliseconds, before the database opens or the demo is seeded.
  const port = await reservePort(config.port, config.host)
  // Asynchronous log writes: flushed when the app closes (a signal or a crash) and at exit.
  const { logger, flush } = createLogger(config.logLevel)
  process.once('exit', flush)

  const firstStart = embedded && !existsSync(`${embeddedDataDir(config.dataDir)}/PG_VERSION`)
  const database = await progress.step(
    firstStart
      ? `creating the embedded database in ${embeddedDataDir(config.dataDir)} (first start only)`
      : `opening the embedded database in ${embeddedDataDir(config.dataDir)}`,
    'embedded database open',
    () => openDatabase({ ...configuredDatabase(config), logger }),
  )
  let app: FastifyInstance | undefined
  let commands: CommandService | undefined
  // Its own lines (a timeout, a second signal or error) go through the logger, so an error is
  // serialised like any other (never a statement or its parameters).
  const graceLogger = { error: (err: unknown) => logger.error({ err }, 'shutdown did not complete cleanly') }
  closeWithGrace({ delay: 10_000, logger: graceLogger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an uncaught error')
    else logger.info({ signal }, 'shutting down')
    await commands?.close()
    // The app closes first (its workers and in-flight requests still use the database).
    await app?.close()
    await database.close()
    flush()
  })

  await progress.step(firstStart ? 'setting up PostGIS and the schema (first start only)' : 'applying migrations', 'database ready', () =>
    database.migrate(),
  )
  if (config.seedDemo) {
    seeded = await seedDemoIfEmpty(database.db)
    if (seeded) {
      // The keys are in the banner, never in a log line.
      logger.info(
        { jurisdiction: seeded.catalog.jurisdiction, services: seeded.catalog.created.length, keyIds: [seeded.clientKey.key_id, seeded.adminKey.key_id] },
        'demo city loaded with a client key and an admin key',
      )
    }
  }

  app = await buildApp({ config, database, logger, workers: true })
  // The CLI on this machine reaches the embedded database through this server while it runs;
  // ready before the port is, so a script that saw the server answer can run a command at once.
  if (embedded) commands = await serveCommands({ config, database, logger })
  await port.release()
  await app.listen({ port: config.port, host: config.host })
  // Since the process started (performance's time origin), module loading included.
  const startupMs = Math.round(performance.now())
  app.log.info(
    { baseUrl: config.publicBaseUrl, startupMs },
    `open311-server ready: ${config.publicBaseUrl}/open311/v2/services.json — API docs at ${config.publicBaseUrl}/docs`,
  )
  progress.line(`ready in ${(startupMs / 1000).toFixed(1)} s: ${config.publicBaseUrl}/open311/v2/services.json, API docs at ${config.publicBaseUrl}/docs`)
  if (seeded) writeStderr(firstRunBanner({ baseUrl: config.publicBaseUrl, seed: seeded, cli: CLI }))
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : describeStartupError(err)
  process.stderr.write(`open311-server failed to start: ${message}\n`)
  // The database keeps only the keys' hashes and will not seed again: the demo keys go out now or never.
  if (seeded) process.stderr.write(`the demo was seeded before the failure; its keys: client ${seeded.clientKey.key}, admin ${seeded.adminKey.key}\n`)
  process.exit(1)
})
