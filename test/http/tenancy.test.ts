/**
 * Two cities on one server (docs/tenancy.md): each city's keys act in its own jurisdiction
 * only — catalog, requests, departments, deliveries, reports, alerts, audit and keys — and a
 * read-only key reads without changing anything. Everything goes through the HTTP API, with
 * real department receivers on 127.0.0.1 and the real delivery worker.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import sharp from 'sharp'
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'
import { importCatalog } from '../../src/domain/catalog/catalog.js'
import { validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import { refreshRollups } from '../../src/domain/reports/rollups.js'
import { deliverDue } from '../../src/workers/department-deliveries.js'
import { buildTestApp } from '../helpers/app.js'
import { jpegPart, MULTIPART, multipart } from '../helpers/multipart.js'

const NORTH = 'north.example'
const SOUTH = 'south.example'

const catalogOf = (id: string, name: string) => ({
  jurisdiction: { id, name, time_zone: 'America/Chicago' },
  services: [
    // The same codes in both: a code names a service within its jurisdiction only.
    { service_code: 'pothole', service_name: `${name} potholes` },
    { service_code: 'shelter', service_name: `${name} shelter outreach`, privacy: 'sensitive' },
  ],
})

/** A department's endpoint on 127.0.0.1 that answers every delivery with `status`. */
async function receiver(status: number) {
  const received: string[] = []
  const server = createServer((req, res) => {
    let raw = ''
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()))
    req.on('end', () => {
      received.push(raw)
      res.writeHead(status).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received }
}

const { app } = await buildTestApp(t, { rateLimits: { perIpPerMinute: 1_000_000, perKeyPerMinute: 1_000_000 } })
await importCatalog(app.db, validateCatalog(catalogOf(NORTH, 'North'), 'north'), {}, SERVER_ACTOR)
// South serves French too; north serves English only.
const southCatalog = { ...catalogOf(SOUTH, 'South'), jurisdiction: { ...catalogOf(SOUTH, 'South').jurisdiction, default_locale: 'en', locales: ['en', 'fr'] } }
await importCatalog(app.db, validateCatalog(southCatalog, 'south'), { newJurisdiction: { confirmed: true, howToConfirm: '' } }, SERVER_ACTOR)
// The server's own operator: every jurisdiction. It hands each city its keys through the API.
const root = await createApiKey(app.db, { name: 'server operator', scopes: ['admin'] }, SERVER_ACTOR)
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

async function makeKey(by: string, body: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: bearer(by), payload: body })
  if (res.statusCode !== 201) throw new Error(`creating ${JSON.stringify(body)}: ${res.statusCode} ${res.body}`)
  return res.json() as { id: number; key: string; jurisdiction_ids: string[] | null }
}

const northAdmin = await makeKey(root.key, { name: 'north ops', scopes: ['admin'], jurisdiction_ids: [NORTH] })
const southAdmin = await makeKey(root.key, { name: 'south ops', scopes: ['admin'], jurisdiction_ids: [SOUTH] })
// A city's operators make their own city's keys: named no jurisdiction, the new key gets theirs.
const northApp = await makeKey(northAdmin.key, { name: 'north app', scopes: ['requests:write'] })
const southApp = await makeKey(southAdmin.key, { name: 'south app', scopes: ['requests:write'] })
const northAnalyst = await makeKey(northAdmin.key, { name: 'north analyst', scopes: ['admin:read'] })

const northEndpoint = await receiver(200)
// South's endpoint is gone: its first delivery disables it and raises an operator alert.
const southEndpoint = await receiver(410)

async function setUpCity(adminKey: string, code: string, url: string) {
  const dept = await app.inject({ method: 'POST', url: '/admin/v1/departments', headers: bearer(adminKey), payload: { code, name: code, webhook_url: url } })
  if (dept.statusCode !== 201) throw new Error(`department ${code}: ${dept.statusCode} ${dept.body}`)
  for (const service of ['pothole', 'shelter']) {
    const routes = await app.inject({ method: 'PUT', url: `/admin/v1/services/${service}/routes`, headers: bearer(adminKey), payload: [{ department: code }] })
    if (routes.statusCode !== 200) throw new Error(`routes ${service}: ${routes.statusCode} ${routes.body}`)
  }
  return dept.json() as { id: number; inbound_api_key: string }
}
const northDept = await setUpCity(northAdmin.key, 'streets', northEndpoint.url)
const southDept = await setUpCity(southAdmin.key, 'streets', southEndpoint.url)

function post(key: string, fields: Record<string, string>) {
  return app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ api_key: key, lat: '41.8801', long: '-87.6301', description: 'a deep one', ...fields }).toString(),
  })
}
async function submit(key: string, fields: Record<string, string>) {
  const res = await post(key, fields)
  if (res.statusCode !== 200) throw new Error(`posting: ${res.statusCode} ${res.body}`)
  return (res.json() as { service_request_id: string }[])[0]!.service_request_id
}

// A city's app key needs no jurisdiction_id: it acts in one.
const northPothole = await submit(northApp.key, { service_code: 'pothole' })
const northShelter = await submit(northApp.key, { service_code: 'shelter' })
const southPothole = await submit(southApp.key, { service_code: 'pothole' })
const southShelter = await submit(southApp.key, { service_code: 'shelter', jurisdiction_id: SOUTH })
await deliverDue({ db: app.db, secretBox: app.webhooks.secretBox, agent: app.webhooks.agent, workerId: 'test', timeoutMs: 5000, disableAfterDays: 5 })
await refreshRollups(app.db)

t.test('requests: a city’s key writes into its own jurisdiction only', async (t) => {
  const intoSouth = await post(northApp.key, { service_code: 'pothole', jurisdiction_id: SOUTH })
  t.equal(intoSouth.statusCode, 403, 'north’s app cannot file into south')
  t.match(intoSouth.json(), [{ code: 403, description: `this key acts in jurisdiction ${NORTH} only` }])
  const rootApp = await createApiKey(app.db, { name: 'any city app', scopes: ['requests:write'] }, SERVER_ACTOR)
  const unnamed = await post(rootApp.key, { service_code: 'pothole' })
  t.equal(unnamed.statusCode, 400, 'a key of every jurisdiction must name one on a shared server')
  t.match(unnamed.json()[0].description, /jurisdiction_id is required.*north\.example, south\.example/)
  const comment = await app.inject({
    method: 'POST',
    url: '/open311/v2/servicerequestupdates.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ api_key: northApp.key, jurisdiction_id: SOUTH, service_request_id: southPothole, update_id: 'c1', updated_datetime: new Date().toISOString(), status: 'open', description: 'me too' }).toString(),
  })
  t.equal(comment.statusCode, 403, 'nor comment on south’s requests')
  t.equal(northEndpoint.received.length, 2, 'north’s department got north’s two work orders')
  t.ok(southEndpoint.received.length >= 1, 'south’s got its deliveries, answered 410…')
  const south = (await app.inject({ url: `/admin/v1/departments?jurisdiction_id=${SOUTH}`, headers: bearer(southAdmin.key) })).json()
  t.match(south, [{ code: 'streets', enabled: false }], '…and was disabled')
})

t.test('languages: each city answers in its own, errors included', async (t) => {
  const french = { 'accept-language': 'fr' }
  const north = await app.inject({ url: `/open311/v2/services.json?jurisdiction_id=${NORTH}`, headers: french })
  t.equal(north.headers['content-language'], 'en', 'north serves English only')
  t.notMatch(String(north.headers.vary), /accept-language/, 'and its answers do not vary with the header')
  const south = await app.inject({ url: `/open311/v2/services.json?jurisdiction_id=${SOUTH}`, headers: french })
  t.equal(south.headers['content-language'], 'fr')
  t.match(String(south.headers.vary), /accept-language/)
  // A POST names its jurisdiction in the body (or through its key): its error is in that city's languages.
  const refused = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...french },
    payload: new URLSearchParams({ api_key: northApp.key, service_code: 'nope', lat: '41.88', long: '-87.63' }).toString(),
  })
  t.equal(refused.statusCode, 404)
  t.same(refused.json(), [{ code: 404, description: 'service_code "nope" does not exist' }], 'north’s refusal in English, though south speaks French')
  t.equal(refused.headers['content-language'], 'en')
  const southRefused = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...french },
    payload: new URLSearchParams({ api_key: southApp.key, jurisdiction_id: SOUTH, service_code: 'nope', lat: '41.88', long: '-87.63' }).toString(),
  })
  t.same(southRefused.json(), [{ code: 404, description: 'le service_code "nope" n\'existe pas' }], 'south’s in French')
})

t.test('reads: another city’s admin key reads as the public', async (t) => {
  const asNorth = bearer(northAdmin.key)
  const own = (await app.inject({ url: `/open311/v2/requests/${northShelter}.json?jurisdiction_id=${NORTH}`, headers: asNorth })).json()[0]
  t.equal(own.lat, 41.8801, 'north’s operator sees north’s sensitive request where it is')
  const other = (await app.inject({ url: `/open311/v2/requests/${southShelter}.json?jurisdiction_id=${SOUTH}`, headers: asNorth })).json()[0]
  t.not(other.lat, 41.8801, 'south’s sensitive request is generalised for north’s key, as for the public')
  t.equal(other.description, null, 'and without its free text')
  const analyst = (await app.inject({ url: `/open311/v2/requests/${northShelter}.json?jurisdiction_id=${NORTH}`, headers: bearer(northAnalyst.key) })).json()[0]
  t.not(analyst.lat, 41.8801, 'a read-only key is not an operator of GeoReport reads')
})

t.test('catalog: each city reads and imports its own', async (t) => {
  const services = await app.inject({ url: '/admin/v1/services', headers: bearer(northAdmin.key) })
  t.equal(services.statusCode, 200)
  t.same(services.json().map((s: { service_name: string }) => s.service_name).sort(), ['North potholes', 'North shelter outreach'])
  const south = await app.inject({ url: `/admin/v1/services?jurisdiction_id=${SOUTH}`, headers: bearer(northAdmin.key) })
  t.equal(south.statusCode, 403, 'naming another city is refused')
  const hijack = { ...catalogOf(SOUTH, 'Hijacked'), services: [{ service_code: 'pothole', service_name: 'hijacked' }] }
  const put = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: bearer(northAdmin.key), payload: hijack })
  t.equal(put.statusCode, 403, 'north cannot import south’s catalog')
  const added = await app.inject({ method: 'PUT', url: '/admin/v1/catalog?add_jurisdiction=true', headers: bearer(northAdmin.key), payload: catalogOf('west.example', 'West') })
  t.equal(added.statusCode, 403, 'nor add a jurisdiction: only a key of every jurisdiction does')
  const southServices = await app.inject(`/open311/v2/services.json?jurisdiction_id=${SOUTH}`)
  t.same(southServices.json().map((s: { service_name: string }) => s.service_name).sort(), ['South potholes', 'South shelter outreach'], 'south’s catalog is unchanged')
})

t.test('departments, work orders and operations stay within the city', async (t) => {
  const asNorth = bearer(northAdmin.key)
  const depts = await app.inject({ url: '/admin/v1/departments', headers: asNorth })
  t.same(depts.json().map((d: { id: number }) => d.id), [northDept.id], 'north lists its own department')
  t.equal((await app.inject({ url: `/admin/v1/departments?jurisdiction_id=${SOUTH}`, headers: asNorth })).statusCode, 403)
  t.equal((await app.inject({ url: `/admin/v1/requests/${southPothole}/work-orders`, headers: asNorth })).statusCode, 404, 'south’s request is not found among north’s')
  const close = await app.inject({ method: 'POST', url: `/admin/v1/requests/${southPothole}/close?jurisdiction_id=${SOUTH}`, headers: asNorth, payload: { reason: 'x', force: true } })
  t.equal(close.statusCode, 403, 'north cannot close south’s request')
  const anonymise = await app.inject({ method: 'POST', url: `/admin/v1/requests/${southPothole}/anonymise?jurisdiction_id=${SOUTH}`, headers: asNorth })
  t.equal(anonymise.statusCode, 403, 'nor anonymise it')
  const template = await app.inject({ method: 'PUT', url: `/admin/v1/templates/fixed?jurisdiction_id=${SOUTH}`, headers: asNorth, payload: { public_text: 'Fixed.' } })
  t.equal(template.statusCode, 403, 'nor write south’s templates')
  const southView = (await app.inject({ url: `/open311/v2/requests/${southPothole}.json?jurisdiction_id=${SOUTH}` })).json()[0]
  t.equal(southView.status, 'open', 'south’s request is untouched')
  // South's department key, for its own department, cannot report on north's request.
  const report = await app.inject({
    method: 'POST',
    url: '/open311/v2/servicerequestupdates.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ api_key: southDept.inbound_api_key, service_request_id: northPothole, update_id: 'u1', updated_datetime: new Date().toISOString(), status: 'closed' }).toString(),
  })
  t.equal(report.statusCode, 404, 'a department reports only on its own city’s requests')
  t.equal((await app.inject({ url: `/open311/v2/requests/${northPothole}.json?jurisdiction_id=${NORTH}` })).json()[0].status, 'open', 'north’s request is untouched')
})

t.test('deliveries, reports and alerts: each city sees its own', async (t) => {
  const deliveries = await app.inject({ url: '/admin/v1/deliveries', headers: bearer(northAdmin.key) })
  t.equal(deliveries.json().length, 2, 'north’s two deliveries')
  t.ok(deliveries.json().every((d: { state: string }) => d.state === 'delivered'))
  t.equal((await app.inject({ url: `/admin/v1/deliveries?jurisdiction_id=${SOUTH}`, headers: bearer(northAdmin.key) })).statusCode, 403)

  const volume = await app.inject({ url: '/admin/v1/reports/volume.json?by=service', headers: bearer(northAdmin.key) })
  t.equal(volume.statusCode, 200)
  t.match(volume.json().rows, [{ service_code: 'pothole', created: 1 }, { service_code: 'shelter', created: 1 }], 'north’s report counts north’s requests')
  t.equal((await app.inject({ url: `/admin/v1/reports/volume.json?jurisdiction_id=${SOUTH}`, headers: bearer(northAdmin.key) })).statusCode, 403)

  const northAlerts = (await app.inject({ url: '/admin/v1/alerts', headers: bearer(northAdmin.key) })).json()
  t.same(northAlerts, [], 'north has no alert: south’s disabled endpoint is not north’s business')
  const southAlerts = (await app.inject({ url: '/admin/v1/alerts', headers: bearer(southAdmin.key) })).json()
  t.match(southAlerts, [{ kind: 'endpoint_disabled', jurisdiction_id: SOUTH }], 'south sees its own')
  const everyone = (await app.inject({ url: '/admin/v1/alerts', headers: bearer(root.key) })).json()
  t.equal(everyone.length, 1, 'the server’s operator sees every city’s alerts')
  const ack = await app.inject({ method: 'POST', url: `/admin/v1/alerts/${southAlerts[0].id}/acknowledge`, headers: bearer(northAdmin.key) })
  t.equal(ack.statusCode, 404, 'north cannot acknowledge south’s alert')
  t.equal((await app.inject({ url: '/admin/v1/alerts', headers: bearer(southAdmin.key) })).json().length, 1, 'it is still open')
})

t.test('retention: a city sees its own figures, not the server’s', async (t) => {
  const north = (await app.inject({ url: '/admin/v1/retention', headers: bearer(northAdmin.key) })).json()
  t.match(north, { jurisdiction_id: NORTH, due: { anonymised_requests: 0, delivered_outbox: 0, inbound_events: 0, idempotency_records: null, rate_limit_counters: null } })
  const server = (await app.inject({ url: `/admin/v1/retention?jurisdiction_id=${NORTH}`, headers: bearer(root.key) })).json()
  t.type(server.due.rate_limit_counters, 'number', 'the server’s operator sees the server’s own rows too')
  t.equal((await app.inject({ url: `/admin/v1/retention?jurisdiction_id=${SOUTH}`, headers: bearer(northAdmin.key) })).statusCode, 403)
})

t.test('audit: a city reads its own entries', async (t) => {
  const page = await app.inject({ url: '/admin/v1/audit.json?limit=1000', headers: bearer(northAdmin.key) })
  t.equal(page.statusCode, 200)
  const events = page.json().events as { jurisdiction_id: string | null; action: string }[]
  t.ok(events.length >= 3, 'north’s catalog, department and routes are there')
  t.ok(events.every((e) => e.jurisdiction_id === NORTH), 'and nothing of south’s, nor of the server as a whole')
  t.ok(events.some((e) => e.action === 'api_key.created'), 'the keys north made are north’s entries')
  t.equal((await app.inject({ url: `/admin/v1/audit.json?jurisdiction_id=${SOUTH}`, headers: bearer(northAdmin.key) })).statusCode, 403)
  const all = (await app.inject({ url: '/admin/v1/audit.json?limit=1000', headers: bearer(root.key) })).json().events as { jurisdiction_id: string | null }[]
  t.ok(all.some((e) => e.jurisdiction_id === SOUTH) && all.some((e) => e.jurisdiction_id === NORTH), 'the server’s operator reads both')
})

t.test('keys: a city lists, makes and revokes its own, never wider', async (t) => {
  const listed = (await app.inject({ url: '/admin/v1/keys', headers: bearer(northAdmin.key) })).json() as { id: number; jurisdiction_ids: string[] }[]
  t.ok(listed.every((k) => k.jurisdiction_ids.length === 1 && k.jurisdiction_ids[0] === NORTH), 'only north’s keys')
  t.ok(listed.some((k) => k.id === northApp.id) && listed.some((k) => k.id === northAdmin.id), 'its app’s and its own')
  t.ok(!listed.some((k) => k.id === root.id || k.id === southApp.id), 'not the server’s nor south’s')
  const wider = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: bearer(northAdmin.key), payload: { name: 'sneaky', scopes: ['admin'], jurisdiction_ids: [NORTH, SOUTH] } })
  t.equal(wider.statusCode, 403, 'north cannot make a key that reaches south')
  t.match(wider.json()[0].description, /south\.example/)
  const revoke = await app.inject({ method: 'DELETE', url: `/admin/v1/keys/${southApp.id}`, headers: bearer(northAdmin.key) })
  t.equal(revoke.statusCode, 404, 'south’s key is unknown to north')
  t.equal((await post(southApp.key, { service_code: 'pothole' })).statusCode, 200, 'and still works')
  const unknown = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: bearer(root.key), payload: { name: 'x', jurisdiction_ids: ['nowhere.example'] } })
  t.equal(unknown.statusCode, 400, 'a key for a jurisdiction the server does not serve is refused')
  t.match(unknown.json()[0].description, /nowhere\.example is not served here/)
})

t.test('admin:read: reports, audit, deliveries, alerts and work orders; nothing that changes', async (t) => {
  const asAnalyst = bearer(northAnalyst.key)
  for (const url of ['/admin/v1/reports/volume.json', '/admin/v1/reports/backlog.csv', '/admin/v1/audit.json', '/admin/v1/deliveries', '/admin/v1/alerts', '/admin/v1/work-orders', `/admin/v1/requests/${northPothole}/work-orders`]) {
    t.equal((await app.inject({ url, headers: asAnalyst })).statusCode, 200, `GET ${url}`)
  }
  t.equal((await app.inject({ url: `/admin/v1/reports/volume.json?jurisdiction_id=${SOUTH}`, headers: asAnalyst })).statusCode, 403, 'its city’s only')
  const close = await app.inject({ method: 'POST', url: `/admin/v1/requests/${northPothole}/close`, headers: asAnalyst, payload: { reason: 'x', force: true } })
  t.equal(close.statusCode, 403, 'it cannot close a request')
  t.match(close.json()[0].description, /read-only "admin:read"/)
  t.equal((await app.inject({ url: '/admin/v1/keys', headers: asAnalyst })).statusCode, 403, 'nor list keys')
  t.equal((await app.inject({ url: '/admin/v1/departments', headers: asAnalyst })).statusCode, 403, 'nor read department settings')
  t.equal((await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAnalyst, payload: { name: 'x' } })).statusCode, 403, 'nor make keys')
  t.equal((await app.inject({ url: `/open311/v2/requests/${northPothole}.json?jurisdiction_id=${NORTH}` })).json()[0].status, 'open', 'the request is still open')
})

t.test('photos: a sensitive request’s photo is shown to its own city’s operators only', async (t) => {
  const photo = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#446688' } }).jpeg().toBuffer()
  const fields = { api_key: northApp.key, service_code: 'shelter', lat: '41.8801', long: '-87.6301' }
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': MULTIPART },
    payload: multipart([...Object.entries(fields).map(([name, value]) => ({ name, value })), jpegPart(photo)]),
  })
  t.equal(res.statusCode, 200, res.body)
  const id = res.json()[0].service_request_id
  const own = (await app.inject({ url: `/open311/v2/requests/${id}.json?jurisdiction_id=${NORTH}`, headers: bearer(northAdmin.key) })).json()[0]
  const path = new URL(own.media_url).pathname
  t.equal((await app.inject({ url: path, headers: bearer(northAdmin.key) })).statusCode, 200, 'north’s operator sees it')
  t.equal((await app.inject({ url: path, headers: bearer(root.key) })).statusCode, 200, 'so does the server’s')
  t.equal((await app.inject({ url: path, headers: bearer(southAdmin.key) })).statusCode, 404, 'south’s operator does not')
  t.equal((await app.inject({ url: path })).statusCode, 404, 'nor the public')
})
