/**
 * What a newcomer hits first without the docs: the bare address, and GeoReport URLs without
 * their format suffix. Both answer with where to go instead.
 */
import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

// One database per test file; subtests share it and run in order.
const { app } = await buildTestApp(t)
await loadDemoCatalog(app.db)
const xml = new XMLParser({ isArray: (name) => name === 'error' })

t.test('GET / points at the docs, the OpenAPI document, discovery, the service list and the open data', async (t) => {
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const base = 'http://open311.test'
  t.same(res.json(), {
    name: 'open311-server: Open311 GeoReport v2',
    docs: `${base}/docs`,
    openapi: `${base}/docs/json`,
    discovery: `${base}/open311/v2/discovery.json`,
    services: `${base}/open311/v2/services.json`,
    open_data: `${base}/open-data/v1/data.json`,
  })
  // Every pointer leads somewhere on this server (data.json needs a contact address: its 404 names the setting).
  for (const [name, url] of Object.entries(res.json() as Record<string, string>)) {
    if (name === 'name') continue
    const followed = await app.inject(url.slice(base.length))
    t.ok([200, 302].includes(followed.statusCode) || (name === 'open_data' && followed.statusCode === 404), `${name}: ${url} answers ${followed.statusCode}`)
  }
  const openapi = (await app.inject('/docs/json')).json() as { paths: Record<string, { get?: { responses?: Record<string, unknown> } }> }
  t.ok(openapi.paths['/']?.get?.responses?.['200'], 'GET / is in the OpenAPI document, with its schema')
})

t.test('a GeoReport URL without its format suffix: 404 suggesting .json and .xml', async (t) => {
  const client = await createApiKey(app.db, { name: 'app', scopes: ['requests:write'] }, SERVER_ACTOR)
  const cases: { method?: 'GET' | 'POST'; url: string; suggests: string }[] = [
    { url: '/open311/v2/requests', suggests: '/open311/v2/requests.json or /open311/v2/requests.xml' },
    { url: '/open311/v2/requests?status=open&page=2', suggests: '/open311/v2/requests.json?status=open&page=2 or /open311/v2/requests.xml?status=open&page=2' },
    // A key or an email in the query is not echoed back (redacted as in the logs).
    {
      url: '/open311/v2/requests?api_key=SECRET-KEY-123&email=a%40b.example&status=open',
      suggests:
        '/open311/v2/requests.json?api_key=[REDACTED]&email=[REDACTED]&status=open or /open311/v2/requests.xml?api_key=[REDACTED]&email=[REDACTED]&status=open',
    },
    { method: 'POST', url: '/open311/v2/requests', suggests: '/open311/v2/requests.json or /open311/v2/requests.xml' },
    { url: '/open311/v2/requests/100001', suggests: '/open311/v2/requests/100001.json or /open311/v2/requests/100001.xml' },
    { url: '/open311/v2/services', suggests: '/open311/v2/services.json or /open311/v2/services.xml' },
    { url: '/open311/v2/services/pothole', suggests: '/open311/v2/services/pothole.json or /open311/v2/services/pothole.xml' },
    { url: '/open311/v2/discovery', suggests: '/open311/v2/discovery.json or /open311/v2/discovery.xml' },
    { url: '/open311/v2/tokens/abc', suggests: '/open311/v2/tokens/abc.json or /open311/v2/tokens/abc.xml' },
    { url: '/open311/v2/servicerequestupdates', suggests: '/open311/v2/servicerequestupdates.json or /open311/v2/servicerequestupdates.xml' },
  ]
  for (const { method = 'GET', url, suggests } of cases) {
    const res = await app.inject({
      method,
      url,
      ...(method === 'POST'
        ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `api_key=${client.key}&service_code=pothole` }
        : {}),
    })
    t.equal(res.statusCode, 404, `${method} ${url}: 404`)
    t.match(res.headers['content-type'], /^application\/json/, `${method} ${url}: in the JSON envelope`)
    const path = url.split('?')[0]
    t.same(res.json(), [{ code: 404, description: `no resource at ${method} ${path}; GeoReport URLs end in their format: ${suggests}` }], `${method} ${url}`)
  }
  const start = await app.inject('/open311/v2/')
  t.same(start.json(), [{ code: 404, description: 'no resource at GET /open311/v2/; start at /open311/v2/discovery.json or /open311/v2/services.json' }])
})

t.test('other unknown URLs: a plain 404, in XML when the URL asks for it', async (t) => {
  const unknown = await app.inject('/open311/v2/nonsense')
  t.same(unknown.json(), [{ code: 404, description: 'no resource at GET /open311/v2/nonsense' }], 'not a GeoReport resource: no suggestion')
  const deeper = await app.inject('/open311/v2/requests/1/2')
  t.same(deeper.json(), [{ code: 404, description: 'no resource at GET /open311/v2/requests/1/2' }])
  const elsewhere = await app.inject('/requests')
  t.same(elsewhere.json(), [{ code: 404, description: 'no resource at GET /requests' }], 'outside /open311/v2: no suggestion')
  const inXml = await app.inject('/open311/v2/nothing.xml')
  t.equal(inXml.statusCode, 404)
  t.same(xml.parse(inXml.body).errors.error, [{ code: 404, description: 'no resource at GET /open311/v2/nothing.xml' }])
})
