/**
 * How callers prove who they are, as the OpenAPI document states it (`components.securitySchemes`
 * and each operation's `security`), so that Swagger UI's "Authorize" sends what the server reads
 * (src/http/auth.ts). Two bearer schemes, not one: an operator tries client calls and admin calls
 * side by side, and each needs its own key in the same `Authorization` header.
 */
export const securitySchemes = {
  adminKey: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API key with the `admin` scope (`o311_…`), sent as `Authorization: Bearer`. Make one with ' +
      '`npm run cli -- keys create --name ops --scope admin`, or `POST /admin/v1/keys` with an admin key.',
  },
  clientKey: {
    type: 'http',
    scheme: 'bearer',
    description:
      'A client app’s key (`requests:write` scope), or a department’s inbound key for `POST servicerequestupdates`, ' +
      'sent as `Authorization: Bearer`.',
  },
  metricsToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'The METRICS_TOKEN of the configuration (not an API key), for GET /metrics',
  },
  apiKeyQuery: {
    type: 'apiKey',
    in: 'query',
    name: 'api_key',
    description:
      'The same key the GeoReport v2 way: `api_key` in the query string. The server also reads it as the `api_key` form ' +
      'field of the body; `Authorization: Bearer` wins when both are sent.',
  },
} as const

type SchemeName = keyof typeof securitySchemes

/** One requirement per alternative: an operation accepts any one of them. */
const anyOf = (...names: SchemeName[]) => names.map((name) => ({ [name]: [] as string[] }))

/** The admin API: every route (src/http/routes/admin/index.ts). */
export const ADMIN_SECURITY = anyOf('adminKey')

/** POST requests and POST servicerequestupdates: a key in the header, the query or the form. */
export const CLIENT_SECURITY = anyOf('clientKey', 'apiKeyQuery')

/**
 * GeoReport reads: no key needed; an admin key (header only) lets an operator see sensitive
 * requests as they are (`readerOf` in src/http/auth.ts). `{}` is OpenAPI's "or none".
 */
export const OPTIONAL_ADMIN_SECURITY = [{}, ...anyOf('adminKey')]
