/**
 * The Open311 error list and the statuses it is sent with, as route schemas declare them. The
 * bodies are rendered by src/http/plugins/errors.ts as text, so these schemas never serialise
 * anything: they document, and each carries an example the OpenAPI document shows as JSON and,
 * on GeoReport routes, as XML (src/http/openapi-xml.ts).
 */
export const errorList = {
  $id: 'Open311Errors',
  type: 'array',
  description:
    'Open311 error list. JSON: `[{"code": 400, "description": "…"}]`; XML: ' +
    '`<errors><error><code>400</code><description>…</description></error></errors>`.',
  items: {
    type: 'object',
    required: ['code', 'description'],
    properties: { code: { type: ['integer', 'string'] }, description: { type: 'string' } },
  },
} as const

/** What each status means on this server, and one real message for the example. */
const STATUSES = {
  400: ['A parameter or field is missing or not valid; each error names it', 'service_code: is required'],
  401: ['The webhook signature does not verify', 'signature verification failed: no matching signature'],
  403: ['No key, or one that is not valid, revoked or without the scope this operation needs', 'api_key missing or not valid'],
  404: ['Unknown resource, id, service_code or jurisdiction_id, or a format suffix other than .json and .xml', 'service_code "potholes" does not exist'],
  409: ['The change conflicts with the current state; nothing was recorded', 'the request has open work orders: close them, or force with a reason'],
  413: ['The body is larger than BODY_LIMIT_BYTES (default 1 MiB); the connection is closed', 'request body is too large'],
  415: ['A Content-Type this operation does not read', 'Unsupported Media Type'],
  429: [
    'Too many POSTs in a minute from this client IP (RATE_LIMIT_POST_PER_IP) or with this key (RATE_LIMIT_POST_PER_KEY); retry after Retry-After seconds',
    'rate limit exceeded: at most 120 POSTs per minute; retry in 1 minute',
  ],
  500: ['A bug: the description carries the request id to quote (also in x-request-id)', 'internal server error; quote request id 4f1c2b7a-… when reporting it'],
  503: [
    'The database is unreachable, or this instance is shutting down: retry after Retry-After seconds',
    'the service is temporarily unavailable (database unreachable); retry later',
  ],
} as const

export type ErrorStatus = keyof typeof STATUSES

/**
 * One error response. `description` and `example` say what the status means on this operation
 * and what it answers, where that is more specific than the server-wide meaning.
 */
export function errorResponse(status: ErrorStatus, description?: string, example?: string) {
  const [meaning, message] = STATUSES[status]
  // allOf, not a bare $ref: @fastify/swagger drops every keyword beside a $ref, the example too.
  return { description: description ?? meaning, allOf: [{ $ref: 'Open311Errors#' }], examples: [[{ code: status, description: example ?? message }]] }
}

type ErrorResponses = Partial<Record<ErrorStatus, ReturnType<typeof errorResponse>>>

export function errorResponsesFor(...statuses: ErrorStatus[]): ErrorResponses {
  return Object.fromEntries(statuses.map((status) => [status, errorResponse(status)]))
}

/** What any route can answer: a bad parameter, an unknown resource, a bug, an outage. */
export const errorResponses = errorResponsesFor(400, 404, 500, 503)

/** What a route that reads a body adds: the body limit and the content types it reads. */
export const bodyErrorResponses = (readable: string): ErrorResponses => ({
  413: errorResponse(413),
  415: errorResponse(415, `The Content-Type is not ${readable}`),
})
