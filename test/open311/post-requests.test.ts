/**
 * POST /open311/v2/requests.{json,xml}: answers for realtime and batch services, attribute
 * encodings, validation (every refusal a spec error list naming the field, in both formats),
 * API keys, body formats, Idempotency-Key, jurisdiction_id, body limit and rate limits.
 * Every refused POST is checked to have written nothing.
 */
import { sql } from 'drizzle-orm'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { XMLParser } from 'fast-xml-parser'
import t, { type Test } from 'tap'
import { type Db, queryRows } from '../../src/db/database.js'
import { createApiKey, revokeApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR, systemActor } from '../../src/domain/audit/audit.js'

// Text stays text (ids, codes): the XML answers are compared as strings.
const xml = new XMLParser({
  parseTagValue: false,
  isArray: (name) => ['request', 'error'].includes(name),
})

type Fields = Record<string, string | string[]> | [string, string][]
type Format = 'json' | 'xml'

/** An urlencoded body; arrays and pair lists give repeated keys. */
function form(fields: Fields): string {
  const params = new URLSearchParams()
  const pairs = Array.isArray(fields) ? fields : Object.entries(fields).flatMap(([k, v]) => [v].flat().map((x) => [k, x] as [string, string]))
  for (const [k, v] of pairs) params.append(k, v)
  return params.toString()
}

const BOUNDARY = '----open311TestBoundary7MA4YWxkTrZu0gW'

/** A hand-built multipart/form-data body; a part with a filename is a file part. */
function multipart(parts: { name: string; value: string; filename?: string }[]): string {
  return (
    parts
      .map(
        (p) =>
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"` +
          (p.filename ? `; filename="${p.filename}"\r\nContent-Type: image/jpeg` : '') +
          `\r\n\r\n${p.value}\r\n`,
      )
      .join('') + `--${BOUNDARY}--\r\n`
  )
}

interface PostOptions {
  headers?: Record<string, string>
  query?: string
  contentType?: string
  remoteAddress?: string
}

function poster(app: FastifyInstance) {
  return (format: Format, body: string, options: PostOptions = {}) =>
    app.inject({
      method: 'POST',
      url: `/open311/v2/requests.${format}${options.query ? `?${options.query}` : ''}`,
      payload: body,
      headers: { 'content-type': options.contentType ?? 'application/x-www-form-urlencoded; charset=utf-8', ...options.headers },
      ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    })
}

interface Counts {
  service_requests: number
  request_reporters: number
  request_updates: number
  request_tokens: number
  idempotency_keys: number
}

async function counts(db: Db): Promise<Counts> {
  const [row] = await queryRows<Counts>(
    db,
    sql`select (select count(*) from service_requests)::int as service_requests,
               (select count(*) from request_reporters)::int as request_reporters,
               (select count(*) from request_updates)::int as request_updates,
               (select count(*) from request_tokens)::int as request_tokens,
               (select count(*) from idempotency_keys)::int as idempotency_keys`,
  )
  return row!
}

interface ErrorItem {
  code: number | string
  description: string
}

/** A spec error list in JSON: the HTTP status, the content type, every item {code, description}. */
function jsonErrors(t: Test, res: LightMyRequestResponse, status: number, label: string): ErrorItem[] {
  t.equal(res.statusCode, status, `${label}: HTTP ${status}`)
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/, `${label}: JSON content type`)
  let body: unknown
  try {
    body = res.json()
  } catch {
    t.fail(`${label}: body is not JSON: ${res.body.slice(0, 200)}`)
    return []
  }
  if (!Array.isArray(body) || body.length === 0) {
    t.fail(`${label}: a non-empty error list`, { found: body })
    return []
  }
  for (const item of body) t.match(item, { code: status, description: /\S/ }, `${label}: error item {code: ${status}, description}`)
  return body as ErrorItem[]
}

/** A spec error list in XML: <?xml …?><errors><error><code/><description/></error>…</errors>. */
function xmlErrors(t: Test, res: LightMyRequestResponse, status: number, label: string): ErrorItem[] {
  t.equal(res.statusCode, status, `${label}: HTTP ${status}`)
  t.match(res.headers['content-type'], /^text\/xml; charset=utf-8/, `${label}: XML content type`)
  t.match(res.body, /^<\?xml version="1.0" encoding="utf-8"\?>\s*<errors><error>/, `${label}: <errors><error> document`)
  const items = (xml.parse(res.body)?.errors?.error ?? []) as ErrorItem[]
  t.ok(items.length > 0, `${label}: at least one <error>`)
  for (const item of items) t.match(item, { code: String(status), description: /\S/ }, `${label}: <error> with code ${status}`)
  return items
}

function namesField(t: Test, errors: ErrorItem[], pattern: RegExp, label: string) {
  t.ok(
    errors.some((e) => pattern.test(e.description)),
    `${label}: an error description matches ${pattern}`,
    { found: errors.map((e) => e.description) },
  )
}

// One database per test file; subtests share it and run in order. Rate limits are raised far
// out of the way here; they get their own apps at the end.
const { app } = await buildTestApp(t, { rateLimits: { perIpPerMinute: 100_000, perKeyPerMinute: 100_000 } })
const db = app.db
await loadDemoCatalog(db)
const client = await createApiKey(db, { name: 'test client' }, SERVER_ACTOR)
const otherClient = await createApiKey(db, { name: 'second client' }, SERVER_ACTOR)
const post = poster(app)

const LOCATION = { lat: '41.8781', long: '-87.6298' }
/** A valid pothole report, api_key in the body. */
const pothole = (extra: Record<string, string | string[]> = {}): Record<string, string | string[]> => ({
  api_key: client.key,
  service_code: 'pothole',
  ...LOCATION,
  'attribute[size]': 'SMALL',
  ...extra,
})

/** POSTs in JSON and in XML; each must be refused with `status`, name every pattern, and write nothing. */
async function rejectBoth(t: Test, label: string, body: string, status: number, patterns: RegExp[], options: PostOptions = {}) {
  for (const format of ['json', 'xml'] as const) {
    const before = await counts(db)
    const res = await post(format, body, options)
    const errors = format === 'json' ? jsonErrors(t, res, status, `${label} (${format})`) : xmlErrors(t, res, status, `${label} (${format})`)
    for (const pattern of patterns) namesField(t, errors, pattern, `${label} (${format})`)
    t.same(await counts(db), before, `${label} (${format}): bad input changes nothing`)
  }
}

/** The public answers GET requests/{id}.json?extensions=true shows, by attribute code. */
async function publicAttributes(t: Test, id: string): Promise<Record<string, string[]>> {
  const res = await app.inject(`/open311/v2/requests/${id}.json?extensions=true`)
  t.equal(res.statusCode, 200, `GET requests/${id}.json?extensions=true`)
  const [request] = res.json() as { attributes: { code: string; values: string[] }[] }[]
  return Object.fromEntries((request?.attributes ?? []).map((a) => [a.code, a.values]))
}

/** Requests whose answers GET ?extensions=true must show, with the expected attributes by code. */
const shownLater: [string, Record<string, string[]>][] = []

/** The attributes column as stored, by service_request_id or by token. */
async function storedAttributes(idOrToken: { id: string } | { token: string }): Promise<Record<string, unknown>> {
  const [row] = await queryRows<{ attributes: Record<string, unknown> | string }>(
    db,
    'id' in idOrToken
      ? sql`select attributes from service_requests where public_id = ${idOrToken.id}`
      : sql`select sr.attributes from service_requests sr join request_tokens t on t.request_id = sr.id where t.token = ${idOrToken.token}`,
  )
  if (!row) throw new Error('no such request')
  return typeof row.attributes === 'string' ? JSON.parse(row.attributes) : row.attributes
}

/** POSTs and expects a realtime answer; returns the service_request_id. */
async function created(t: Test, body: string, label: string, options: PostOptions = {}): Promise<string> {
  const res = await post('json', body, options)
  t.equal(res.statusCode, 200, `${label}: 200`, res.statusCode !== 200 ? { body: res.body } : {})
  const answer = res.json() as { service_request_id?: string }[]
  t.equal(answer.length, 1, `${label}: one-element answer`)
  t.type(answer[0]?.service_request_id, 'string', `${label}: service_request_id`)
  return answer[0]?.service_request_id ?? ''
}

t.test('realtime service: a one-element list with service_request_id and no token', async (t) => {
  const before = await counts(db)
  const res = await post('json', form(pothole({ description: 'Deep hole by the curb', address_string: '233 S Wacker Dr' })))
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
  const body = res.json()
  t.ok(Array.isArray(body), 'a bare Spark array')
  t.equal(body.length, 1)
  const [answer] = body
  t.type(answer.service_request_id, 'string', 'service_request_id is a string')
  t.match(answer.service_request_id, /^[A-Za-z0-9_-]+$/, 'URL-safe id')
  t.notOk('token' in answer, 'no token for a realtime service')
  t.equal(answer.account_id, null, 'no account_id was sent')

  const after = await counts(db)
  t.equal(after.service_requests, before.service_requests + 1, 'one request row')
  t.equal(after.request_updates, before.request_updates + 1, 'one history entry')
  t.equal(after.request_tokens, before.request_tokens, 'no token row')
  t.equal(after.request_reporters, before.request_reporters, 'no reporter row without personal data')

  const got = await app.inject(`/open311/v2/requests/${answer.service_request_id}.json`)
  t.equal(got.statusCode, 200)
  t.match(got.json(), [
    {
      service_request_id: answer.service_request_id,
      service_code: 'pothole',
      status: 'open',
      description: 'Deep hole by the curb',
      address: '233 S Wacker Dr',
    },
  ])
  t.ok(Math.abs(got.json()[0].lat - 41.8781) < 1e-6 && Math.abs(got.json()[0].long - -87.6298) < 1e-6, 'lat/long stored')
})

t.test('realtime service in XML: <service_requests><request> with service_request_id', async (t) => {
  const res = await post('xml', form(pothole()))
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/xml; charset=utf-8/)
  t.match(res.body, /^<\?xml version="1.0" encoding="utf-8"\?>\s*<service_requests><request>/, 'never a bare <request>')
  const doc = xml.parse(res.body)
  t.equal(doc.service_requests.request.length, 1)
  const [request] = doc.service_requests.request
  t.match(request.service_request_id, /^[A-Za-z0-9_-]+$/)
  t.notOk('token' in request, 'no <token>')
  const got = await app.inject(`/open311/v2/requests/${request.service_request_id}.xml`)
  t.equal(got.statusCode, 200, 'the id is retrievable')
  t.equal(xml.parse(got.body).service_requests.request[0].service_code, 'pothole')
})

t.test('batch services: a token and no service_request_id', async (t) => {
  const before = await counts(db)
  const vehicle = await post(
    'json',
    form({
      api_key: client.key,
      service_code: 'abandoned-vehicle',
      address_string: '1200 S State St',
      'attribute[license_plate]': 'ABC 1234 (IL)',
      'attribute[first_seen]': '2024-05-10T18:30:00-05:00',
    }),
  )
  t.equal(vehicle.statusCode, 200, 'abandoned-vehicle accepted', { body: vehicle.body })
  const [vAnswer] = vehicle.json()
  t.type(vAnswer.token, 'string')
  t.ok(vAnswer.token.length >= 8, 'a non-trivial token')
  t.notOk('service_request_id' in vAnswer, 'no service_request_id with a token')

  const leak = await post(
    'xml',
    form({ api_key: client.key, service_code: 'water-leak', ...LOCATION, 'attribute[leak_location]': 'HYDRANT', 'attribute[flow_rate]': 'STREAM' }),
  )
  t.equal(leak.statusCode, 200, 'water-leak accepted', { body: leak.body })
  t.match(leak.body, /<service_requests><request>/)
  const [lAnswer] = xml.parse(leak.body).service_requests.request
  t.type(lAnswer.token, 'string')
  t.notOk('service_request_id' in lAnswer, 'no <service_request_id> with a <token>')
  t.not(lAnswer.token, vAnswer.token, 'tokens differ')

  const after = await counts(db)
  t.equal(after.service_requests, before.service_requests + 2)
  t.equal(after.request_tokens, before.request_tokens + 2, 'one token row each')

  const polled = await app.inject(`/open311/v2/tokens/${encodeURIComponent(vAnswer.token)}.json`)
  t.equal(polled.statusCode, 200, 'the token can be polled')
  t.match(polled.json(), [{ token: vAnswer.token }])
})

t.test('attribute encodings: attribute[c]=v, repeated attribute[c][]=v, repeated attribute[c]=v', async (t) => {
  const single = await created(t, form(pothole({ 'attribute[size]': 'MEDIUM', 'attribute[depth_cm]': '8', 'attribute[lane]': 'BIKE' })), 'attribute[c]=v')
  t.same(await storedAttributes({ id: single }), { size: 'MEDIUM', depth_cm: '8', lane: 'BIKE' }, 'single values stored')
  shownLater.push([single, { size: ['MEDIUM'], depth_cm: ['8'], lane: ['BIKE'] }])

  const brackets = await created(
    t,
    form([
      ['api_key', client.key],
      ['service_code', 'graffiti'],
      ['lat', LOCATION.lat],
      ['long', LOCATION.long],
      ['attribute[surface][]', 'WALL'],
      ['attribute[surface][]', 'POLE'],
      ['attribute[offensive]', 'NO'],
    ]),
    'attribute[c][]=v repeated',
  )
  t.same(await storedAttributes({ id: brackets }), { surface: ['WALL', 'POLE'], offensive: 'NO' })
  shownLater.push([brackets, { surface: ['WALL', 'POLE'], offensive: ['NO'] }])

  const repeated = await created(
    t,
    form([
      ['api_key', client.key],
      ['service_code', 'graffiti'],
      ['lat', LOCATION.lat],
      ['long', LOCATION.long],
      ['attribute[surface]', 'SIGN'],
      ['attribute[surface]', 'BRIDGE'],
      ['attribute[offensive]', 'YES'],
    ]),
    'repeated attribute[c]=v (FixMyStreet)',
  )
  t.same(await storedAttributes({ id: repeated }), { surface: ['SIGN', 'BRIDGE'], offensive: 'YES' })
  shownLater.push([repeated, { surface: ['SIGN', 'BRIDGE'], offensive: ['YES'] }])

  const one = await created(
    t,
    form({ api_key: client.key, service_code: 'illegal-dumping', address_string: 'Alley behind 1200 S State St', 'attribute[materials][]': 'TIRES' }),
    'a single attribute[c][]=v',
  )
  t.same(await storedAttributes({ id: one }), { materials: ['TIRES'] }, 'a one-value multivaluelist stays a list')
  shownLater.push([one, { materials: ['TIRES'] }])

  const datetime = await created(
    t,
    form({
      api_key: client.key,
      service_code: 'missed-collection',
      address_string: '10 Main St',
      'attribute[collection_type]': ['TRASH', 'RECYCLE'],
      'attribute[scheduled_day]': '2024-05-14T07:00:00-05:00',
      'attribute[cart_out_by_7am]': 'YES',
    }),
    'multivaluelist, datetime and singlevaluelist together',
  )
  t.same(await storedAttributes({ id: datetime }), {
    collection_type: ['TRASH', 'RECYCLE'],
    scheduled_day: '2024-05-14T07:00:00-05:00',
    cart_out_by_7am: 'YES',
  })
  shownLater.push([datetime, { collection_type: ['TRASH', 'RECYCLE'], scheduled_day: ['2024-05-14T07:00:00-05:00'], cart_out_by_7am: ['YES'] }])
})

t.test('empty optional values count as absent (FixMyStreet sends every field)', async (t) => {
  const before = await counts(db)
  const id = await created(
    t,
    form(
      pothole({
        'attribute[depth_cm]': '',
        'attribute[lane]': '',
        description: '',
        address_string: '',
        address_id: '',
        zipcode: '',
        media_url: '',
        email: '',
        phone: '',
        first_name: '',
        last_name: '',
        device_id: '',
        account_id: '',
        jurisdiction_id: '',
      }),
    ),
    'empty number, list and core fields',
  )
  t.same(await storedAttributes({ id }), { size: 'SMALL' }, 'only the answered attribute is stored')
  const after = await counts(db)
  t.equal(after.request_reporters, before.request_reporters, 'empty personal fields write no reporter row')
  const [shown] = (await app.inject(`/open311/v2/requests/${id}.json`)).json()
  t.match(shown, { description: null, address: null, address_id: null, zipcode: null, media_url: null })

  const noise = await created(
    t,
    form({
      api_key: client.key,
      service_code: 'noise-complaint',
      ...LOCATION,
      'attribute[noise_type]': 'MUSIC',
      'attribute[started_at]': '',
      'attribute[recurring_details]': '',
    }),
    'empty datetime and text',
  )
  t.same(await storedAttributes({ id: noise }), { noise_type: 'MUSIC' })

  const sidewalk = await created(
    t,
    form({
      api_key: client.key,
      service_code: 'sidewalk-damage',
      ...LOCATION,
      'attribute[damage_type][]': '',
      'attribute[height_difference_cm]': '',
    }),
    'empty multivaluelist (with []) and number',
  )
  t.same(await storedAttributes({ id: sidewalk }), {})

  const tree = await created(
    t,
    form([
      ['api_key', client.key],
      ['service_code', 'fallen-tree'],
      ['lat', LOCATION.lat],
      ['long', LOCATION.long],
      ['attribute[blocking]', 'ROAD'],
      ['attribute[blocking]', ''],
      ['attribute[trunk_diameter_cm]', ''],
      ['attribute[details]', ''],
    ]),
    'an empty value among repeated list values',
  )
  t.same(await storedAttributes({ id: tree }), { blocking: ['ROAD'] })
})

t.test('variable=false attributes and unknown attribute codes are ignored, not stored', async (t) => {
  const tree = await created(
    t,
    form({
      api_key: client.key,
      service_code: 'fallen-tree',
      ...LOCATION,
      'attribute[safety_notice]': 'I read it',
      'attribute[blocking][]': ['ROAD', 'LINES'],
      'attribute[fixmystreet_id]': '12345',
      'attribute[closest_address]': '1 Main St',
    }),
    'fallen-tree with extras',
  )
  t.same(await storedAttributes({ id: tree }), { blocking: ['ROAD', 'LINES'] }, 'only defined, variable answers are stored')
  shownLater.push([tree, { blocking: ['ROAD', 'LINES'] }])

  const leak = await post(
    'json',
    form({
      api_key: client.key,
      service_code: 'water-leak',
      ...LOCATION,
      'attribute[notice]': 'some text',
      'attribute[leak_location]': 'METER',
      'attribute[flow_rate]': 'DAMP',
      'attribute[unknown_code][]': ['a', 'b'],
    }),
  )
  t.equal(leak.statusCode, 200)
  t.same(await storedAttributes({ token: leak.json()[0].token }), { leak_location: 'METER', flow_rate: 'DAMP' })
})

// Fails on the PostgreSQL backend only (see the report): there node-postgres returns bigint
// columns as strings, and src/http/routes/open311/requests.ts matches row.service_id (a string)
// against the catalog's numeric id with ===, so no definition is found and attributes is [].
t.test('stored answers are shown by GET requests/{id}.json?extensions=true (BUG on PostgreSQL: always [])', async (t) => {
  t.ok(shownLater.length >= 6, 'requests from the tests above')
  for (const [id, expected] of shownLater) {
    t.same(await publicAttributes(t, id), expected, `request ${id}: attributes`)
  }
  const [first] = shownLater
  const res = await app.inject(`/open311/v2/requests/${first![0]}.json?extensions=true`)
  const [shown] = res.json()
  t.match(shown.attributes, [{ code: 'size', name: /wide/, values: ['MEDIUM'], labels: [/car tire/] }], 'list answers carry their labels')
})

t.test('validation: each problem is a 400 naming its field, in JSON and XML, and writes nothing', async (t) => {
  const cases: [string, Record<string, string | string[]> | [string, string][], RegExp][] = [
    ['missing service_code', { api_key: client.key, ...LOCATION, 'attribute[size]': 'SMALL' }, /service_code/],
    ['required attribute missing', { api_key: client.key, service_code: 'pothole', ...LOCATION }, /attribute\[size\]/],
    ['required attribute sent empty', pothole({ 'attribute[size]': '' }), /attribute\[size\]/],
    ['number attribute "abc"', pothole({ 'attribute[depth_cm]': 'abc' }), /attribute\[depth_cm\]/],
    [
      'datetime attribute "yesterday"',
      {
        api_key: client.key,
        service_code: 'missed-collection',
        ...LOCATION,
        'attribute[collection_type]': 'TRASH',
        'attribute[scheduled_day]': 'yesterday',
      },
      /attribute\[scheduled_day\]/,
    ],
    ['singlevaluelist key not listed', pothole({ 'attribute[size]': 'HUGE' }), /attribute\[size\]/],
    [
      'multivaluelist with one unknown key',
      { api_key: client.key, service_code: 'graffiti', ...LOCATION, 'attribute[surface][]': ['WALL', 'MOON'], 'attribute[offensive]': 'NO' },
      /attribute\[surface\].*MOON/,
    ],
    ['two values for a single-value attribute', pothole({ 'attribute[size]': ['SMALL', 'LARGE'] }), /attribute\[size\]/],
    [
      'single-value attribute sent both ways',
      [...Object.entries(pothole()), ['attribute[size][]', 'LARGE']] as [string, string][],
      /attribute\[size\]/,
    ],
    ['lat without long', { api_key: client.key, service_code: 'pothole', lat: '41.88', 'attribute[size]': 'SMALL' }, /\blong\b/],
    ['long without lat', { api_key: client.key, service_code: 'pothole', long: '-87.6', 'attribute[size]': 'SMALL' }, /\blat\b/],
    ['lat=91', pothole({ lat: '91' }), /^lat\b/],
    ['lat=-90.5', pothole({ lat: '-90.5' }), /^lat\b/],
    ['long=-181', pothole({ long: '-181' }), /^long\b/],
    ['lat="abc"', pothole({ lat: 'abc' }), /^lat\b/],
    ['long="1e2"', pothole({ long: '1e2' }), /^long\b/],
    ['two lat values', pothole({ lat: ['41.1', '41.2'] }), /^lat\b/],
    [
      'no location at all',
      { api_key: client.key, service_code: 'pothole', 'attribute[size]': 'SMALL' },
      /location|address_string/,
    ],
    ['media_url ftp://x', pothole({ media_url: 'ftp://x' }), /media_url/],
    ['media_url javascript:alert(1)', pothole({ media_url: 'javascript:alert(1)' }), /media_url/],
    ['one bad media_url among good ones', pothole({ media_url: ['https://img.example/a.jpg', 'not a url'] }), /media_url/],
    ['description of 4001 characters', pothole({ description: 'x'.repeat(4001) }), /description/],
    ['invalid email', pothole({ email: 'not-an-email' }), /email/],
    ['email with a space', pothole({ email: 'a b@example.org' }), /email/],
  ]
  for (const [label, fields, pattern] of cases) {
    await rejectBoth(t, label, form(fields), 400, [pattern])
  }
})

t.test('validation: a description of exactly 4000 characters is accepted', async (t) => {
  const id = await created(t, form(pothole({ description: 'y'.repeat(4000) })), '4000 characters')
  const [shown] = (await app.inject(`/open311/v2/requests/${id}.json`)).json()
  t.equal(shown.description.length, 4000)
})

t.test('validation: unknown service_code is 404', async (t) => {
  await rejectBoth(t, 'unknown service_code', form(pothole({ service_code: 'no-such-service' })), 404, [/service_code/, /no-such-service/])
})

t.test('validation: several problems at once give several error entries', async (t) => {
  const body = form({
    api_key: client.key,
    service_code: 'pothole',
    lat: '91',
    long: '-181',
    'attribute[size]': 'HUGE',
    'attribute[depth_cm]': 'deep',
    media_url: 'javascript:alert(1)',
    description: 'z'.repeat(4001),
    email: 'nobody',
  })
  const fields = [/^lat\b/, /^long\b/, /attribute\[size\]/, /attribute\[depth_cm\]/, /media_url/, /description/, /email/]
  await rejectBoth(t, 'seven problems', body, 400, fields)
  const errors = (await post('json', body)).json() as ErrorItem[]
  t.ok(errors.length >= fields.length, `at least ${fields.length} entries (got ${errors.length})`)
  const xmlItems = xml.parse((await post('xml', body)).body).errors.error as ErrorItem[]
  t.equal(xmlItems.length, errors.length, 'XML carries the same number of <error> entries')
})

t.test('api_key: accepted from the body, the query string and Authorization: Bearer', async (t) => {
  const { api_key: _omit, ...withoutKey } = pothole()
  await created(t, form(pothole()), 'api_key in the body')
  await created(t, form(withoutKey), 'api_key in the query', { query: new URLSearchParams({ api_key: client.key }).toString() })
  await created(t, form(withoutKey), 'Authorization: Bearer', { headers: { authorization: `Bearer ${client.key}` } })
  await created(t, form(withoutKey), 'authorization: bearer (any case)', { headers: { authorization: `bearer ${otherClient.key}` } })
})

t.test('api_key: missing, empty, malformed, unknown, revoked or without requests:write → 403', async (t) => {
  const revoked = await createApiKey(db, { name: 'revoked client' }, SERVER_ACTOR)
  await revokeApiKey(db, revoked.id, systemActor('test'))
  const adminOnly = await createApiKey(db, { name: 'operator', scopes: ['admin'] }, SERVER_ACTOR)
  const wellFormedUnknown = client.key.replace(/^o311_[a-z0-9]{12}_/, 'o311_zzzzzzzzzzzz_')
  const sameIdWrongSecret = client.key.replace(/_([A-Za-z0-9_-]{43})$/, `_${'A'.repeat(43)}`)
  t.not(sameIdWrongSecret, client.key)
  const { api_key: _omit, ...withoutKey } = pothole()

  const cases: [string, string, PostOptions?][] = [
    ['missing', form(withoutKey)],
    ['empty (api_key=, as the three client sends it)', form({ ...withoutKey, api_key: '' })],
    ['malformed', form({ ...withoutKey, api_key: 'not-a-key' })],
    ['well-formed but unknown', form({ ...withoutKey, api_key: wellFormedUnknown })],
    ['known key id, wrong secret', form({ ...withoutKey, api_key: sameIdWrongSecret })],
    ['revoked', form({ ...withoutKey, api_key: revoked.key })],
    ['admin scope only', form({ ...withoutKey, api_key: adminOnly.key })],
    ['revoked, in the query', form(withoutKey), { query: `api_key=${encodeURIComponent(revoked.key)}` }],
    ['empty in the query', form(withoutKey), { query: 'api_key=' }],
    ['Bearer with a malformed key', form(withoutKey), { headers: { authorization: 'Bearer nonsense' } }],
    ['Bearer with an admin-only key', form(withoutKey), { headers: { authorization: `Bearer ${adminOnly.key}` } }],
  ]
  for (const [label, body, options] of cases) {
    await rejectBoth(t, `api_key ${label}`, body, 403, [/api_key/], options)
  }
})

t.test('multipart/form-data: fields are read like urlencoded ones', async (t) => {
  const parts = [
    { name: 'api_key', value: client.key },
    { name: 'service_code', value: 'graffiti' },
    { name: 'lat', value: LOCATION.lat },
    { name: 'long', value: LOCATION.long },
    { name: 'attribute[surface][]', value: 'WALL' },
    { name: 'attribute[surface][]', value: 'SIDEWALK' },
    { name: 'attribute[offensive]', value: 'YES' },
    { name: 'attribute[approx_area_m2]', value: '' },
    { name: 'description', value: 'Tags on the wall\nand on the pavement' },
  ]
  const contentType = `multipart/form-data; boundary=${BOUNDARY}`
  const id = await created(t, multipart(parts), 'multipart JSON', { contentType })
  t.same(await storedAttributes({ id }), { surface: ['WALL', 'SIDEWALK'], offensive: 'YES' }, 'repeated parts and empty parts as in urlencoded')
  const [shown] = (await app.inject(`/open311/v2/requests/${id}.json`)).json()
  t.equal(shown.description, 'Tags on the wall\nand on the pavement', 'line breaks kept')

  const res = await post('xml', multipart(parts), { contentType })
  t.equal(res.statusCode, 200)
  t.match(xml.parse(res.body).service_requests.request[0], { service_request_id: /\S/ })

  await rejectBoth(
    t,
    'multipart missing required attribute',
    multipart(parts.filter((p) => p.name !== 'attribute[offensive]')),
    400,
    [/attribute\[offensive\]/],
    { contentType },
  )
  await rejectBoth(t, 'multipart without api_key', multipart(parts.filter((p) => p.name !== 'api_key')), 403, [/api_key/], { contentType })
})

t.test('multipart/form-data: a media file part that is not an image is refused with 400 (photos: photos.test.ts)', async (t) => {
  const parts = [
    { name: 'api_key', value: client.key },
    { name: 'service_code', value: 'pothole' },
    { name: 'lat', value: LOCATION.lat },
    { name: 'long', value: LOCATION.long },
    { name: 'attribute[size]', value: 'SMALL' },
    { name: 'media', value: '\xff\xd8\xff\xe0 not really a jpeg', filename: 'photo.jpg' },
  ]
  await rejectBoth(t, 'multipart file part', multipart(parts), 400, [/media/], { contentType: `multipart/form-data; boundary=${BOUNDARY}` })
})

t.test('unsupported body content types → 415 in spec format', async (t) => {
  const query = `api_key=${encodeURIComponent(client.key)}`
  await rejectBoth(t, 'application/xml body', '<request><service_code>pothole</service_code></request>', 415, [/\S/], {
    query,
    contentType: 'application/xml',
  })
  await rejectBoth(t, 'application/octet-stream body', form(pothole()), 415, [/\S/], { query, contentType: 'application/octet-stream' })
})

// Known bug, kept failing on purpose (see the report): the open311 routes keep Fastify's
// default application/json and text/plain parsers (src/http/routes/open311/form-body.ts).
t.test('text/plain and application/json bodies are refused with 415', async (t) => {
  const query = `api_key=${encodeURIComponent(client.key)}`
  await rejectBoth(t, 'text/plain body', form(pothole()), 415, [/\S/], { query, contentType: 'text/plain' })
  const { api_key: _omit, ...fields } = pothole()
  await rejectBoth(t, 'application/json body', JSON.stringify(fields), 415, [/\S/], { query, contentType: 'application/json' })
  // With the JSON parser in place, a non-string attribute value even crashes validation (500).
  await rejectBoth(t, 'application/json body with an object value', JSON.stringify({ ...fields, 'attribute[lane]': { x: 1 } }), 415, [/\S/], {
    query,
    contentType: 'application/json',
  })
})

t.test('Idempotency-Key: a retry with the same body replays the first answer', async (t) => {
  const body = form(pothole({ description: 'idempotent retry' }))
  const before = await counts(db)
  const first = await post('json', body, { headers: { 'idempotency-key': 'retry-0001' } })
  t.equal(first.statusCode, 200)
  t.notOk(first.headers['idempotent-replayed'], 'the first answer is not a replay')
  const second = await post('json', body, { headers: { 'idempotency-key': 'retry-0001' } })
  t.equal(second.statusCode, 200)
  t.equal(second.headers['idempotent-replayed'], 'true')
  t.same(second.json(), first.json(), 'same answer')
  const third = await post('xml', body, { headers: { 'idempotency-key': 'retry-0001' } })
  t.equal(third.statusCode, 200)
  t.equal(third.headers['idempotent-replayed'], 'true')
  t.equal(xml.parse(third.body).service_requests.request[0].service_request_id, first.json()[0].service_request_id, 'XML replay, same id')
  const after = await counts(db)
  t.equal(after.service_requests, before.service_requests + 1, 'one request row')
  t.equal(after.idempotency_keys, before.idempotency_keys + 1, 'one idempotency row')

  const otherKey = await post('json', body, { headers: { 'idempotency-key': 'retry-0002' } })
  t.equal(otherKey.statusCode, 200)
  t.not(otherKey.json()[0].service_request_id, first.json()[0].service_request_id, 'another key is another request')

  const otherClientSameKey = await post('json', form(pothole({ api_key: otherClient.key, description: 'idempotent retry' })), {
    headers: { 'idempotency-key': 'retry-0001' },
  })
  t.equal(otherClientSameKey.statusCode, 200)
  t.notOk(otherClientSameKey.headers['idempotent-replayed'], 'keys are scoped to the API key')
  t.not(otherClientSameKey.json()[0].service_request_id, first.json()[0].service_request_id)

  const batchBody = form({
    api_key: client.key,
    service_code: 'water-leak',
    ...LOCATION,
    'attribute[leak_location]': 'STREET',
    'attribute[flow_rate]': 'GUSHING',
  })
  const b1 = await post('json', batchBody, { headers: { 'idempotency-key': 'batch-0001' } })
  const b2 = await post('json', batchBody, { headers: { 'idempotency-key': 'batch-0001' } })
  t.equal(b2.headers['idempotent-replayed'], 'true')
  t.equal(b2.json()[0].token, b1.json()[0].token, 'a batch retry gets the same token')
})

t.test('Idempotency-Key: the same key with a different body is refused', async (t) => {
  await post('json', form(pothole({ description: 'first body' })), { headers: { 'idempotency-key': 'reuse-0001' } })
  await rejectBoth(t, 'reused key, different body', form(pothole({ description: 'second body' })), 400, [/Idempotency-Key/i], {
    headers: { 'idempotency-key': 'reuse-0001' },
  })
})

t.test('Idempotency-Key: an invalid key is refused', async (t) => {
  const body = form(pothole({ description: 'bad keys' }))
  await rejectBoth(t, 'key with a space', body, 400, [/Idempotency-Key/i], { headers: { 'idempotency-key': 'has space' } })
  await rejectBoth(t, 'key of 300 characters', body, 400, [/Idempotency-Key/i], { headers: { 'idempotency-key': 'k'.repeat(300) } })
  const ok = await post('json', body, { headers: { 'idempotency-key': 'k'.repeat(255) } })
  t.equal(ok.statusCode, 200, 'a key of 255 characters is fine')
})

t.test('Idempotency-Key: 10 concurrent identical POSTs create exactly one request', async (t) => {
  const body = form(pothole({ description: 'ten at once' }))
  const before = await counts(db)
  const answers = await Promise.all(Array.from({ length: 10 }, () => post('json', body, { headers: { 'idempotency-key': 'burst-0001' } })))
  t.same(
    answers.map((a) => a.statusCode),
    Array(10).fill(200),
    'all 200',
  )
  const ids = new Set(answers.map((a) => a.json()[0]?.service_request_id))
  t.equal(ids.size, 1, 'one service_request_id for all ten')
  t.type([...ids][0], 'string')
  t.equal(answers.filter((a) => a.headers['idempotent-replayed'] !== 'true').length, 1, 'exactly one original answer')
  const after = await counts(db)
  t.equal(after.service_requests, before.service_requests + 1, 'exactly one new request row')
  t.equal(after.request_updates, before.request_updates + 1, 'exactly one new history entry')
  t.equal(after.idempotency_keys, before.idempotency_keys + 1)
})

t.test('jurisdiction_id: the served one is accepted, an unknown one is 404', async (t) => {
  await created(t, form(pothole({ jurisdiction_id: 'demo.open311.city' })), 'known jurisdiction_id')
  await rejectBoth(t, 'unknown jurisdiction_id', form(pothole({ jurisdiction_id: 'elsewhere.example' })), 404, [/jurisdiction_id/, /elsewhere\.example/])
})

/** Milliseconds left in the rate limiter's current 60-second window. */
const windowLeft = () => 60_000 - (Date.now() % 60_000)
const windowOf = (ms: number) => Math.floor(ms / 60_000)

/** Waits for the next window when the current one is nearly over, so a short burst fits in one. */
async function freshWindow() {
  if (windowLeft() < 5_000) await new Promise((resolve) => setTimeout(resolve, windowLeft() + 100))
}

function assertRateLimited(t: Test, res: LightMyRequestResponse, format: Format, label: string) {
  const errors = format === 'json' ? jsonErrors(t, res, 429, label) : xmlErrors(t, res, 429, label)
  namesField(t, errors, /rate limit/i, label)
  const retryAfter = res.headers['retry-after']
  t.match(retryAfter, /^\d+$/, `${label}: Retry-After in seconds`)
  t.ok(Number(retryAfter) >= 0 && Number(retryAfter) <= 60, `${label}: Retry-After within the window (${retryAfter})`)
}

/**
 * One constrained app for the limits (each extra app costs seconds of set-up): 3 POSTs per IP
 * and 2 per API key per minute, bodies of at most 2048 bytes. Each test isolates the limit it is
 * about: every POST there comes from a fresh IP unless the test is about the IP limit, and
 * carries a fresh API key unless it is about the key limit, so no other limit comes near its max.
 */
interface Constrained {
  app: FastifyInstance
  post: ReturnType<typeof poster>
  freshKey: () => Promise<string>
  freshIp: () => string
}
let constrained: Promise<Constrained> | undefined
function constrainedApp(): Promise<Constrained> {
  constrained ??= (async () => {
    const { app: limited } = await buildTestApp(t, { bodyLimitBytes: 2048, rateLimits: { perIpPerMinute: 3, perKeyPerMinute: 2 } })
    await loadDemoCatalog(limited.db)
    let n = 0
    return {
      app: limited,
      post: poster(limited),
      freshKey: async () => (await createApiKey(limited.db, { name: `client ${++n}` }, SERVER_ACTOR)).key,
      freshIp: () => `10.77.${Math.floor(++n / 250)}.${(n % 250) + 1}`,
    }
  })()
  return constrained
}

t.test('rate limit per client IP: the 4th POST in a minute gets 429 with Retry-After', async (t) => {
  const { app: limited, post: postLimited, freshKey, freshIp } = await constrainedApp()
  // A fresh key for every POST, so only the per-IP limit can bite.
  const keys = await Promise.all(Array.from({ length: 8 }, () => freshKey()))
  const ip = '203.0.113.10'
  const body = (i: number) => form(pothole({ api_key: keys[i]! }))
  const rowsBefore = (await counts(limited.db)).service_requests

  await freshWindow()
  const started = Date.now()
  const formats: Format[] = ['json', 'json', 'json', 'json', 'xml', 'json', 'xml']
  const answers: LightMyRequestResponse[] = []
  for (const [i, format] of formats.entries()) answers.push(await postLimited(format, body(i), { remoteAddress: ip }))
  const finished = Date.now()

  t.same(
    answers.slice(0, 3).map((a) => a.statusCode),
    [200, 200, 200],
    'the first 3 (the limit) always pass',
  )
  if (windowOf(started) === windowOf(finished)) {
    t.same(
      answers.map((a) => a.statusCode),
      [200, 200, 200, 429, 429, 429, 429],
      'all in one window: from the 4th on, 429',
    )
  } else {
    // The burst straddled a window boundary: 7 POSTs in 2 windows of 3 still overflow one.
    t.ok(answers.some((a) => a.statusCode === 429), 'straddling two windows, 7 POSTs still hit 429')
  }
  answers.forEach((a, i) => {
    if (a.statusCode === 429) assertRateLimited(t, a, formats[i]!, `POST #${i + 1} (${formats[i]})`)
  })
  const passed = answers.filter((a) => a.statusCode === 200).length
  t.equal((await counts(limited.db)).service_requests, rowsBefore + passed, 'a refused POST writes nothing')

  const elsewhere = await postLimited('json', body(7), { remoteAddress: freshIp() })
  t.equal(elsewhere.statusCode, 200, 'another IP is not affected')
})

t.test('rate limit per API key: the 3rd POST with one key gets 429, another key still succeeds', async (t) => {
  const { app: limited, post: postLimited, freshKey, freshIp } = await constrainedApp()
  const busy = await freshKey()
  const quiet = await freshKey()
  const rowsBefore = (await counts(limited.db)).service_requests

  await freshWindow()
  const started = Date.now()
  const formats: Format[] = ['json', 'json', 'json', 'xml', 'json']
  const answers: LightMyRequestResponse[] = []
  // Each from a fresh IP: the limit follows the key, not the address.
  for (const format of formats) {
    answers.push(await postLimited(format, form(pothole({ api_key: busy })), { remoteAddress: freshIp() }))
  }
  const other = await postLimited('json', form(pothole({ api_key: quiet })), { remoteAddress: freshIp() })
  const finished = Date.now()

  t.same(
    answers.slice(0, 2).map((a) => a.statusCode),
    [200, 200],
    'the first 2 (the limit) always pass',
  )
  if (windowOf(started) === windowOf(finished)) {
    t.same(
      answers.map((a) => a.statusCode),
      [200, 200, 429, 429, 429],
      'all in one window: from the 3rd on, 429',
    )
  } else {
    t.ok(answers.some((a) => a.statusCode === 429), 'straddling two windows, 5 POSTs still hit 429')
  }
  answers.forEach((a, i) => {
    if (a.statusCode === 429) assertRateLimited(t, a, formats[i]!, `POST #${i + 1} with the busy key (${formats[i]})`)
  })
  t.equal(other.statusCode, 200, 'another key still succeeds')
  const passed = answers.filter((a) => a.statusCode === 200).length + 1
  t.equal((await counts(limited.db)).service_requests, rowsBefore + passed, 'a refused POST writes nothing')
})

/** A valid pothole report of more than 2048 bytes, as fields. */
const oversized = (key: string) => pothole({ api_key: key, description: 'x'.repeat(1500), address_string: 'y'.repeat(900) })

t.test('body limit: a body over bodyLimitBytes → 413 in spec format', async (t) => {
  const { app: small, post: postSmall, freshKey, freshIp } = await constrainedApp()
  const ok = await postSmall('json', form(pothole({ api_key: await freshKey(), description: 'fits' })), { remoteAddress: freshIp() })
  t.equal(ok.statusCode, 200, 'a small body is accepted')

  const big = form(oversized(await freshKey()))
  t.ok(big.length > 2048, `the body is ${big.length} bytes`)
  for (const format of ['json', 'xml'] as const) {
    const before = await counts(small.db)
    const res = await postSmall(format, big, { remoteAddress: freshIp() })
    const errors = format === 'json' ? jsonErrors(t, res, 413, `oversized (${format})`) : xmlErrors(t, res, 413, `oversized (${format})`)
    namesField(t, errors, /large|limit|size/i, `oversized (${format})`)
    t.same(await counts(small.db), before, `oversized (${format}): nothing written`)
  }
})

// The whole multipart body is held to bodyLimit, like an urlencoded one (src/http/multipart-body.ts);
// a chunked one without Content-Length is tested over a socket in test/http/hostile-input.test.ts.
t.test('a multipart body over bodyLimitBytes is refused with 413 too', async (t) => {
  const { app: small, post: postSmall, freshKey, freshIp } = await constrainedApp()
  const body = multipart(Object.entries(oversized(await freshKey())).map(([name, value]) => ({ name, value: String(value) })))
  t.ok(Buffer.byteLength(body) > 2048, `the multipart body is ${Buffer.byteLength(body)} bytes`)
  for (const format of ['json', 'xml'] as const) {
    const before = await counts(small.db)
    const res = await postSmall(format, body, { contentType: `multipart/form-data; boundary=${BOUNDARY}`, remoteAddress: freshIp() })
    if (format === 'json') jsonErrors(t, res, 413, `oversized multipart (${format})`)
    else xmlErrors(t, res, 413, `oversized multipart (${format})`)
    t.same(await counts(small.db), before, `oversized multipart (${format}): nothing written`)
  }
})
