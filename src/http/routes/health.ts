import type { FastifyInstance } from 'fastify'
import type { Database } from '../../db/database.js'
import { withDeadline } from '../../shared/deadline.js'

const statusBody = { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } as const

const readinessBody = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    read_replica: {
      type: 'string',
      enum: ['ready', 'unreachable'],
      description:
        'Present when DATABASE_READ_URL is set. Informational: an unreachable replica fails the feeds that read from it (503), not readiness — the primary still serves everything else.',
    },
  },
  required: ['status'],
} as const

/**
 * A replica check waits no longer than this: a replica host that drops packets would otherwise
 * hold the probe for the pool's 10 s connect timeout, and a load balancer would give up on an
 * instance whose primary is fine.
 */
const REPLICA_CHECK_MS = 2_000

type Pingable = Pick<Database, 'ping' | 'outages'>

export default async function healthRoutes(app: FastifyInstance, options: { database: Pingable; readReplica?: Pingable }) {
  app.get(
    '/healthz',
    { schema: { tags: ['Operations'], summary: 'Liveness: the process is serving', response: { 200: statusBody } } },
    async () => ({ status: 'ok' }),
  )

  const checkReplica = async (replica: Pingable, log: FastifyInstance['log']): Promise<'ready' | 'unreachable'> => {
    try {
      await withDeadline(replica.ping(), REPLICA_CHECK_MS, 'read replica check')
      return 'ready'
    } catch (err) {
      // The replica's own tracker logs the outage once (as the read replica); anything else is worth a line.
      if (!replica.outages.noteFailure(err)) log.warn({ err }, 'readiness check: read replica failed')
      return 'unreachable'
    }
  }

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['Operations'],
        summary: 'Readiness: the database answers',
        description: 'Ready when the primary database answers; with a read replica configured, also says whether it answers.',
        response: { 200: readinessBody, 503: readinessBody },
      },
    },
    async (request, reply) => {
      // Side by side and capped: a slow replica delays the answer by REPLICA_CHECK_MS at most.
      const replica = options.readReplica ? checkReplica(options.readReplica, request.log) : undefined
      try {
        await options.database.ping()
        return { status: 'ready', ...(replica ? { read_replica: await replica } : {}) }
      } catch (err) {
        // During an outage the tracker logs it once, not on every probe of a load balancer.
        if (!options.database.outages.noteFailure(err)) request.log.warn({ err }, 'readiness check failed: database unreachable')
        return reply.code(503).send({ status: 'database unreachable', ...(replica ? { read_replica: await replica } : {}) })
      }
    },
  )
}
