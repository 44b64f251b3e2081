/**
 * Rate limits on POSTs, per client IP and per API key. Counters live in the database, so
 * the limits hold across every instance behind a load balancer. A refusal is 429 with
 * Retry-After, in the Open311 error format (rendered by the errors plugin).
 */
import rateLimit, { type RateLimitOptions } from '@fastify/rate-limit'
import { sql } from 'drizzle-orm'
import type { FastifyInstance, onRequestAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { type Db, queryRows } from '../../db/database.js'

declare module 'fastify' {
  interface FastifyInstance {
    postRateLimits: { byIp: onRequestAsyncHookHandler; byApiKey: preHandlerAsyncHookHandler }
  }
}

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void

/** A fixed-window counter store for @fastify/rate-limit on top of our database. */
function databaseStore(getDb: () => Db) {
  return class DatabaseRateLimitStore {
    incr(key: string, callback: Callback, timeWindow: number) {
      const now = Date.now()
      const windowStart = now - (now % timeWindow)
      queryRows<{ hits: number }>(
        getDb(),
        sql`insert into rate_limit_counters (key, window_start, hits)
            values (${key}, ${new Date(windowStart).toISOString()}, 1)
            on conflict (key, window_start) do update set hits = rate_limit_counters.hits + 1
            returning hits`,
      ).then(
        ([row]) => {
          // Old windows are pruned by a small share of writers, so no extra job is needed.
          if (Math.random() < 0.01) {
            getDb()
              .execute(sql`delete from rate_limit_counters where window_start < ${new Date(now - 3_600_000).toISOString()}`)
              .catch(() => {})
          }
          callback(null, { current: Number(row!.hits), ttl: windowStart + timeWindow - now })
        },
        (err: Error) => callback(err),
      )
    }

    child() {
      return this
    }
  }
}

/**
 * One limiter per plugin registration: @fastify/rate-limit marks a request as limited once
 * any limiter of a registration has run, so two limits on one route need two registrations.
 */
async function limiter(app: FastifyInstance, options: RateLimitOptions) {
  let hook: ReturnType<FastifyInstance['rateLimit']> | undefined
  await app.register(async (scope) => {
    await scope.register(rateLimit, {
      global: false,
      store: databaseStore(() => app.db),
      // If the counter store fails, serve the request rather than refuse every client.
      skipOnError: true,
      errorResponseBuilder: (_request, context) =>
        Object.assign(
          new Error(`rate limit exceeded: at most ${context.max} POSTs per minute; retry in ${context.after}`),
          { statusCode: 429 },
        ),
    })
    hook = scope.rateLimit(options)
  })
  return hook!
}

async function rateLimitsPlugin(app: FastifyInstance) {
  const { perIpPerMinute, perKeyPerMinute } = app.config.rateLimits
  app.decorate('postRateLimits', {
    byIp: await limiter(app, { max: perIpPerMinute, timeWindow: 60_000, keyGenerator: (request) => `ip:${request.ip}` }),
    byApiKey: await limiter(app, {
      max: perKeyPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => `key:${request.apiKey?.id ?? 'none'}`,
    }),
  })
}

export default fp(rateLimitsPlugin, { name: 'rate-limits' })
