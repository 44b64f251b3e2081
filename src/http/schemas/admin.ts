import { API_KEY_SCOPES } from '../../domain/api-keys/api-keys.js'

export const apiKeySummary = {
  type: 'object',
  required: ['id', 'key_id', 'name', 'scopes', 'created_at'],
  properties: {
    id: { type: 'integer' },
    key_id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: API_KEY_SCOPES } },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { type: ['string', 'null'], format: 'date-time' },
    revoked_at: { type: ['string', 'null'], format: 'date-time' },
    department_id: { type: ['integer', 'null'], description: 'Set on a department’s inbound key' },
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
    scopes: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: API_KEY_SCOPES } },
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
  },
} as const

export const adminErrors = {
  400: { $ref: 'Open311Errors#' },
  403: { $ref: 'Open311Errors#' },
  404: { $ref: 'Open311Errors#' },
} as const
