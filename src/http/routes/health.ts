import type { FastifyInstance } from 'fastify'
import type { Database } from '../../db/database.js'

const statusBody = { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } as const

export default async function healthRoutes(app: FastifyInstance, options: { database: Pick<Database, 'ping' | 'outages'> }) {
  app.get(
    '/healthz',
    { schema: { tags: ['Operations'], summary: 'Liveness: the process is serving', response: { 200: statusBody } } },
    async () => ({ status: 'ok' }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['Operations'],
        summary: 'Readiness: the database answers',
        response: { 200: statusBody, 503: statusBody },
      },
    },
    async (request, reply) => {
      try {
        await options.database.ping()
        return { status: 'ready' }
      } catch (err) {
        // During an outage the tracker logs it once, not on every probe of a load balancer.
        if (!options.database.outages.noteFailure(err)) request.log.warn({ err }, 'readiness check failed: database unreachable')
        return reply.code(503).send({ status: 'database unreachable' })
      }
    },
  )
}
