/**
 * Discovery, service definitions, tokens (by hand and through the real worker), mySociety's
 * servicerequestupdates, and the HTTP niceties every endpoint shares (ETag, compression, CORS,
 * 405, errors in the requested format).
 */
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { sql } from 'drizzle-orm'
import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { importCatalog } from '../../src/domain/catalog/catalog.js'
import { validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import demoCatalog from '../../src/domain/demo/demo-catalog.json' with { type: 'json' }
import { forgetJurisdictions, resolveJurisdiction } from '../../src/domain/jurisdictions.js'
import { acceptPendingTokens } from '../../src/domain/requests/tokens.js'
import { startWorkers } from '../../src/workers/index.js'
import { storedCatalogDocuments } from '../../src/http/catalog-answers.js'
import { buildTestApp } from '../helpers/app.js'
import { DAY_MS, type InsertedRequest, type InsertedUpdate, chicagoW3c, demoFixtures, fixtureNow, insertFixtures, utcZ } from './fixtures.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const xml = new XMLParser({
  parseTagValue: false,
  isArray: (name) => ['endpoint', 'format', 'attribute', 'value', 'request', 'request_update', 'error', 'service'].includes(name),
})
const W3C = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/
const UTC_CHANGESET = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/
const ATTRIBUTE_FIELDS = ['code', 'datatype', 'datatype_description', 'description', 'order', 'required', 'variable']
const LIST_TYPES = ['singlevaluelist', 'multivaluelist']

type Json = Record<string, unknown>
interface CatalogAttr {
  code: string
  datatype: string
  description: string
  datatype_description?: string
  variable?: boolean
  required?: boolean
  order?: number
  values?: { key: string; name: string }[]
}

// One database per test file; subtests share it and run in order.
const { app, database } = await buildTestApp(t)
await loadDemoCatalog(app.db)
const { key: apiKey } = await createApiKey(app.db, { name: 't' }, SERVER_ACTOR)
const now = fixtureNow()
const fx = await insertFixtures(app.db, demoFixtures(now))
const f = (key: string): InsertedRequest => fx.get(key)!

const get = (path: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: `/open311/v2/${path}`, headers })
const qs = (params: Record<string, string>) => `?${new URLSearchParams(params).toString()}`
const post = (path: string, fields: Record<string, string>) =>
  app.inject({
    method: 'POST',
    url: `/open311/v2/${path}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(fields).toString(),
  })
const xmlText = (value: unknown) => (value === null || value === undefined ? '' : String(value))
const catalogService = (code: string) => demoCatalog.services.find((s) => s.service_code === code)!
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function catalogChangedAt(): Promise<Date> {
  const [row] = await queryRows<{ changed: string | Date }>(app.db, sql`select catalog_changed_at as changed from jurisdictions where id = 'demo.open311.city'`)
  return new Date(row!.changed)
}

t.test('discovery.json: changeset, contact, key_service and the endpoint list', async (t) => {
  const res = await get('discovery.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
  const body = res.json() as { changeset: string; contact: string; key_service: string; endpoints: Json[] }
  t.same(Object.keys(body).sort(), ['changeset', 'contact', 'default_locale', 'endpoints', 'key_service', 'locales'])
  t.equal(body.contact, demoCatalog.jurisdiction.contact)
  t.equal(body.key_service, demoCatalog.jurisdiction.key_service)
  t.match(body.changeset, UTC_CHANGESET, 'an ISO 8601 (hence sortable) UTC instant')
  t.equal(body.changeset, utcZ(await catalogChangedAt()), 'the time of the last catalog change, to the second')
  t.ok(Array.isArray(body.endpoints) && body.endpoints.length >= 1)
  for (const endpoint of body.endpoints) {
    t.same(Object.keys(endpoint).sort(), ['changeset', 'formats', 'specification', 'type', 'url'])
    t.match(endpoint.type, /^(production|test)$/)
    t.ok(Array.isArray(endpoint.formats), 'formats is an array of strings')
  }
  t.same(body.endpoints[0], {
    specification: 'http://wiki.open311.org/GeoReport_v2',
    url: 'http://open311.test/open311/v2',
    changeset: body.changeset,
    type: 'production',
    formats: ['text/xml', 'application/json'],
  })
})

t.test('discovery.xml: <discovery><endpoints><endpoint><formats><format>', async (t) => {
  const [jsonRes, xmlRes] = await Promise.all([get('discovery.json'), get('discovery.xml')])
  t.equal(xmlRes.statusCode, 200)
  t.match(xmlRes.headers['content-type'], /^text\/xml; charset=utf-8/)
  t.match(xmlRes.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
  t.match(xmlRes.body, /<formats><format>text\/xml<\/format><format>application\/json<\/format><\/formats>/)
  const json = jsonRes.json() as { changeset: string; contact: string; key_service: string; endpoints: { formats: string[] }[] }
  const { discovery } = xml.parse(xmlRes.body) as { discovery: { changeset: string; contact: string; key_service: string; endpoints: { endpoint: Json[] } } }
  t.equal(discovery.changeset, json.changeset)
  t.equal(discovery.contact, json.contact)
  t.equal(discovery.key_service, json.key_service)
  t.equal(discovery.endpoints.endpoint.length, json.endpoints.length)
  t.same(discovery.endpoints.endpoint[0], { ...json.endpoints[0], formats: { format: json.endpoints[0]!.formats } })
})

t.test('service definition: every attribute field always present, values only for list types', async (t) => {
  const res = await get('services/pothole.json')
  t.equal(res.statusCode, 200)
  const body = res.json() as { service_code: string; attributes: Json[] }
  const expected = {
    service_code: 'pothole',
    attributes: (catalogService('pothole').attributes as CatalogAttr[]).map((a) => ({
      variable: a.variable ?? true,
      code: a.code,
      datatype: a.datatype,
      required: a.required ?? false,
      datatype_description: a.datatype_description ?? '',
      order: a.order,
      description: a.description,
      // The default language's names; translations are for other locales (test/open311/locales.test.ts).
      ...(a.values ? { values: a.values.map((v) => ({ key: v.key, name: v.name })) } : {}),
    })),
  }
  t.same(body, expected, 'golden: the demo catalog, in order')
  t.same(Object.keys(body).sort(), ['attributes', 'service_code'])

  // Every demo service: the seven fields always, values exactly for list types, orders 1.. ascending.
  for (const service of demoCatalog.services) {
    const definition = (await get(`services/${service.service_code}.json`)).json() as { service_code: string; attributes: Json[] }
    t.equal(definition.service_code, service.service_code)
    let previous = 0
    for (const attribute of definition.attributes) {
      const isList = LIST_TYPES.includes(attribute.datatype as string)
      t.same(Object.keys(attribute).sort(), [...ATTRIBUTE_FIELDS, ...(isList ? ['values'] : [])].sort(), `${service.service_code}.${attribute.code}: fields`)
      t.ok(Number.isInteger(attribute.order) && (attribute.order as number) > previous, `${service.service_code}.${attribute.code}: integer order, ascending`)
      previous = attribute.order as number
      t.type(attribute.variable, 'boolean')
      t.type(attribute.required, 'boolean')
      t.type(attribute.datatype_description, 'string')
      if (isList) t.ok((attribute.values as unknown[]).length > 0, 'list types carry their values')
    }
  }
  const waterLeak = (await get('services/water-leak.json')).json() as { attributes: Json[] }
  t.match(waterLeak.attributes[0], { code: 'notice', variable: false, required: false, datatype: 'text' }, 'an informational attribute')
})

t.test('service definition XML: booleans as true/false text, integer order, values/value', async (t) => {
  const [jsonRes, xmlRes] = await Promise.all([get('services/pothole.json'), get('services/pothole.xml')])
  t.equal(xmlRes.statusCode, 200)
  t.match(xmlRes.headers['content-type'], /^text\/xml; charset=utf-8/)
  t.match(xmlRes.body, /^<\?xml version="1.0" encoding="utf-8"\?>\n?<service_definition><service_code>pothole<\/service_code><attributes><attribute>/)
  t.match(xmlRes.body, /<variable>true<\/variable>/)
  t.match(xmlRes.body, /<required>true<\/required>/)
  t.match(xmlRes.body, /<required>false<\/required>/)
  t.match(xmlRes.body, /<order>1<\/order>/)
  const json = jsonRes.json() as { attributes: Json[] }
  const parsed = xml.parse(xmlRes.body) as { service_definition: { service_code: string; attributes: { attribute: Json[] } } }
  t.equal(parsed.service_definition.service_code, 'pothole')
  const attributes = parsed.service_definition.attributes.attribute
  t.equal(attributes.length, json.attributes.length)
  attributes.forEach((attribute, i) => {
    const expected = json.attributes[i]!
    const { values, ...scalars } = expected as Json & { values?: { key: string; name: string }[] }
    t.same(
      attribute,
      {
        ...Object.fromEntries(Object.entries(scalars).map(([k, v]) => [k, xmlText(v)])),
        ...(values ? { values: { value: values } } : {}),
      },
      `attribute ${expected.code}: same data as JSON`,
    )
    t.match(attribute.order, /^[1-9]\d*$/)
    t.match(attribute.variable, /^(true|false)$/)
    t.match(attribute.required, /^(true|false)$/)
  })
})

t.test('services/{code}: unknown → 404; no attributes → empty list', async (t) => {
  const nope = await get('services/nope.json')
  t.equal(nope.statusCode, 404)
  t.match(nope.json(), [{ code: 404, description: /nope/ }])
  const nopeXml = await get('services/nope.xml')
  t.equal(nopeXml.statusCode, 404)
  t.match(nopeXml.headers['content-type'], /^text\/xml/)
  t.match(xml.parse(nopeXml.body), { errors: { error: [{ code: '404', description: /nope/ }] } })

  const feedback = await get('services/general-feedback.json')
  t.equal(feedback.statusCode, 200)
  t.same(feedback.json(), { service_code: 'general-feedback', attributes: [] })
  const feedbackXml = await get('services/general-feedback.xml')
  t.match(feedbackXml.body, /<service_definition><service_code>general-feedback<\/service_code><attributes(\/>|><\/attributes>)<\/service_definition>/)
  const list = (await get('services.json')).json() as { service_code: string; metadata: boolean }[]
  t.equal(list.find((s) => s.service_code === 'general-feedback')?.metadata, false, 'metadata false in the list')
})

t.test('discovery changeset moves after a catalog change, not after a no-op import', async (t) => {
  const before = (await get('discovery.json')).json() as { changeset: string }
  const beforeTag = (await get('discovery.json')).headers.etag
  await sleep(1100) // changeset has second precision
  const unchanged = await loadDemoCatalog(app.db)
  t.same(unchanged.created.concat(unchanged.updated), [], 're-importing the demo changes nothing')
  t.equal(((await get('discovery.json')).json() as { changeset: string }).changeset, before.changeset, 'a no-op import keeps the changeset')

  const modified = structuredClone(demoCatalog) as { jurisdiction: unknown; services: Json[] }
  const deadAnimal = modified.services.find((s) => s.service_code === 'dead-animal')!
  deadAnimal.description = 'Report a dead animal on a street, sidewalk or in a park (not on private property).'
  modified.services.push({ service_code: 'bench-repair', service_name: 'Bench Repair', description: 'Broken park bench', group: 'Parks' })
  const summary = await importCatalog(app.db, validateCatalog(modified, 'test catalog'), {}, SERVER_ACTOR)
  t.same(summary.updated, ['dead-animal'])
  t.same(summary.created, ['bench-repair'])

  const afterRes = await get('discovery.json')
  const after = afterRes.json() as { changeset: string; endpoints: { changeset: string }[] }
  t.match(after.changeset, UTC_CHANGESET)
  t.ok(after.changeset > before.changeset, `changeset moved forward (${before.changeset} → ${after.changeset})`)
  t.equal(after.endpoints[0]!.changeset, after.changeset, 'the endpoint changeset moves too')
  t.not(afterRes.headers.etag, beforeTag, 'and so does the ETag')
  const afterXml = xml.parse((await get('discovery.xml')).body) as { discovery: { changeset: string } }
  t.equal(afterXml.discovery.changeset, after.changeset)

  const bench = await get('services/bench-repair.json')
  t.same(bench.json(), { service_code: 'bench-repair', attributes: [] }, 'a new service without attributes: attributes []')
  const services = (await get('services.json')).json() as { service_code: string; metadata: boolean; description: string }[]
  t.match(services.find((s) => s.service_code === 'bench-repair'), { metadata: false, type: 'realtime', group: 'Parks' })
  t.equal(services.find((s) => s.service_code === 'dead-animal')?.description, deadAnimal.description)
})

t.test('tokens: a batch service answers a token that resolves after acceptance', async (t) => {
  const realtime = await post('requests.json', { api_key: apiKey, service_code: 'pothole', lat: '41.8790', long: '-87.6300', 'attribute[size]': 'SMALL' })
  t.equal(realtime.statusCode, 200)
  const [realtimeAnswer] = realtime.json() as Json[]
  t.match(realtimeAnswer, { service_request_id: /^\d+$/ })
  t.notOk('token' in realtimeAnswer!, 'a realtime service answers no token')

  const noKey = await post('requests.json', { service_code: 'water-leak', lat: '41.88', long: '-87.63' })
  t.equal(noKey.statusCode, 403)
  t.match(noKey.json(), [{ code: 403 }])

  const res = await post('requests.json', {
    api_key: apiKey,
    service_code: 'water-leak',
    lat: '41.8800',
    long: '-87.6310',
    'attribute[leak_location]': 'HYDRANT',
    'attribute[flow_rate]': 'TRICKLE',
    description: 'Hydrant leaking at the corner',
  })
  t.equal(res.statusCode, 200)
  const answer = res.json() as Json[]
  t.equal(answer.length, 1, 'a one-element list')
  t.match(answer[0], { token: /^[A-Za-z0-9_-]{16,64}$/ })
  t.notOk('service_request_id' in answer[0]!, 'never a service_request_id together with a token')
  const token = answer[0]!.token as string

  const pending = await get(`tokens/${token}.json`)
  t.equal(pending.statusCode, 200)
  t.same(pending.json(), [{ token }], 'pending: the token only')
  const pendingXml = await get(`tokens/${token}.xml`)
  t.equal(pendingXml.statusCode, 200)
  t.same((xml.parse(pendingXml.body) as { service_requests: { request: Json[] } }).service_requests.request, [{ token }])
  t.notMatch(pendingXml.body, /service_request_id/)

  t.ok((await acceptPendingTokens(app.db)) >= 1, 'the acceptor accepts the pending token')
  const accepted = await get(`tokens/${token}.json`)
  t.equal(accepted.statusCode, 200)
  const [resolved] = accepted.json() as { service_request_id: string; token: string }[]
  t.match(resolved, { service_request_id: /^\d+$/, token })
  t.same(Object.keys(resolved!).sort(), ['service_request_id', 'token'])
  const acceptedXml = xml.parse((await get(`tokens/${token}.xml`)).body) as { service_requests: { request: Json[] } }
  t.same(acceptedXml.service_requests.request, [{ service_request_id: resolved!.service_request_id, token }])

  const request = await get(`requests/${resolved!.service_request_id}.json`)
  t.equal(request.statusCode, 200)
  t.match(request.json(), [{ service_request_id: resolved!.service_request_id, service_code: 'water-leak', status: 'open', description: 'Hydrant leaking at the corner', lat: 41.88, long: -87.631 }])

  for (const path of ['tokens/no-such-token.json', 'tokens/no-such-token.xml']) {
    const unknown = await get(path)
    t.equal(unknown.statusCode, 404, path)
  }
  t.match((await get('tokens/no-such-token.json')).json(), [{ code: 404, description: /no-such-token/ }])
  t.match(xml.parse((await get('tokens/no-such-token.xml')).body), { errors: { error: [{ code: '404' }] } })
})

t.test('tokens: the real worker resolves a new token within a few seconds', async (t) => {
  const workers = await startWorkers(app, database)
  t.teardown(() => Promise.all(workers.map((w) => w.stop())))
  const res = await post('requests.json', {
    api_key: apiKey,
    service_code: 'abandoned-vehicle',
    address_string: '1400 S Michigan Ave',
    'attribute[license_plate]': 'XYZ 987 (IL)',
    'attribute[first_seen]': '2026-11-01T08:00:00-06:00',
  })
  t.equal(res.statusCode, 200)
  const token = (res.json() as { token: string }[])[0]!.token
  t.ok(token, 'a token')
  const started = Date.now()
  let answer: { service_request_id?: string; token: string }[] = []
  while (Date.now() - started < 8000) {
    answer = (await get(`tokens/${token}.json`)).json()
    if (answer[0]?.service_request_id) break
    await sleep(100)
  }
  const elapsed = Date.now() - started
  t.match(answer, [{ token, service_request_id: /^\d+$/ }], 'resolved by the worker')
  t.ok(elapsed < 6000, `within a few seconds (${elapsed} ms)`)
  const request = (await get(`requests/${answer[0]!.service_request_id}.json`)).json() as Json[]
  t.match(request, [{ service_code: 'abandoned-vehicle', address: '1400 S Michigan Ave', lat: null, long: null }])
  t.notMatch(JSON.stringify(request), /XYZ 987/, 'the non-public attribute answer is not shown')
})

t.test('servicerequestupdates: a start_date/end_date window, UTC Z form as FixMyStreet sends', async (t) => {
  const publicRequests = [...fx.values()].filter((r) => r.isPublic)
  const allUpdates = publicRequests.flatMap((r) => r.updates.filter((u) => u.isPublic).map((u) => ({ request: r, update: u })))
  const expectedIn = (from: Date, before: Date) =>
    allUpdates
      .filter(({ update }) => update.at >= from && update.at < before)
      .sort((a, b) => a.update.at.getTime() - b.update.at.getTime())
      .map(({ request, update }) => toWire(request, update))
  function toWire(request: InsertedRequest, update: InsertedUpdate) {
    return {
      update_id: update.updateId,
      service_request_id: request.publicId,
      status: update.status,
      updated_datetime: chicagoW3c(update.at),
      description: update.description,
      // null when there is none, as on requests (was "" before issue 17).
      media_url: update.mediaUrls[0] ?? null,
    }
  }
  const pick = (item: Json) =>
    Object.fromEntries(['update_id', 'service_request_id', 'status', 'updated_datetime', 'description', 'media_url'].map((k) => [k, item[k]]))

  // c2 was requested exactly at `from`; c1's second update is exactly at `before`.
  const from = f('c2').requestedAt
  const before = f('c1').updates[1]!.at
  const res = await get(`servicerequestupdates.json${qs({ start_date: utcZ(from), end_date: utcZ(before) })}`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
  const body = res.json() as Json[]
  t.ok(Array.isArray(body))
  const expected = expectedIn(from, before)
  t.ok(expected.length >= 5, 'a realistic window')
  t.same(body.map(pick), expected, 'golden: the public updates in [start_date, end_date), oldest first')
  t.equal(body[0]!.service_request_id, f('c2').publicId, 'an update at exactly start_date is included')
  t.notOk(body.some((u) => u.update_id === f('c1').updates[1]!.updateId), 'an update at exactly end_date is excluded')
  t.notOk(body.some((u) => u.service_request_id === f('p1').publicId), 'updates of a non-public request never appear')
  for (const item of body) {
    t.type(item.update_id, 'string')
    t.type(item.service_request_id, 'string')
    t.match(item.updated_datetime, W3C)
    t.type(item.description, 'string')
    t.ok(item.media_url === null || typeof item.media_url === 'string', 'media_url: a URL or null')
  }

  const xmlRes = await get(`servicerequestupdates.xml${qs({ start_date: utcZ(from), end_date: utcZ(before) })}`)
  t.equal(xmlRes.statusCode, 200)
  t.match(xmlRes.body, /^<\?xml version="1.0" encoding="utf-8"\?>\n?<service_request_updates><request_update><update_id>/)
  const items = (xml.parse(xmlRes.body) as { service_request_updates: { request_update: Json[] } }).service_request_updates.request_update
  t.same(items.map(pick), expected.map((e) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, xmlText(v)]))), 'XML: the same updates')

  // c1's inspection update: media and the external status code.
  const c1Update = f('c1').updates[1]!
  const inspection = (await get(`servicerequestupdates.json${qs({ start_date: utcZ(c1Update.at), end_date: utcZ(new Date(c1Update.at.getTime() + 1000)) })}`)).json() as Json[]
  t.same(inspection.map(pick), [toWire(f('c1'), c1Update)])
  t.match(inspection[0], { media_url: 'https://media.example/c1-inspection.jpg', external_status_code: 'INSP', status: 'open' })

  // c3: the internal note never appears.
  const c3 = f('c3')
  const c3Window = (await get(`servicerequestupdates.json${qs({ start_date: utcZ(c3.requestedAt), end_date: utcZ(new Date(c3.requestedAt.getTime() + 3 * DAY_MS)), api_key: apiKey })}`)).json() as Json[]
  t.same(c3Window.map(pick), expectedIn(c3.requestedAt, new Date(c3.requestedAt.getTime() + 3 * DAY_MS)))
  t.same(c3Window.filter((u) => u.service_request_id === c3.publicId).map((u) => u.description), ['Request received', 'Crew scheduled'])
  t.notMatch(JSON.stringify(c3Window), /INTERNAL|555-0100/)

  // No dates: the last 24 hours.
  const recent = (await get('servicerequestupdates.json')).json() as Json[]
  t.ok(recent.some((u) => u.update_id === c1Update.updateId), '20 hours ago: in the default window')
  t.notOk(recent.some((u) => u.update_id === f('c1').updates[0]!.updateId), '26 hours ago: outside it')

  const reversed = await get(`servicerequestupdates.json${qs({ start_date: utcZ(before), end_date: utcZ(from) })}`)
  t.equal(reversed.statusCode, 400, 'end before start')
  t.match(reversed.json(), [{ code: 400, description: /end_date/ }])
  const reversedXml = await get(`servicerequestupdates.xml${qs({ start_date: utcZ(before), end_date: utcZ(from) })}`)
  t.equal(reversedXml.statusCode, 400)
  t.match(xml.parse(reversedXml.body), { errors: { error: [{ code: '400', description: /end_date/ }] } })
  t.equal((await get(`servicerequestupdates.json${qs({ start_date: utcZ(from), end_date: utcZ(from) })}`)).statusCode, 400, 'an empty window')
  const tooLong = await get(`servicerequestupdates.json${qs({ start_date: utcZ(new Date(now.getTime() - 200 * DAY_MS)), end_date: utcZ(now) })}`)
  t.equal(tooLong.statusCode, 400, 'over 90 days')
  const garbage = await get(`servicerequestupdates.json${qs({ start_date: 'last tuesday' })}`)
  t.equal(garbage.statusCode, 400)
  t.match(garbage.json(), [{ code: 400, description: /start_date/ }])
})

t.test('servicerequestupdates pages like GET requests: page/page_size, Link rel="next" while more follow, every update once', async (t) => {
  const window = { start_date: utcZ(new Date(now.getTime() - 60 * DAY_MS)), end_date: utcZ(new Date(now.getTime() + DAY_MS)) }
  const whole = (await get(`servicerequestupdates.json${qs(window)}`)).json() as Json[]
  t.ok(whole.length >= 7, `${whole.length} updates in the window`)
  const seen: Json[] = []
  let url: string | undefined = `servicerequestupdates.json${qs({ ...window, page_size: '3' })}`
  let pages = 0
  while (url) {
    const res = await get(url)
    t.equal(res.statusCode, 200)
    const body = res.json() as Json[]
    t.ok(body.length <= 3, `page ${pages + 1}: at most page_size items`)
    seen.push(...body)
    pages++
    t.equal(res.headers['x-page'], String(pages))
    const next = res.headers['x-next-page-url'] as string | undefined
    if (next) {
      t.equal(res.headers.link?.toString().includes(`<${next}>; rel="next"`), true, `page ${pages}: Link rel="next" too`)
      t.match(next, /^http:\/\/open311\.test\/open311\/v2\/servicerequestupdates\.json\?/, 'built from PUBLIC_BASE_URL')
    }
    url = next ? next.replace('http://open311.test/open311/v2/', '') : undefined
  }
  t.equal(pages, Math.ceil(whole.length / 3), 'as many pages as the updates fill; the last one says nothing follows')
  t.same(seen.map((u) => u.update_id), whole.map((u) => u.update_id), 'every update exactly once, in order')
  const capped = await get(`servicerequestupdates.json${qs({ ...window, page_size: '1001' })}`)
  t.equal(capped.statusCode, 400, 'page_size above 1000: 400')
})


t.test('ETag on services, service definition and discovery; If-None-Match → 304', async (t) => {
  const tags = new Set<string>()
  for (const path of ['services.json', 'services.xml', 'services/pothole.json', 'services/pothole.xml', 'discovery.json', 'discovery.xml']) {
    const first = await get(path)
    t.equal(first.statusCode, 200)
    const etag = first.headers.etag as string
    t.match(etag, /^(W\/)?"[^"]+"$/, `${path}: an ETag`)
    tags.add(etag)
    const again = await get(path)
    t.equal(again.headers.etag, etag, `${path}: stable`)
    const cached = await get(path, { 'if-none-match': etag })
    t.equal(cached.statusCode, 304, `${path}: If-None-Match → 304`)
    t.equal(cached.body, '', 'with no body')
    const stale = await get(path, { 'if-none-match': '"something-else"' })
    t.equal(stale.statusCode, 200, `${path}: another tag → 200`)
    t.equal(stale.body, first.body)
  }
  t.equal(tags.size, 6, 'each representation has its own tag')
})

t.test('gzip and br compress bodies that decompress to the same bytes', async (t) => {
  for (const path of ['services.json', 'services.xml', 'requests.json', 'services/pothole.json']) {
    const identity = await get(path)
    t.equal(identity.headers['content-encoding'], undefined, `${path}: uncompressed by default`)
    t.ok(identity.rawPayload.length > 1024, `${path}: large enough to be compressed`)
    const gzip = await get(path, { 'accept-encoding': 'gzip' })
    t.equal(gzip.statusCode, 200)
    t.equal(gzip.headers['content-encoding'], 'gzip', `${path}: gzip`)
    t.ok(gzip.rawPayload.length < identity.rawPayload.length, 'smaller')
    t.equal(gunzipSync(gzip.rawPayload).toString('utf8'), identity.body, 'gunzips to the same body')
    const br = await get(path, { 'accept-encoding': 'br' })
    t.equal(br.headers['content-encoding'], 'br', `${path}: br`)
    t.ok(br.rawPayload.length < identity.rawPayload.length, 'smaller')
    t.equal(brotliDecompressSync(br.rawPayload).toString('utf8'), identity.body, 'decompresses to the same body')
    t.match(br.headers.vary, /accept-encoding/i, 'Vary: Accept-Encoding')
  }
})

t.test('catalog answers: If-None-Match lists, * and weak comparison; the encodings a client prefers', async (t) => {
  const first = await get('services.json')
  const etag = first.headers.etag as string
  t.match(etag, /^W\//, 'a weak tag: every encoding of the document shares it')
  for (const header of [`"other", ${etag}`, '*', etag.replace(/^W\//, ''), ` ${etag} ,"x"`]) {
    const res = await get('services.json', { 'if-none-match': header, 'accept-encoding': 'br' })
    t.equal(res.statusCode, 304, `If-None-Match: ${header} → 304`)
    t.equal(res.rawPayload.length, 0, 'no body')
    t.equal(res.headers['content-encoding'], undefined, 'and no encoding on a 304')
    t.equal(res.headers.etag, etag, 'the 304 repeats the tag')
  }
  t.equal((await get('services.json', { 'if-none-match': '"other", W/"another"' })).statusCode, 200, 'no tag matches → 200')

  const cases: [string, string | undefined][] = [
    ['gzip;q=0.5, br;q=0.9', 'br'],
    ['br;q=0, gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['deflate', undefined],
    ['identity', undefined],
    ['*', 'br'],
    ['br;q=0, *', 'gzip'],
    ['br;q=0, gzip;q=0.0, *', undefined],
    ['GZIP', 'gzip'],
  ]
  for (const [accept, expected] of cases) {
    const res = await get('services.json', { 'accept-encoding': accept })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-encoding'], expected, `Accept-Encoding: ${accept} → ${expected ?? 'identity'}`)
    t.match(res.headers.vary, /accept-encoding/i, 'Vary: Accept-Encoding on every variant')
    const body = expected === 'br' ? brotliDecompressSync(res.rawPayload) : expected === 'gzip' ? gunzipSync(res.rawPayload) : res.rawPayload
    t.equal(body.toString('utf8'), first.body, 'the same document')
  }

  const head = await app.inject({ method: 'HEAD', url: '/open311/v2/services.xml', headers: { 'accept-encoding': 'gzip' } })
  t.equal(head.statusCode, 200)
  t.equal(head.headers['content-encoding'], 'gzip', 'HEAD announces the encoding a GET would use')
  t.equal(head.body, '', 'with no body')

  // A small document is sent as it is: compressing it would not pay for its header.
  const small = await get('services/dead-animal.json', { 'accept-encoding': 'gzip, br' })
  t.equal(small.statusCode, 200)
  t.ok(small.rawPayload.length < 1024, 'a definition under 1 KB')
  t.equal(small.headers['content-encoding'], undefined, 'is not compressed')
  t.same(JSON.parse(small.body), (await get('services/dead-animal.json')).json())
})

t.test('a catalog change: concurrent requests all get the new document, rendered once for all', async (t) => {
  const before = (await get('services.json')).headers.etag
  await app.db.execute(sql`update jurisdictions set catalog_changed_at = clock_timestamp()`)
  forgetJurisdictions(app.db)
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get('services.json', i % 2 ? { 'accept-encoding': 'br' } : {})))
  t.same(new Set(answers.map((a) => a.statusCode)), new Set([200]))
  const tags = new Set(answers.map((a) => a.headers.etag))
  t.equal(tags.size, 1, 'one tag for all twenty')
  t.ok(answers.some((a) => a.headers['content-encoding'] === 'br'), 'brotli for those that asked')
  t.same(JSON.parse(brotliDecompressSync(answers[1]!.rawPayload).toString('utf8')), answers[0]!.json(), 'the same document')
  t.equal([...tags][0], before, 'the catalog itself did not change, so neither does the tag')
})

t.test('unknown service codes leave nothing stored behind: a client cannot grow the catalog cache', async (t) => {
  await get('services/pothole.json')
  const stored = storedCatalogDocuments(app.db)
  for (let i = 0; i < 50; i++) {
    const res = await get(`services/no-such-service-${i}.${i % 2 ? 'xml' : 'json'}`)
    t.equal(res.statusCode, 404)
  }
  t.equal(storedCatalogDocuments(app.db), stored, 'the same number of stored documents as before the 404s')
  t.equal((await get('services/pothole.json')).statusCode, 200, 'known documents still answer')
})

t.test('jurisdictions: a burst of requests on an expired copy shares one query', async (t) => {
  forgetJurisdictions(app.db)
  const resolved = await Promise.all(Array.from({ length: 20 }, () => resolveJurisdiction(app.db, undefined)))
  t.equal(new Set(resolved).size, 1, 'all twenty hold the very same row object: one load')
  t.equal(resolved[0]!.id, 'demo.open311.city')
  forgetJurisdictions(app.db)
  t.not(await resolveJurisdiction(app.db, undefined), resolved[0], 'after a forget, a fresh load')
})

t.test('an empty jurisdiction_id counts as absent on the catalog documents too', async (t) => {
  for (const path of ['services.json', 'services/pothole.xml', 'discovery.json']) {
    const plain = await get(path)
    const empty = await get(`${path}?jurisdiction_id=`)
    t.equal(empty.statusCode, 200, `${path}?jurisdiction_id=`)
    t.equal(empty.body, plain.body, 'the same document')
  }
})

t.test('CORS: any origin may read', async (t) => {
  for (const path of ['services.json', 'requests.json', 'discovery.xml', `requests/${f('c1').publicId}.json`]) {
    const res = await get(path, { origin: 'https://app.example' })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['access-control-allow-origin'], '*', `${path}: allow-origin *`)
  }
  const paged = await get(`requests.json${qs({ page_size: '1' })}`, { origin: 'https://app.example' })
  t.match(paged.headers['access-control-expose-headers'], /x-next-page-url/i, 'paging headers are readable from a browser')
  t.match(paged.headers['access-control-expose-headers'], /link/i)
})

t.test('405 with Allow for methods a resource does not answer, in the spec error format', async (t) => {
  const cases: [string, string, string][] = [
    ['DELETE', 'requests.json', 'GET, HEAD, POST'],
    ['PUT', 'requests.json', 'GET, HEAD, POST'],
    ['PATCH', `requests/${f('c1').publicId}.json`, 'GET, HEAD'],
    ['POST', 'services.json', 'GET, HEAD'],
    ['DELETE', 'services/pothole.json', 'GET, HEAD'],
    ['POST', 'discovery.json', 'GET, HEAD'],
  ]
  for (const [method, path, allow] of cases) {
    const res = await app.inject({ method: method as 'DELETE', url: `/open311/v2/${path}` })
    t.equal(res.statusCode, 405, `${method} ${path}`)
    t.equal(res.headers.allow, allow)
    t.match(res.headers['content-type'], /^application\/json/)
    t.match(res.json(), [{ code: 405, description: new RegExp(method) }])
  }
  for (const [method, path, allow] of [
    ['DELETE', 'requests.xml', 'GET, HEAD, POST'],
    ['POST', 'services.xml', 'GET, HEAD'],
  ] as const) {
    const res = await app.inject({ method, url: `/open311/v2/${path}` })
    t.equal(res.statusCode, 405, `${method} ${path}`)
    t.equal(res.headers.allow, allow)
    t.match(res.headers['content-type'], /^text\/xml/)
    t.match(res.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
    t.match(xml.parse(res.body), { errors: { error: [{ code: '405', description: new RegExp(method) }] } })
  }
  const stillThere = await get('requests.json')
  t.equal(stillThere.statusCode, 200, 'nothing was deleted')
})

t.test('unknown routes under /open311/v2: 404 in the requested format', async (t) => {
  for (const path of ['nothing.xml', `requests/${f('c1').publicId}/notes.xml`, 'services/pothole/attributes.xml']) {
    const res = await get(path)
    t.equal(res.statusCode, 404, path)
    t.match(res.headers['content-type'], /^text\/xml/)
    t.match(res.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
    t.match(xml.parse(res.body), { errors: { error: [{ code: '404', description: /no resource/ }] } })
  }
  const json = await get('nothing.json')
  t.equal(json.statusCode, 404)
  t.match(json.json(), [{ code: 404, description: /no resource/ }])
})
