import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { buildApp } from '../../src/app.js'
import { type AppConfig, loadConfig } from '../../src/config.js'
import { type Database, openDatabase } from '../../src/db/database.js'
import { loggerOptions } from '../../src/http/logging.js'
import { createTestDatabase } from './database.js'

export interface TestApp {
  app: FastifyInstance
  database: Database
  /** Every log line the app has written so far, parsed. */
  logs: () => Record<string, unknown>[]
  /** The raw log output, for searching for leaked values. */
  rawLogs: () => string
  databaseUrl?: string
}

interface TestContext {
  teardown(fn: () => unknown): void
}

export const TEST_SECRETS_KEY = Buffer.alloc(32, 7).toString('base64')

export interface TestAppOptions {
  /** Run the background workers, as the server does (off by default so tests step them explicitly). */
  workers?: boolean
  /**
   * PostgreSQL only: the app connects to its test database through this URL instead (e.g. a
   * TCP proxy that a test can cut), with the app's own logger.
   */
  connectThrough?: (databaseUrl: string) => string | Promise<string>
  /**
   * PostgreSQL only: the app's DATABASE_READ_URL, given its test database's URL (the same
   * database on a streaming replica); the app opens and closes it as the server would.
   */
  readFrom?: (databaseUrl: string) => string | Promise<string>
}

export async function buildTestApp(t: TestContext, overrides: Partial<AppConfig> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const { database, url } = await createTestDatabase(t)
  if (options.readFrom && !url) throw new Error('buildTestApp: readFrom needs the PostgreSQL backend (DATABASE_URL)')
  const config: AppConfig = {
    ...loadConfig({
      LOG_LEVEL: 'info',
      PUBLIC_BASE_URL: 'http://open311.test',
      SECRETS_KEY: TEST_SECRETS_KEY,
      // Department receivers in tests are real HTTP servers on loopback.
      OUTBOUND_ALLOWLIST: '127.0.0.1/32',
      OUTBOUND_ALLOW_HTTP: 'true',
      // Receivers listen on random ports.
      OUTBOUND_ALLOWED_PORTS: '*',
    }),
    ...overrides,
    ...(options.readFrom && url ? { databaseReadUrl: await options.readFrom(url) } : {}),
  }
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(chunk.toString())
      done()
    },
  })
  const logger = pino(loggerOptions(config.logLevel), stream)
  let appDatabase = database
  if (options.connectThrough && url) {
    appDatabase = await openDatabase({ databaseUrl: await options.connectThrough(url), logger, poolSize: 4 })
    t.teardown(() => appDatabase.close())
  }
  const app = await buildApp({ config, database: appDatabase, logger, workers: options.workers ?? false })
  t.teardown(() => app.close())
  await app.ready()
  return {
    app,
    database: appDatabase,
    ...(url ? { databaseUrl: url } : {}),
    logs: () => parseLines(chunks.join('')),
    rawLogs: () => chunks.join(''),
  }
}

function parseLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}
