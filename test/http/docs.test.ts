import { readFile } from 'node:fs/promises'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const { app } = await buildTestApp(t)

t.test('/docs renders Swagger UI and serves the OpenAPI document', async (t) => {
  const page = await app.inject('/docs')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /swagger-ui/i, 'the Swagger UI page')
  const script = await app.inject('/docs/static/swagger-ui-bundle.js')
  t.equal(script.statusCode, 200, 'its assets are served')
  const json = await app.inject('/docs/json')
  t.equal(json.statusCode, 200)
  const document = json.json()
  t.equal(document.openapi, '3.1.0')
  for (const path of [
    '/open311/v2/discovery.{format}',
    '/open311/v2/services.{format}',
    '/open311/v2/services/{service_code}.{format}',
    '/open311/v2/requests.{format}',
    '/open311/v2/requests/{service_request_id}.{format}',
    '/open311/v2/tokens/{token}.{format}',
    '/open311/v2/servicerequestupdates.{format}',
    '/departments/v1/{department}/events',
  ]) {
    t.ok(document.paths[path], `${path} is documented`)
  }
  t.ok(document.paths['/open311/v2/requests.{format}'].post, 'POST requests is documented')
})

t.test('the committed openapi/openapi.json is the document the code serves', async (t) => {
  const committed = JSON.parse(await readFile(new URL('../../openapi/openapi.json', import.meta.url), 'utf8'))
  const served = (await app.inject('/docs/json')).json()
  t.same(Object.keys(committed.paths).sort(), Object.keys(served.paths).sort())
})

t.test('the document says what the server reads and sends', async (t) => {
  const document = (await app.inject('/docs/json')).json()
  t.same(Object.keys(document.components.securitySchemes).sort(), ['adminKey', 'apiKeyQuery', 'clientKey', 'metricsToken'])

  for (const path of ['/open311/v2/requests.{format}', '/open311/v2/servicerequestupdates.{format}']) {
    const post = document.paths[path].post
    t.same(Object.keys(post.requestBody.content), FORM_TYPES, `${path}: the forms it reads, urlencoded first`)
    t.same(post.security, [{ clientKey: [] }, { apiKeyQuery: [] }], `${path}: a client key in the header or the query`)
    t.ok(post.requestBody.content['multipart/form-data'].schema.properties.api_key, `${path}: api_key as a form field too`)
    for (const status of ['400', '403', '413', '415', '500', '503']) t.ok(post.responses[status], `${path} documents ${status}`)
  }
  const post = document.paths['/open311/v2/requests.{format}'].post
  t.ok(post.responses['429'], 'POST requests documents its rate limits')
  // @fastify/swagger turns patternProperties into additionalProperties; the description keeps the pattern.
  const attributes = post.requestBody.content['application/x-www-form-urlencoded'].schema.additionalProperties.description as string
  const [, pattern] = /pattern `([^`]+)`/.exec(attributes) ?? []
  for (const field of ['attribute[size]', 'attribute[surface][]']) t.match(field, new RegExp(pattern!, 'u'), `${field} is documented`)

  t.test('each GeoReport answer has a JSON and an XML example, errors included', async (t) => {
    for (const [path, item] of Object.entries<Record<string, Operation>>(document.paths)) {
      if (!path.startsWith('/open311/v2/')) continue
      for (const [method, operation] of Object.entries(item)) {
        t.notOk('x-xml-root' in operation, `${method} ${path}: the XML root is consumed`)
        for (const [status, response] of Object.entries(operation.responses)) {
          const json = response.content?.['application/json']
          const xml = response.content?.['text/xml']
          t.ok(json?.example !== undefined && typeof xml?.example === 'string', `${method} ${path} ${status}: JSON and XML examples`)
          if (Number(status) >= 400) t.match(xml?.example, `<errors><error><code>${status}</code><description>`, `${method} ${path} ${status}: the envelope`)
        }
      }
    }
    const list = document.paths['/open311/v2/requests.{format}'].get.responses['200'].content['text/xml'].example
    t.match(list, /^<\?xml version="1.0" encoding="utf-8"\?>\n<service_requests><request><service_request_id>100042</, 'the renderer’s own XML')
  })

  t.test('every admin operation asks for the admin key and says 403', async (t) => {
    for (const [path, item] of Object.entries<Record<string, Operation>>(document.paths)) {
      if (!path.startsWith('/admin/v1/')) continue
      for (const [method, operation] of Object.entries(item)) {
        t.same(operation.security, [{ adminKey: [] }], `${method} ${path}`)
        t.ok(operation.responses['403'], `${method} ${path}: 403`)
        if (operation.requestBody) t.ok(operation.responses['415'] && operation.responses['413'], `${method} ${path}: 413 and 415`)
      }
    }
  })

  t.test('no markup in descriptions, where Swagger UI would swallow it (code spans are shown as text)', async (t) => {
    const descriptions: string[] = []
    JSON.stringify(document, (key, value) => {
      if (key === 'description' && typeof value === 'string') descriptions.push(value)
      return value
    })
    t.ok(descriptions.length > 100)
    for (const text of descriptions) t.notMatch(text.replace(/`[^`]*`/g, ''), /<[a-z/!?]/i, text)
  })
})

const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data']

interface Operation {
  security?: unknown
  requestBody?: unknown
  responses: Record<string, { content?: Record<string, { example?: unknown }> }>
}
