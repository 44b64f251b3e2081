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
