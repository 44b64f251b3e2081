/**
 * Rate limits on POSTs, per client IP and per API key. Counters live in the database, so
 * the limits hold across every instance behind a load balancer. A refusal is 429 with
 * Retry-After, in the Open311 error format (rendered by the errors plugin).
 */
import rateLimit, { type RateLimitOptions } from '@fastify/rate-limit'
import type { FastifyInstance, onRequestAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Db } from '../../db/database.js'
import { type DatabaseOutages, quietDuringOutages } from '../../db/outages.js'
import { SharedCounters } from '../../domain/rate-limits/shared-counters.js'

declare module 'fastify' {
  interface FastifyInstance {
    postRateLimits: { byIp: onRequestAsyncHookHandler; byApiKey: preHandlerAsyncHookHandler }
  }
}

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void

/** A fixed-window counter store for @fastify/rate-limit on top of the shared counters. */
function sharedStore(counters: SharedCounters) {
  return class SharedRateLimitStore {
    incr(key: string, callback: Callback, timeWindow: number) {
      counters.hit(key, timeWindow).then(
        (result) => callback(null, result),
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
async function limiter(app: FastifyInstance, counters: SharedCounters, options: RateLimitOptions) {
  let hook: ReturnType<FastifyInstance['rateLimit']> | undefined
  await app.register(async (scope) => {
    await scope.register(rateLimit, {
      global: false,
      store: sharedStore(counters),
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

async function rateLimitsPlugin(app: FastifyInstance, { outages }: { outages: () => DatabaseOutages }) {
  const { perIpPerMinute, perKeyPerMinute } = app.config.rateLimits
  const counters = new SharedCounters((): Db => app.db, quietDuringOutages(app.log, outages))
  // Counts still held locally reach the database before it closes (onClose runs in reverse).
  app.addHook('onClose', async () => counters.close())
  app.decorate('postRateLimits', {
    byIp: await limiter(app, counters, { max: perIpPerMinute, timeWindow: 60_000, keyGenerator: (request) => `ip:${request.ip}` }),
    byApiKey: await limiter(app, counters, {
      max: perKeyPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => `key:${request.apiKey?.id ?? 'none'}`,
    }),
  })
}

export default fp(rateLimitsPlugin, { name: 'rate-limits' })
