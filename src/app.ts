/**
 * buildApp: the whole HTTP application, without listening. Tests call it with an injected
 * database and use `app.inject` or a real port; src/server.ts is the only caller that listens.
 */
import zlib from 'node:zlib'
import compress from '@fastify/compress'
import { memoizeAjvCompile, pooledSerializers } from './http/schema-compilers.js'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { AppConfig } from './config.js'
import { configuredDatabase, type Database, type Db, openDatabase } from './db/database.js'
import type { DatabaseOutages } from './db/outages.js'
import { clientErrorHandler } from './http/client-errors.js'
import { logController, loggerOptions, requestIdOptions } from './http/logging.js'
import { createWebhookContext, type WebhookContext } from './integrations/webhooks/context.js'
import { parseFormEncoded } from './http/form-encoding.js'
import errorsPlugin, { frameworkErrors, sendUnavailable } from './http/plugins/errors.js'
import inputTextPlugin from './http/plugins/input-text.js'
import openapiPlugin from './http/plugins/openapi.js'
import rateLimitsPlugin from './http/plugins/rate-limits.js'
import requestMetricsPlugin from './http/plugins/request-metrics.js'
import adminRoutes from './http/routes/admin/index.js'
import departmentInboundRoutes from './http/routes/departments/index.js'
import healthRoutes from './http/routes/health.js'
import mediaRoutes, { MEDIA_PREFIX } from './http/routes/media/index.js'
import metricsRoutes from './http/routes/metrics.js'
import open311Routes from './http/routes/open311/index.js'
import rootRoutes from './http/routes/root.js'
import openDataRoutes from './http/routes/open-data/index.js'
import { errorList } from './http/schemas/errors.js'
import { createMetrics, type Metrics } from './metrics/metrics.js'
import { startWorkers } from './workers/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig
    /** The database handle (a drizzle database); the one name routes and domain calls use. */
    db: Db
    /**
     * Where the open-data feeds read: the read replica (DATABASE_READ_URL) when
     * there is one, else the same handle as `db`. Never written through; it lags `db` by the
     * replication delay, so nothing that must see its own write reads here.
     */
    readDb: Db
    webhooks: WebhookContext
    /** What /metrics reports (src/metrics); null while METRICS is off. */
    metrics: Metrics | null
  }
}

export interface BuildAppOptions {
  config: AppConfig
  /** An open, migrated database. When absent, one is opened from the config, migrated, and closed with the app. */
  database?: Database
  /**
   * An open read replica of `database` (tests inject a real streaming replica). When absent and
   * DATABASE_READ_URL is set, one is opened from it — never migrated: a replica is read-only and
   * gets the primary's schema by replication — and closed with the app; otherwise reads use `database`.
   */
  readDatabase?: Database
  /** A pino logger to use instead of one built from the config (tests capture output this way). */
  logger?: FastifyBaseLogger
  /** Run the background workers (token acceptance, and later webhook delivery) in this instance. */
  workers?: boolean
}

export async function buildApp({ config, database, readDatabase, logger, workers = false }: BuildAppOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: loggerOptions(config.logLevel) }),
    ...requestIdOptions,
    logController,
    clientErrorHandler,
    frameworkErrors,
    // Query strings decode like form bodies: invalid UTF-8 becomes U+FFFD, which the input check refuses.
    routerOptions: { querystringParser: parseFormEncoded },
    // Requests that arrive while the server drains are answered below, in the envelope.
    return503OnClosing: false,
    trustProxy: config.trustProxy,
    bodyLimit: config.bodyLimitBytes,
    ajv: {
      // Unknown query parameters are tolerated (real clients send extras); bodies that must be
      // strict say so with additionalProperties: false and are rejected, never silently trimmed.
      customOptions: { coerceTypes: 'array', removeAdditional: false, useDefaults: true, allErrors: false },
      onCreate: memoizeAjvCompile,
    },
    schemaController: pooledSerializers(),
  })

  const ownsDatabase = !database
  const db =
    database ??
    (await openDatabase({ ...configuredDatabase(config), logger: app.log }))
  if (ownsDatabase) {
    app.addHook('onClose', async () => db.close())
    await db.migrate()
  }
  const replica =
    readDatabase ??
    (config.databaseReadUrl
      ? await openDatabase({
          databaseUrl: config.databaseReadUrl,
          poolSize: config.databasePoolSize,
          preparedStatements: config.databasePreparedStatements,
          // Its outage warnings must say which database is away.
          logger: app.log.child({ database: 'read replica' }),
        })
      : undefined)
  if (replica && !readDatabase) app.addHook('onClose', async () => replica.close())
  // A failed statement does not say which handle it went through: both trackers check theirs,
  // and only the one that is really unreachable logs an outage.
  const outages = (): DatabaseOutages =>
    replica
      ? {
          noteFailure: (err) => [db.outages.noteFailure(err), replica.outages.noteFailure(err)].some(Boolean),
          stop: () => {},
        }
      : db.outages

  const webhooks = await createWebhookContext(config)
  app.addHook('onClose', async () => webhooks.agent.close())
  app.decorate('config', config)
  app.decorate('webhooks', webhooks)
  // A getter: nothing touches the database until a request does (OpenAPI generation relies on it).
  app.decorate('db', { getter: () => db.db })
  app.decorate('readDb', { getter: () => (replica ?? db).db })
  const metrics = config.metrics.enabled ? createMetrics({ database: db, ...(replica ? { readReplica: replica } : {}), logger: app.log }) : null
  app.decorate('metrics', metrics)
  app.addSchema(errorList)
  // Set when close() begins: requests arriving on kept-alive connections while in-flight ones
  // finish are told to go elsewhere (Fastify has already set Connection: close on them).
  let draining = false
  app.addHook('preClose', async () => {
    draining = true
  })
  // Set on arrival, so every answer carries it, errors included.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    if (draining) {
      reply.header('connection', 'close')
      return sendUnavailable(request, reply, 'the server is shutting down; retry the request')
    }
  })
  // Before every route, so each one is timed, the not-found answers too.
  if (metrics) await app.register(requestMetricsPlugin, { metrics })

  await app.register(errorsPlugin, { outages })
  await app.register(inputTextPlugin)
  // Brotli at quality 4: near-gzip CPU cost, smaller output; the default (11) costs ~10x CPU.
  await app.register(compress, { threshold: 1024, brotliOptions: { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } } })
  await app.register(rateLimitsPlugin, { outages: () => db.outages })
  await app.register(openapiPlugin, { serveUi: true })
  await app.register(healthRoutes, { database: db, ...(replica ? { readReplica: replica } : {}) })
  await app.register(rootRoutes)
  await app.register(metricsRoutes, { ...(metrics ? { metrics } : {}), ...(config.metrics.token ? { token: config.metrics.token } : {}) })
  await app.register(open311Routes, { prefix: '/open311/v2' })
  await app.register(openDataRoutes, { prefix: '/open-data/v1' })
  await app.register(mediaRoutes, { prefix: MEDIA_PREFIX })
  await app.register(adminRoutes, { prefix: '/admin/v1' })
  await app.register(departmentInboundRoutes, { prefix: '/departments/v1' })

  if (workers) {
    const running = await startWorkers(app, db)
    // preClose: workers stop while the database is still open (it closes in onClose).
    app.addHook('preClose', async () => {
      await Promise.all(running.map((w) => w.stop()))
    })
  }
  return app
}
