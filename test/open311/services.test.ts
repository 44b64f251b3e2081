import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const xml = new XMLParser({ isArray: (name) => ['service', 'error'].includes(name) })

// One database per test file; subtests share it and run in order.
const { app } = await buildTestApp(t)
await loadDemoCatalog(app.db)

t.test('GET services.json lists the demo catalog as a bare Spark array', async (t) => {
  const res = await app.inject('/open311/v2/services.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
  const body = res.json()
  t.ok(Array.isArray(body))
  t.ok(body.length >= 12, 'at least 12 demo services')
  const pothole = body.find((s: { service_code: string }) => s.service_code === 'pothole')
  t.match(pothole, { service_name: String, metadata: true, type: 'realtime', group: String, keywords: String })
  t.same(Object.keys(pothole).sort(), ['description', 'group', 'keywords', 'metadata', 'service_code', 'service_name', 'type'])
})

t.test('GET services.xml carries the same data with the spec element names', async (t) => {
  const [jsonRes, xmlRes] = await Promise.all([app.inject('/open311/v2/services.json'), app.inject('/open311/v2/services.xml')])
  t.equal(xmlRes.statusCode, 200)
  t.match(xmlRes.headers['content-type'], /^text\/xml; charset=utf-8/)
  t.match(xmlRes.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
  const parsed = xml.parse(xmlRes.body)
  const services = parsed.services.service
  t.equal(services.length, jsonRes.json().length)
  const first = services[0]
  t.equal(first.service_code, jsonRes.json()[0].service_code)
  t.equal(String(first.metadata), String(jsonRes.json()[0].metadata), 'booleans are true/false text')
})

t.test('unknown format and unknown routes answer 404 in the spec error format', async (t) => {
  const csv = await app.inject('/open311/v2/services.csv')
  t.equal(csv.statusCode, 404)
  t.match(csv.json(), [{ code: 404, description: /format/ }])
  const missingXml = await app.inject('/open311/v2/nothing.xml')
  t.equal(missingXml.statusCode, 404)
  t.match(xml.parse(missingXml.body).errors.error[0], { code: 404, description: /no resource/ })
})

t.test('jurisdiction_id: optional with one jurisdiction, must match when given', async (t) => {
  t.equal((await app.inject('/open311/v2/services.json?jurisdiction_id=demo.open311.city')).statusCode, 200)
  t.equal((await app.inject('/open311/v2/services.json?jurisdiction_id=')).statusCode, 200, 'empty counts as absent')
  const unknown = await app.inject('/open311/v2/services.xml?jurisdiction_id=elsewhere.example')
  t.equal(unknown.statusCode, 404)
  t.match(xml.parse(unknown.body).errors.error[0].description, /elsewhere\.example/)
})

t.test('with several jurisdictions, jurisdiction_id is required', async (t) => {
  const { importCatalog } = await import('../../src/domain/catalog/catalog.js')
  await importCatalog(app.db, {
    jurisdiction: { id: 'other.example', name: 'Other', time_zone: 'UTC', contact: '', key_service: '' },
    services: [],
  }, {}, SERVER_ACTOR)
  const res = await app.inject('/open311/v2/services.json')
  t.equal(res.statusCode, 400)
  // The error lists the ids a client may choose from.
  const required = 'jurisdiction_id is required: this server serves several jurisdictions (demo.open311.city, other.example)'
  t.same(res.json(), [{ code: 400, description: required }])
  const inXml = await app.inject('/open311/v2/services.xml')
  t.equal(inXml.statusCode, 400)
  t.match(inXml.headers['content-type'], /^text\/xml/)
  t.same(xml.parse(inXml.body).errors.error, [{ code: 400, description: required }], 'the same in the XML envelope')
  const unknown = await app.inject('/open311/v2/services.json?jurisdiction_id=elsewhere.example')
  t.same(unknown.json(), [{ code: 404, description: 'jurisdiction_id "elsewhere.example" is not served here; served: demo.open311.city, other.example' }])
  const other = await app.inject('/open311/v2/services.json?jurisdiction_id=other.example')
  t.same(other.json(), [])
})
