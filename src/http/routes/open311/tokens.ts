import type { FastifyInstance } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { findToken } from '../../../domain/requests/tokens.js'
import { badRequest, notFound } from '../../../open311/errors.js'
import type { Format } from '../../../open311/spark.js'
import { sendOpen311 } from '../../reply.js'
import { errorResponses } from '../../schemas/errors.js'
import { formatParams, jurisdictionQuery, tokenAnswer } from '../../schemas/open311.js'

export default async function tokenRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: Format; token: string }; Querystring: { jurisdiction_id?: string } }>(
    '/tokens/:token.:format',
    {
      schema: {
        tags: ['Open311'],
        summary: 'GET service_request_id from a token',
        description:
          'While the request awaits acceptance the answer holds only the token; once accepted, service_request_id too. ' +
          'Unknown token: 404. Refused during acceptance: 400 with the reason.',
        'x-xml-root': 'service_requests',
        params: {
          type: 'object',
          required: ['token', 'format'],
          properties: { token: { type: 'string', maxLength: 64 }, ...formatParams.properties },
        },
        querystring: jurisdictionQuery,
        response: { 200: { type: 'array', items: tokenAnswer }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const jurisdiction = await resolveJurisdiction(app.db, request.query.jurisdiction_id)
      const found = await findToken(app.db, jurisdiction.id, request.params.token)
      if (!found) throw notFound(`token "${request.params.token}" does not exist`)
      if (found.state === 'failed') throw badRequest(`token "${found.token}": the request was not accepted: ${found.failureReason ?? 'no reason given'}`)
      const answer = found.serviceRequestId ? { service_request_id: found.serviceRequestId, token: found.token } : { token: found.token }
      return sendOpen311(reply, request.params.format, 'service_requests', [answer])
    },
  )
}
