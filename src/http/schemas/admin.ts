import { API_KEY_SCOPES } from '../../domain/api-keys/api-keys.js'
import { errorResponse, errorResponsesFor } from './errors.js'
import { REQUEST_CHANNELS } from '../../domain/requests/channels.js'

const defaultChannel = {
  type: 'string',
  enum: REQUEST_CHANNELS,
  description: 'The channel of the requests this key submits without naming one (a mobile app: app; a chat desk: chat). Default app.',
} as const

export const apiKeySummary = {
  type: 'object',
  required: ['id', 'key_id', 'name', 'scopes', 'default_channel', 'created_at'],
  properties: {
    id: { type: 'integer' },
    key_id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: API_KEY_SCOPES } },
    default_channel: defaultChannel,
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { type: ['string', 'null'], format: 'date-time' },
    revoked_at: { type: ['string', 'null'], format: 'date-time' },
    department_id: { type: ['integer', 'null'], description: 'Set on a department’s inbound key' },
    jurisdiction_ids: {
      type: ['array', 'null'],
      items: { type: 'string' },
      description: 'The jurisdictions the key acts in; null: every one (docs/tenancy.md)',
    },
  },
} as const

export const createdApiKey = {
  type: 'object',
  required: [...apiKeySummary.required, 'key'],
  properties: {
    ...apiKeySummary.properties,
    key: { type: 'string', description: 'The raw key. Shown only in this response; store it now.' },
  },
} as const

export const createApiKeyBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    scopes: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: API_KEY_SCOPES },
      description:
        'Default requests:write. requests:set-channel (with requests:write) lets a desk or operator key name each request’s channel; ' +
        'admin:read reads reports, audit, deliveries, alerts and work orders, and changes nothing.',
    },
    default_channel: defaultChannel,
    jurisdiction_ids: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 253 },
      description:
        'The jurisdictions the new key acts in. Left out: those of the key creating it (every one for a key of every jurisdiction). ' +
        'A key can only give jurisdictions it acts in itself.',
    },
  },
} as const

export const importSummary = {
  type: 'object',
  required: ['jurisdiction', 'created', 'updated', 'unchanged'],
  properties: {
    jurisdiction: { type: 'string' },
    created: { type: 'array', items: { type: 'string' } },
    updated: { type: 'array', items: { type: 'string' } },
    unchanged: { type: 'array', items: { type: 'string' } },
    warnings: {
      type: 'array',
      items: { type: 'string' },
      description: 'Present when the import did something every client will notice: it added a jurisdiction beside others',
    },
  },
} as const

/** What every admin route can answer besides its own conflicts (409, where it has them). */
export const adminErrors = {
  ...errorResponsesFor(400, 404, 500, 503),
  403: errorResponse(
    403,
    'No bearer key with the admin scope; a read-only admin:read key on a route that changes something; or a jurisdiction the key does not act in',
    'a bearer API key with the "admin" scope is required',
  ),
}
