import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import { Open311Error } from '../../../open311/errors.js'
import { sendNotFound } from '../../plugins/errors.js'
import discoveryRoutes from './discovery.js'
import { registerFormBodies, registerFormParsing } from './form-body.js'
import postRequestRoutes from './post-request.js'
import postUpdateRoutes from './post-update.js'
import requestReadRoutes from './requests.js'
import serviceRoutes from './services.js'
import tokenRoutes from './tokens.js'
import updateReadRoutes from './updates.js'
import { redactUrl } from '../../logging.js'

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const

/** Resources and the methods they answer; any other method gets 405 with Allow. */
const RESOURCES: [string, string[]][] = [
  ['/discovery.:format', ['GET', 'HEAD']],
  ['/services.:format', ['GET', 'HEAD']],
  ['/services/:service_code.:format', ['GET', 'HEAD']],
  ['/requests.:format', ['GET', 'HEAD', 'POST']],
  ['/requests/:service_request_id.:format', ['GET', 'HEAD']],
  ['/tokens/:token.:format', ['GET', 'HEAD']],
  ['/servicerequestupdates.:format', ['GET', 'HEAD', 'POST']],
]

/** The resources' paths without their `.json`/`.xml` suffix: what a client that forgot it asked for. */
const WITHOUT_SUFFIX = RESOURCES.map(([url]) => new RegExp(`^${url.replace('.:format', '').replace(/:[a-z_]+/g, '[^/.]+')}$`))

/** What a 404 under the prefix suggests: the same URL with a format, or where to start. */
function suggestion(prefix: string, url: string): string | undefined {
  const [path = '', query] = url.slice(prefix.length).split(/\?(.*)/s, 2)
  if (path === '' || path === '/') return `start at ${prefix}/discovery.json or ${prefix}/services.json`
  if (!WITHOUT_SUFFIX.some((pattern) => pattern.test(path))) return undefined
  // The query as a log line shows it: a key or an email in it is not echoed back.
  const rest = query ? redactUrl(`?${query}`) : ''
  return `GeoReport URLs end in their format: ${prefix}${path}.json${rest} or ${prefix}${path}.xml${rest}`
}

/** GeoReport v2 under /open311/v2. */
export default async function open311Routes(app: FastifyInstance) {
  await app.register(notFoundHandler)
  // Reads are public data: any origin may read them from a browser.
  await app.register(cors, { origin: '*', methods: ['GET', 'HEAD'], exposedHeaders: 'x-page, x-page-size, x-next-page-url, link, etag' })
  // The catalog documents carry ETags and ready-compressed bodies (once per catalog version and locale, see
  // catalog-answers.ts) and answer If-None-Match with 304. They are the most requested GETs and
  // take no body and no list filters, so they sit outside the form hooks: an empty
  // jurisdiction_id already counts as absent there. Request lists carry no ETag: hashing every
  // 100 KB answer cost ~13% of a radius search's CPU, for a conditional GET that clients of
  // lists rarely make.
  await app.register(discoveryRoutes)
  await app.register(serviceRoutes)
  await app.register(async (rest) => {
    await registerFormParsing(rest)
    await rest.register(requestReadRoutes)
    await rest.register(tokenRoutes)
    await rest.register(updateReadRoutes)
    await rest.register(async (forms) => {
      await registerFormBodies(forms)
      await forms.register(postRequestRoutes)
      await forms.register(postUpdateRoutes)
    })
    registerMethodNotAllowed(rest)
  })
}

/**
 * 404s under the prefix, with a suggestion. In a context of its own, whose body parsing (none:
 * a 404 reads no body, whatever its type) reaches no route: a POST of a form to `requests`
 * without its suffix gets the suggestion, not a 415 for a body nobody reads.
 */
async function notFoundHandler(app: FastifyInstance) {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _body, done) => done(null, undefined))
  app.setNotFoundHandler((request, reply) => sendNotFound(request, reply, suggestion(app.prefix, request.url)))
}

/** Any other method on a known resource: 405 with Allow (bodies of those are refused like any other). */
function registerMethodNotAllowed(app: FastifyInstance) {
  for (const [url, allowed] of RESOURCES) {
    const others = ALL_METHODS.filter((m) => !allowed.includes(m) && m !== 'OPTIONS')
    app.route({
      method: others,
      url,
      schema: { hide: true },
      handler: async (request, reply) => {
        reply.header('allow', allowed.join(', '))
        throw new Open311Error(405, `${request.method} is not allowed here; use ${allowed.filter((m) => m !== 'HEAD').join(' or ')}`)
      },
    })
  }
}
