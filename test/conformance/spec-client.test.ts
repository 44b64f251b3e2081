/**
 * Independent conformance check: a spec-only Open311 GeoReport v2 client (./spec-client.ts)
 * walks every step a real client (FixMyStreet, `three`) does, against the server listening on a
 * real port, in both XML and JSON, and checks the spec's wire rules on every answer.
 *
 * Spec references (S1 = GeoReport v2, S2 = Service Discovery, S3 = Spark convention) are the
 * sections of /work/shared/open311/spec-digest.md.
 */
import t, { type Test } from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import {
  type Answer,
  bool,
  type Form,
  type Format,
  listOf,
  nestedList,
  objectOf,
  OUTPUT_DATETIME,
  type Rec,
  SpecClient,
  text,
  w3Utc,
  walk,
} from './spec-client.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

/** The assertions this file uses (a tap subtest). */
type Check = Pick<Test, 'ok' | 'equal' | 'fail' | 'notOk' | 'same' | 'comment'>

/** For reading a definition outside a test (the checks were made in the walk). */
const quiet = { ok: () => true, equal: () => true, fail: () => true, notOk: () => true, same: () => true, comment: () => {} } as unknown as Check

const SPEC_URI = 'http://wiki.open311.org/GeoReport_v2'
const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
const DATETIME_KEYS = new Set(['requested_datetime', 'updated_datetime', 'expected_datetime', 'datetime'])
const ID_KEYS = new Set(['service_code', 'service_request_id', 'token', 'update_id', 'address_id', 'zipcode', 'account_id'])
/** S1 §2.5: the elements of a `request` in GET requests / GET request. */
const REQUEST_FIELDS = new Set([
  'service_request_id',
  'status',
  'status_notes',
  'service_name',
  'service_code',
  'description',
  'agency_responsible',
  'service_notice',
  'requested_datetime',
  'updated_datetime',
  'expected_datetime',
  'address',
  'address_id',
  'zipcode',
  'lat',
  'long',
  'media_url',
])
const SERVICE_FIELDS = new Set(['service_code', 'service_name', 'description', 'metadata', 'type', 'keywords', 'group'])
const ATTRIBUTE_FIELDS = ['variable', 'code', 'datatype', 'required', 'datatype_description', 'order', 'description']
const DATATYPES = new Set(['string', 'number', 'datetime', 'text', 'singlevaluelist', 'multivaluelist'])
const REPORTER = { email: 'spec-client@example.org', first_name: 'Spec', last_name: 'Client', phone: '555-0100' }

// ---------------------------------------------------------------------------------------------
// Start the real server on a real port.

const { app } = await buildTestApp(t, {}, { workers: true })
await loadDemoCatalog(app.db)
const apiKey = rawKey(await createApiKey(app.db, { name: 'spec-client' }, SERVER_ACTOR))
const address = await app.listen({ port: 0, host: '127.0.0.1' })
const origin = new URL(address).origin
const BASE = `${origin}/open311/v2/`
t.comment(`server under test: ${BASE}`)

/** createApiKey's answer is opaque to this client: accept the raw key or an object carrying it. */
function rawKey(created: unknown): string {
  if (typeof created === 'string') return created
  if (created && typeof created === 'object') {
    for (const k of ['key', 'rawKey', 'raw_key', 'apiKey', 'api_key', 'secret', 'token', 'plaintext']) {
      const v = (created as Rec)[k]
      if (typeof v === 'string' && v.length > 0) return v
    }
  }
  throw new Error(`cannot find the raw API key in createApiKey's answer (keys: ${Object.keys(created ?? {}).join(', ')})`)
}

// ---------------------------------------------------------------------------------------------
// Wire rules checked on every answer.

function describe(a: Answer): string {
  return `${a.method} ${a.url.replace(origin, '')} → ${a.status}`
}

function checkWire(t: Check, a: Answer, format: Format): void {
  const where = describe(a)
  if (format === 'xml') {
    t.ok(/^text\/xml;\s*charset=utf-8/i.test(a.contentType), `${where}: Content-Type text/xml; charset=utf-8 (S1 §1.1)`, {
      found: a.contentType,
    })
    t.ok(a.text.startsWith(XML_DECLARATION), `${where}: XML starts with ${XML_DECLARATION} (S1 §1.1)`, {
      found: a.text.slice(0, 60),
    })
    t.ok(!/\sxmlns(:[\w.-]+)?\s*=/.test(a.text), `${where}: XML declares no namespace (S1 §1.1)`)
  } else {
    t.ok(
      /^application\/json;\s*charset=utf-8/i.test(a.contentType),
      `${where}: Content-Type application/json; charset=utf-8 (S1 §1.1)`,
      { found: a.contentType },
    )
  }
  if (!t.ok(a.parseError === undefined, `${where}: body is well-formed ${format}`, { error: a.parseError, body: a.text.slice(0, 300) })) {
    return
  }
  const attrs: string[] = []
  const badDates: string[] = []
  const nonStringIds: string[] = []
  for (const [path, key, value] of walk(a.doc)) {
    if (format === 'xml' && key.startsWith('@_')) attrs.push(`${path}=${text(value)}`)
    if (DATETIME_KEYS.has(key) && value !== null && value !== '' && value !== undefined) {
      if (typeof value !== 'string' || !OUTPUT_DATETIME.test(value)) badDates.push(`${path}=${JSON.stringify(value)}`)
    }
    if (format === 'json' && ID_KEYS.has(key) && value !== null && value !== undefined && typeof value !== 'string') {
      nonStringIds.push(`${path}=${JSON.stringify(value)}`)
    }
  }
  if (format === 'xml') t.ok(attrs.length === 0, `${where}: no data in XML attributes (S1 §1.1, §5)`, { found: attrs })
  t.ok(badDates.length === 0, `${where}: datetimes have second precision and an explicit offset (S1 §1.3)`, {
    found: badDates,
  })
  if (format === 'json') t.ok(nonStringIds.length === 0, `${where}: ids are JSON strings (S1 §1.2)`, { found: nonStringIds })
}

/** Spec errors: the required HTTP status and a list of {code, description} in the requested format. */
function checkError(t: Check, a: Answer, format: Format, status: number, what: string): void {
  const where = describe(a)
  t.equal(a.status, status, `${what}: HTTP ${status} (S1 §1.7)`, { body: a.text.slice(0, 300) })
  t.ok(a.status !== 422, `${what}: never 422 (clients read 422 as success, §5)`)
  t.ok(!/^\s*<(!doctype|html)/i.test(a.text), `${what}: not an HTML page`)
  checkWire(t, a, format)
  const errors = listOf(a, format, 'errors', 'error')
  if (
    !t.ok(errors && errors.length > 0, `${where}: body is a non-empty error list (${format === 'json' ? 'bare array' : '<errors><error>'}) (S1 §1.7)`, {
      body: a.text.slice(0, 300),
    })
  ) {
    return
  }
  for (const e of errors ?? []) {
    t.ok(text(e.code) !== '', `${where}: error has a code`, { error: e })
    t.ok(typeof e.description === 'string' && e.description.length > 0, `${where}: error has a description`, { error: e })
  }
}

function checkBool(t: Check, v: unknown, format: Format, what: string): boolean | undefined {
  if (format === 'json') t.ok(typeof v === 'boolean', `${what} is a JSON boolean`, { found: v })
  else t.ok(v === 'true' || v === 'false', `${what} is the XML text true/false`, { found: v })
  return bool(v)
}

// ---------------------------------------------------------------------------------------------
// Building a POST from a service definition alone.

interface Attribute {
  code: string
  datatype: string
  required: boolean
  variable: boolean
  order: number
  keys: string[]
}

function readAttributes(t: Check, def: Rec, format: Format, code: string): Attribute[] {
  const list = nestedList(def, format, 'attributes', 'attribute')
  if (!t.ok(list !== undefined, `services/${code}.${format}: attributes is a list (${format === 'json' ? 'array' : '<attributes><attribute>'}) (S1 §2.2)`, { found: def.attributes })) {
    return []
  }
  t.ok((list ?? []).length > 0, `services/${code}.${format}: metadata=true service has attributes`)
  const out: Attribute[] = []
  for (const raw of list ?? []) {
    const a = raw as Rec
    const ac = text(a.code)
    for (const f of ATTRIBUTE_FIELDS) t.ok(f in a, `services/${code}.${format}: attribute ${ac} has <${f}> (S1 §2.2)`)
    const variable = checkBool(t, a.variable, format, `services/${code}.${format}: attribute ${ac} variable`)
    const required = checkBool(t, a.required, format, `services/${code}.${format}: attribute ${ac} required`)
    const datatype = text(a.datatype)
    t.ok(DATATYPES.has(datatype), `services/${code}.${format}: attribute ${ac} datatype is a spec datatype`, { found: datatype })
    const order = a.order
    t.ok(
      format === 'json' ? Number.isInteger(order) && (order as number) > 0 : /^[1-9]\d*$/.test(text(order)),
      `services/${code}.${format}: attribute ${ac} order is a positive integer`,
      { found: order },
    )
    const keys: string[] = []
    if (datatype === 'singlevaluelist' || datatype === 'multivaluelist') {
      const values = nestedList(a, format, 'values', 'value')
      t.ok(values && values.length > 0, `services/${code}.${format}: list attribute ${ac} has values/value (S1 §2.2)`)
      for (const v of values ?? []) {
        const vr = v as Rec
        t.ok(text(vr.key) !== '' && 'name' in vr, `services/${code}.${format}: value of ${ac} has key and name`, { found: vr })
        keys.push(text(vr.key))
      }
    } else {
      t.ok(!('values' in a) || a.values === null || a.values === '', `services/${code}.${format}: non-list attribute ${ac} has no values`)
    }
    out.push({ code: ac, datatype, required: required ?? false, variable: variable ?? true, order: Number(text(order)), keys })
  }
  return out
}

/** Form fields answering the attributes, by datatype (S1 §2.3 attribute encoding). */
function attributeFields(attrs: Attribute[], only: 'required' | 'all'): Form {
  const form: Form = []
  for (const a of [...attrs].sort((x, y) => x.order - y.order)) {
    if (!a.variable) continue
    if (only === 'required' && !a.required) continue
    switch (a.datatype) {
      case 'string':
        form.push([`attribute[${a.code}]`, 'x'])
        break
      case 'number':
        form.push([`attribute[${a.code}]`, '3'])
        break
      case 'datetime':
        form.push([`attribute[${a.code}]`, w3Utc(Date.now() - 3_600_000)])
        break
      case 'text':
        form.push([`attribute[${a.code}]`, 'y'])
        break
      case 'singlevaluelist':
        if (a.keys[0] !== undefined) form.push([`attribute[${a.code}]`, a.keys[0]])
        break
      case 'multivaluelist':
        for (const k of a.keys.slice(0, 2)) form.push([`attribute[${a.code}][]`, k])
        break
    }
  }
  return form
}

async function sleep(ms: number) {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

// ---------------------------------------------------------------------------------------------
// Location: somewhere plausible for the demo city. A client learns it from the city's own
// requests (GET requests); the spec has no other way to say where a jurisdiction is.

async function pickLocation(): Promise<{ lat: string; long: string; source: string }> {
  const res = await new SpecClient(BASE, 'json').get('requests')
  const list = listOf(res, 'json', 'service_requests', 'request') ?? []
  const withPoint = list.find((r) => r.lat !== null && r.lat !== undefined && r.lat !== '' && r.long !== null && r.long !== '')
  if (withPoint) return { lat: text(withPoint.lat), long: text(withPoint.long), source: `existing request ${text(withPoint.service_request_id)}` }
  return { lat: FALLBACK.lat, long: FALLBACK.long, source: 'fallback' }
}
const FALLBACK = { lat: '41.8781', long: '-87.6298' }
const LOCATION = await pickLocation()
t.comment(`location used for POSTs: ${LOCATION.lat},${LOCATION.long} (${LOCATION.source})`)

// ---------------------------------------------------------------------------------------------
// The client walk, once per format.

interface Created {
  id: string
  service_code: string
  format: Format
}

for (const format of ['xml', 'json'] as const) {
  t.test(`${format}: a spec client's full walk`, async (t) => {
    const c = new SpecClient(BASE, format)
    let endpointBase = BASE
    const services: Rec[] = []
    const definitions = new Map<string, Attribute[]>()
    const created: Created[] = []
    let windowStart = 0

    await t.test('discovery: find the GeoReport_v2 endpoint and its formats (S2)', async (t) => {
      const a = await c.get('discovery')
      t.equal(a.status, 200, describe(a))
      checkWire(t, a, format)
      const d = objectOf(a, format, 'discovery')
      if (!t.ok(d, `discovery.${format} is a discovery document (${format === 'json' ? 'object' : '<discovery>'})`)) return
      for (const f of ['changeset', 'contact', 'key_service', 'endpoints']) t.ok(f in (d ?? {}), `discovery has ${f} (S2)`)
      const endpoints = nestedList(d ?? {}, format, 'endpoints', 'endpoint') as Rec[] | undefined
      t.ok(endpoints && endpoints.length > 0, `discovery endpoints is a list (${format === 'json' ? 'array' : '<endpoints><endpoint>'})`)
      const geo = (endpoints ?? []).filter((e) => text(e.specification) === SPEC_URI)
      if (!t.ok(geo.length > 0, `an endpoint has specification ${SPEC_URI}`, { endpoints })) return
      for (const e of geo) {
        for (const f of ['specification', 'url', 'changeset', 'type', 'formats']) t.ok(f in e, `endpoint has ${f} (S2)`)
        t.ok(['production', 'test'].includes(text(e.type)), 'endpoint type is production|test', { found: e.type })
        const formats = (nestedList(e, format, 'formats', 'format') ?? []).map(text)
        t.ok(formats.includes('text/xml'), 'endpoint formats include text/xml (XML is mandatory, S1 §1.1)', { formats })
        t.ok(formats.includes('application/json'), 'endpoint formats include application/json', { formats })
        if (format === 'json') t.ok(Array.isArray(e.formats) && (e.formats as unknown[]).every((f) => typeof f === 'string'), 'JSON formats is an array of strings (S3)')
      }
      const url = text(geo[0]?.url)
      let path = ''
      try {
        path = new URL(url).pathname
      } catch {
        t.fail('endpoint url is an absolute URL', { url })
      }
      t.equal(path.replace(/\/$/, ''), '/open311/v2', 'endpoint url points at the GeoReport base', { url })
      // The test app advertises its configured PUBLIC_BASE_URL; we talk to the real port with the
      // same path (a deployment artefact, not a spec matter).
      endpointBase = `${origin}${path.endsWith('/') ? path : `${path}/`}`
      t.comment(`discovery url ${url} → using ${endpointBase}`)
    })

    const client = new SpecClient(endpointBase, format)

    await t.test('GET services: the list, and which need a definition (S1 §2.1)', async (t) => {
      const a = await client.get('services')
      t.equal(a.status, 200, describe(a))
      checkWire(t, a, format)
      const list = listOf(a, format, 'services', 'service')
      if (!t.ok(list, `services is a list (${format === 'json' ? 'bare array' : '<services><service>'}) (S3)`)) return
      t.ok((list ?? []).length > 0, 'the demo catalog has services')
      for (const s of list ?? []) {
        const code = text(s.service_code)
        for (const f of ['service_code', 'service_name', 'description', 'metadata', 'type']) t.ok(f in s, `service ${code} has ${f}`)
        const extra = Object.keys(s).filter((k) => !SERVICE_FIELDS.has(k))
        t.same(extra, [], `service ${code}: only spec element names`)
        t.ok(/^[A-Za-z0-9_-]+$/.test(code), `service_code ${code} is URL-path-safe`)
        checkBool(t, s.metadata, format, `service ${code} metadata`)
        t.ok(['realtime', 'batch', 'blackbox'].includes(text(s.type)), `service ${code} type is realtime|batch|blackbox`, { found: s.type })
        services.push(s)
      }
      t.comment(
        `services: ${services.map((s) => `${text(s.service_code)}(${text(s.type)}${bool(s.metadata) ? ',metadata' : ''})`).join(' ')}`,
      )
      t.ok(services.some((s) => bool(s.metadata) === true), 'at least one service has metadata=true')
    })

    await t.test('GET service definition for every metadata=true service (S1 §2.2)', async (t) => {
      for (const s of services.filter((s) => bool(s.metadata) === true)) {
        const code = text(s.service_code)
        const a = await client.get(`services/${code}`)
        t.equal(a.status, 200, describe(a))
        checkWire(t, a, format)
        const def = objectOf(a, format, 'service_definition')
        if (!t.ok(def, `services/${code}.${format} is a service_definition (${format === 'json' ? 'object, not array' : '<service_definition>'})`)) continue
        t.equal(text(def?.service_code), code, `service_definition.service_code is ${code}`)
        definitions.set(code, readAttributes(t, def ?? {}, format, code))
      }
    })

    await t.test('POST a request to every metadata=true service, built from its definition (S1 §2.3)', async (t) => {
      windowStart = Date.now() - 1000
      for (const [code, attrs] of definitions) {
        const service = services.find((s) => text(s.service_code) === code)
        const type = text(service?.type)
        const form: Form = [
          ['api_key', apiKey],
          ['service_code', code],
          ['lat', LOCATION.lat],
          ['long', LOCATION.long],
          ['email', REPORTER.email],
          ['first_name', REPORTER.first_name],
          ['last_name', REPORTER.last_name],
          ['description', `Spec client check (${format}) for ${code}.\nSecond line.`],
          ...attributeFields(attrs, 'all'),
        ]
        const a = await client.post('requests', form)
        if (
          !t.ok(a.status >= 200 && a.status < 300, `${describe(a)}: POST ${code} accepted`, {
            body: a.text.slice(0, 400),
            form: form.filter(([k]) => k !== 'api_key'),
          })
        ) {
          if (a.status === 400 && /lat|long|location|outside|bound/i.test(a.text)) {
            t.comment(`server refused the location ${LOCATION.lat},${LOCATION.long} for ${code}: ${a.text.slice(0, 200)}`)
          }
          continue
        }
        checkWire(t, a, format)
        const list = listOf(a, format, 'service_requests', 'request')
        if (!t.ok(list && list.length === 1, `POST answer is a one-request list (${format === 'json' ? 'bare array' : '<service_requests><request>'}) (S1 §2.3, S3)`, { body: a.text.slice(0, 300) })) continue
        const r = (list ?? [])[0] ?? {}
        const id = text(r.service_request_id)
        const token = text(r.token)
        t.ok(!(id !== '' && token !== ''), `POST ${code}: service_request_id and token never together (S1 §2.3)`, { answer: r })
        if (type === 'realtime') t.ok(id !== '', `POST ${code} (realtime): service_request_id returned`, { answer: r })
        if (type === 'batch') t.ok(token !== '', `POST ${code} (batch): token returned`, { answer: r })
        if (id !== '') {
          created.push({ id, service_code: code, format })
        } else if (token !== '') {
          const resolved = await pollToken(t, client, format, token)
          if (t.ok(resolved, `token ${token} resolved to a service_request_id within ~10 s (S1 §2.4)`)) {
            created.push({ id: resolved ?? '', service_code: code, format })
          }
        } else {
          t.equal(type, 'blackbox', `POST ${code}: neither id nor token only for blackbox services`, { answer: r })
        }
      }
      t.comment(`created: ${created.map((c) => `${c.service_code}=${c.id}`).join(' ')}`)
      t.ok(created.length >= 2, 'at least two requests created to look up')
    })

    await t.test('GET requests/{id}: one request, open, right service_code, spec names (S1 §2.6)', async (t) => {
      for (const c of created) {
        const a = await client.get(`requests/${c.id}`)
        t.equal(a.status, 200, describe(a))
        checkWire(t, a, format)
        const list = listOf(a, format, 'service_requests', 'request')
        if (!t.ok(list && list.length === 1, `requests/${c.id}.${format} is a one-request list (${format === 'json' ? 'bare array' : '<service_requests><request>'}) (S1 §2.6, S3)`, { body: a.text.slice(0, 300) })) continue
        const r = (list ?? [])[0] ?? {}
        if (c === created[0]) t.comment(`sample: ${a.text.replace(/\s+/g, ' ').slice(0, 900)}`)
        t.equal(text(r.service_request_id), c.id, 'service_request_id matches')
        t.equal(r.status, 'open', 'status is open')
        t.equal(text(r.service_code), c.service_code, 'service_code matches')
        const extra = Object.keys(r).filter((k) => !REQUEST_FIELDS.has(k))
        t.same(extra, [], `request ${c.id}: only spec element names (S1 §2.5)`)
        for (const f of ['service_request_id', 'status', 'service_code', 'service_name', 'requested_datetime', 'lat', 'long']) {
          t.ok(f in r && text(r[f]) !== '', `request ${c.id} has ${f}`)
        }
        for (const pii of ['email', 'first_name', 'last_name', 'phone']) t.notOk(pii in r, `request ${c.id} does not expose ${pii} (§3.12)`)
        if (format === 'json') {
          t.ok(typeof r.lat === 'number', 'JSON lat is a number (§5)', { found: r.lat })
          t.ok(typeof r.long === 'number', 'JSON long is a number (§5)', { found: r.long })
        }
        t.ok(Math.abs(Number(text(r.lat)) - Number(LOCATION.lat)) < 1e-5, 'lat is what was posted', { found: r.lat })
        t.ok(Math.abs(Number(text(r.long)) - Number(LOCATION.long)) < 1e-5, 'long is what was posted', { found: r.long })
      }
    })

    await t.test('GET requests?service_request_id=ID1,ID2 returns both (FixMyStreet lookup, S1 §2.5)', async (t) => {
      const [one, two] = created
      if (!t.ok(one && two, 'two ids to look up')) return
      const a = await client.get('requests', { service_request_id: `${one?.id},${two?.id}` })
      t.equal(a.status, 200, describe(a))
      checkWire(t, a, format)
      const list = listOf(a, format, 'service_requests', 'request') ?? []
      const ids = list.map((r) => text(r.service_request_id))
      t.ok(ids.includes(one?.id ?? ''), `${one?.id} present`, { ids })
      t.ok(ids.includes(two?.id ?? ''), `${two?.id} present`, { ids })
      t.equal(list.length, 2, 'exactly the two requested')
    })

    await t.test('GET requests with start_date/end_date = the last hour in UTC Z form (S1 §2.5)', async (t) => {
      // Let the wall clock pass the creation second so an exclusive end_date still covers it.
      // end_date is exclusive and second-precise: end at the next whole second so every
      // request created so far is before it.
      const end = Math.ceil((Date.now() + 1) / 1000) * 1000
      const start = end - 3_600_000
      const a = await client.get('requests', { start_date: w3Utc(start), end_date: w3Utc(end) })
      t.equal(a.status, 200, describe(a))
      checkWire(t, a, format)
      const list = listOf(a, format, 'service_requests', 'request')
      if (!t.ok(list, `requests.${format} is a list`)) return
      const ids = (list ?? []).map((r) => text(r.service_request_id))
      for (const c of created) t.ok(ids.includes(c.id), `request ${c.id} (created just now) is in the last-hour window`, { ids })
      const others = (list ?? []).filter((r) => !created.some((c) => c.id === text(r.service_request_id)))
      t.comment(`in the window but not created by this walk: ${others.map((r) => `${text(r.service_request_id)}(${text(r.service_code)})`).join(' ') || 'none'}`)
      for (const r of list ?? []) {
        const when = Date.parse(text(r.requested_datetime))
        t.ok(when >= start && when <= end, `request ${text(r.service_request_id)} requested_datetime is inside the window asked for`, {
          requested_datetime: r.requested_datetime,
          start: w3Utc(start),
          end: w3Utc(end),
        })
        t.equal(r.status === 'open' || r.status === 'closed', true, `request ${text(r.service_request_id)} status is open|closed (§3.2)`)
      }
    })

    await t.test('GET servicerequestupdates with start_date/end_date = last two hours (mySociety §4.6b)', async (t) => {
      const end = Math.floor(Date.now() / 1000) * 1000
      const start = end - 2 * 3_600_000
      const a = await client.get('servicerequestupdates', { start_date: w3Utc(start), end_date: w3Utc(end) })
      t.equal(a.status, 200, describe(a))
      checkWire(t, a, format)
      const list = listOf(a, format, 'service_request_updates', 'request_update')
      if (!t.ok(list, `servicerequestupdates.${format} is a list (${format === 'json' ? 'bare array' : '<service_request_updates><request_update>'})`, { body: a.text.slice(0, 300) })) return
      t.comment(`${(list ?? []).length} update(s) in the last two hours`)
      for (const u of list ?? []) {
        t.ok(text(u.update_id) !== '', 'update has an update_id (FixMyStreet ignores updates without one)', { update: u })
        t.ok(text(u.service_request_id) !== '', 'update has a service_request_id', { update: u })
        t.ok(text(u.updated_datetime) !== '', 'update has an updated_datetime', { update: u })
        const when = Date.parse(text(u.updated_datetime))
        t.ok(when >= start && when <= end, 'updated_datetime inside the window asked for', { update: u })
      }
    })
  })
}

async function pollToken(t: Check, client: SpecClient, format: Format, token: string): Promise<string | undefined> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const a = await client.get(`tokens/${token}`)
    t.equal(a.status, 200, describe(a))
    checkWire(t, a, format)
    const list = listOf(a, format, 'service_requests', 'request')
    t.ok(list && list.length === 1, `tokens/${token}.${format} is a one-request list (${format === 'json' ? 'bare array' : '<service_requests><request>'}) (S1 §2.4, S3)`, { body: a.text.slice(0, 300) })
    const r = list?.[0]
    if (r) t.equal(text(r.token), token, 'token echoed')
    const id = text(r?.service_request_id)
    if (id !== '') return id
    if (Date.now() > deadline) {
      t.comment(`token ${token} still pending after ~10 s; last answer: ${a.text.replace(/\s+/g, ' ').slice(0, 300)}`)
      return undefined
    }
    await sleep(500)
  }
}

// ---------------------------------------------------------------------------------------------
// Error behaviour (S1 §1.7): 403 for api_key, 404 for unknown resources, 400 for bad input.

for (const format of ['xml', 'json'] as const) {
  t.test(`${format}: spec errors`, async (t) => {
    const client = new SpecClient(BASE, format)
    const services = listOf(await client.get('services'), format, 'services', 'service') ?? []
    const realtime = services.find((s) => text(s.type) === 'realtime') ?? services[0] ?? {}
    const code = text(realtime.service_code)
    let attrs: Attribute[] = []
    if (bool(realtime.metadata)) {
      const def = objectOf(await client.get(`services/${code}`), format, 'service_definition')
      attrs = def ? readAttributes(quiet, def, format, code) : []
    }
    const valid = (): Form => [
      ['service_code', code],
      ['lat', LOCATION.lat],
      ['long', LOCATION.long],
      ['email', REPORTER.email],
      ['first_name', REPORTER.first_name],
      ['description', 'error-path check'],
      ...attributeFields(attrs, 'required'),
    ]

    await t.test('sanity: the same POST with a valid key is accepted', async (t) => {
      const a = await client.post('requests', [['api_key', apiKey], ...valid()])
      t.ok(a.status >= 200 && a.status < 300, describe(a), { body: a.text.slice(0, 300) })
    })

    await t.test('POST without api_key → 403', async (t) => {
      checkError(t, await client.post('requests', valid()), format, 403, 'no api_key')
    })
    await t.test('POST with api_key= (empty, as `three` sends it) → 403', async (t) => {
      checkError(t, await client.post('requests', [['api_key', ''], ...valid()]), format, 403, 'empty api_key')
    })
    await t.test('POST with a wrong api_key → 403', async (t) => {
      checkError(t, await client.post('requests', [['api_key', 'not-a-real-key'], ...valid()]), format, 403, 'wrong api_key')
    })

    await t.test('GET service definition of an unknown service_code → 404', async (t) => {
      checkError(t, await client.get('services/no_such_service_zz'), format, 404, 'unknown service_code')
    })
    await t.test('GET an unknown request id → 404', async (t) => {
      // Same shape as a real id, so "unknown" cannot be mistaken for "malformed".
      const any = text(listOf(await client.get('requests'), format, 'service_requests', 'request')?.[0]?.service_request_id)
      const unknown = /^\d+$/.test(any) ? '987654321' : any !== '' ? `${any.slice(0, -1)}${any.endsWith('0') ? '1' : '0'}` : '987654321'
      t.comment(`known id shape: ${any} → probing ${unknown}`)
      checkError(t, await client.get(`requests/${unknown}`), format, 404, `unknown request id ${unknown}`)
    })
    await t.test('GET an unknown token → 404 (S1 §2.4)', async (t) => {
      checkError(t, await client.get('tokens/no-such-token-0'), format, 404, 'unknown token')
    })
    await t.test('POST to an unknown service_code → 404 (S1 §2.3)', async (t) => {
      const form = valid().filter(([k]) => k !== 'service_code' && !k.startsWith('attribute['))
      checkError(t, await client.post('requests', [['api_key', apiKey], ['service_code', 'no_such_service_zz'], ...form]), format, 404, 'POST unknown service_code')
    })

    await t.test('POST with lat=abc → 400', async (t) => {
      const form = valid().map(([k, v]): [string, string] => (k === 'lat' ? [k, 'abc'] : [k, v]))
      checkError(t, await client.post('requests', [['api_key', apiKey], ...form]), format, 400, 'lat=abc')
    })
    await t.test('POST without service_code → 400', async (t) => {
      const form = valid().filter(([k]) => k !== 'service_code')
      checkError(t, await client.post('requests', [['api_key', apiKey], ...form]), format, 400, 'missing service_code')
    })
    await t.test('POST without any location → 400', async (t) => {
      const form = valid().filter(([k]) => k !== 'lat' && k !== 'long')
      checkError(t, await client.post('requests', [['api_key', apiKey], ...form]), format, 400, 'no location')
    })
    await t.test('POST missing a required attribute → 400', async (t) => {
      const req = attrs.find((a) => a.required && a.variable)
      if (!req) {
        t.comment(`service ${code} has no required attribute; skipped`)
        return
      }
      const form = valid().filter(([k]) => !k.startsWith(`attribute[${req.code}]`))
      checkError(t, await client.post('requests', [['api_key', apiKey], ...form]), format, 400, `missing attribute[${req.code}]`)
    })
    await t.test('GET requests with start_date=not-a-date → 400', async (t) => {
      checkError(t, await client.get('requests', { start_date: 'not-a-date' }), format, 400, 'start_date=not-a-date')
    })
    await t.test('GET requests with status=bogus → 400', async (t) => {
      checkError(t, await client.get('requests', { status: 'bogus' }), format, 400, 'status=bogus')
    })
  })
}
