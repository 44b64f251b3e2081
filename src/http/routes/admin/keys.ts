import type { FastifyInstance } from 'fastify'
import { type ApiKeyScope, createApiKey, listApiKeys, revokeApiKey } from '../../../domain/api-keys/api-keys.js'
import { grantableJurisdictions } from '../../../domain/api-keys/key-jurisdictions.js'
import type { RequestChannel } from '../../../domain/requests/channels.js'
import { notFound } from '../../../open311/errors.js'
import { adminErrors, apiKeySummary, createApiKeyBody, createdApiKey } from '../../schemas/admin.js'
import { auditActorOf } from '../../auth.js'
import { logAction } from '../../logging.js'

export default async function adminKeyRoutes(app: FastifyInstance) {
  app.get(
    '/keys',
    {
      schema: {
        tags: ['Admin'],
        summary: 'List API keys (never the keys themselves)',
        description: 'A key of some jurisdictions lists the keys acting only within them.',
        response: { 200: { type: 'array', items: apiKeySummary }, ...adminErrors },
      },
    },
    async (request) => listApiKeys(app.db, request.apiKey!),
  )

  app.post<{ Body: { name: string; scopes?: ApiKeyScope[]; default_channel?: RequestChannel; jurisdiction_ids?: string[] } }>(
    '/keys',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Create an API key; the raw key is in this response only',
        body: createApiKeyBody,
        response: { 201: createdApiKey, ...adminErrors },
      },
    },
    async (request, reply) => {
      const { name, scopes, default_channel: defaultChannel } = request.body
      const jurisdictionIds = grantableJurisdictions(request.apiKey!, request.body.jurisdiction_ids)
      const created = await createApiKey(app.db, { name, scopes, defaultChannel, jurisdictionIds }, auditActorOf(request))
      logAction(request, 'api key created', { apiKeyId: created.id, keyId: created.key_id, scopes: created.scopes })
      return reply.code(201).send(created)
    },
  )

  app.delete<{ Params: { id: number } }>(
    '/keys/:id',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Revoke an API key, effective immediately',
        description: 'A key of some jurisdictions revokes only keys acting within them; others are 404 to it.',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } },
        response: { 200: apiKeySummary, ...adminErrors },
      },
    },
    async (request) => {
      const revoked = await revokeApiKey(app.db, request.params.id, auditActorOf(request), request.apiKey!)
      if (!revoked) throw notFound(`API key ${request.params.id} does not exist`)
      logAction(request, 'api key revoked', { apiKeyId: revoked.id })
      return revoked
    },
  )
}
