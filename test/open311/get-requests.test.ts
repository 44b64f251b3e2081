/**
 * GET requests / GET request against known rows (test/open311/fixtures.ts): golden answers for
 * the core shape, both formats, every filter and the paging headers.
 */
import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import demoCatalog from '../../src/domain/demo/demo-catalog.json' with { type: 'json' }
import { buildTestApp } from '../helpers/app.js'
import {
  CENTER,
  DAY_MS,
  type InsertedRequest,
  chicagoOffsetMinutes,
  chicagoW3c,
  demoFixtures,
  fixtureNow,
  haversineMeters,
  insertFixtures,
  utcZ,
} from './fixtures.js'

const CORE_FIELDS = [
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
].sort()
const EXTENSION_FIELDS = ['extended_attributes', 'attributes', 'notes']
const W3C = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/

// Strings stay strings (ids like "100001" must not turn into numbers); lists are always lists.
const xml = new XMLParser({
  parseTagValue: false,
  isArray: (name, jpath) =>
    ['request', 'error', 'note', 'attribute', 'value', 'label'].includes(name) || String(jpath).endsWith('media_urls.media_url'),
})

type Json = Record<string, unknown>
interface WireRequest extends Json {
  service_request_id: string
  requested_datetime: string
  updated_datetime: string
}

// One database per test file; subtests share it and run in order.
const { app } = await buildTestApp(t)
await loadDemoCatalog(app.db)
const now = fixtureNow()
const fx = await insertFixtures(app.db, demoFixtures(now))
const f = (key: string): InsertedRequest => {
  const found = fx.get(key)
  if (!found) throw new Error(`no fixture ${key}`)
  return found
}
const publicFixtures = [...fx.values()].filter((r) => r.isPublic)
const serviceNames = new Map(demoCatalog.services.map((s) => [s.service_code, s.service_name]))
const catalogAttributes = new Map(demoCatalog.services.map((s) => [s.service_code, (s as { attributes?: CatalogAttr[] }).attributes ?? []]))
interface CatalogAttr {
  code: string
  description: string
  public?: boolean
  variable?: boolean
  values?: { key: string; name: string }[]
}

const qs = (params: Record<string, string | number | boolean | undefined>) =>
  `?${new URLSearchParams(Object.entries(params).flatMap(([k, v]): [string, string][] => (v === undefined ? [] : [[k, String(v)]]))).toString()}`
const get = (path: string) => app.inject({ method: 'GET', url: `/open311/v2/${path}` })
const getJson = async (path: string) => {
  const res = await get(path)
  if (res.statusCode !== 200) throw new Error(`GET ${path}: ${res.statusCode} ${res.body}`)
  return res.json() as WireRequest[]
}
const ids = (list: { service_request_id: string }[]) => list.map((r) => r.service_request_id)
const idsOf = (list: InsertedRequest[]) => list.map((r) => r.publicId)
const newestFirst = (list: InsertedRequest[]) =>
  [...list].sort((a, b) => b.requestedAt.getTime() - a.requestedAt.getTime() || b.id - a.id)
const oldestUpdatedFirst = (list: InsertedRequest[]) =>
  [...list].sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || a.id - b.id)
/** In the default window (the last 90 days); the fixtures sit hours away from its edge. */
const recent = (r: InsertedRequest) => r.requestedAt.getTime() >= Date.now() - 90 * DAY_MS

function expectedCore(r: InsertedRequest) {
  return {
    service_request_id: r.publicId,
    status: r.status,
    status_notes: r.statusNotes,
    service_name: serviceNames.get(r.serviceCode),
    service_code: r.serviceCode,
    description: r.description,
    agency_responsible: r.agencyResponsible,
    service_notice: r.serviceNotice,
    requested_datetime: chicagoW3c(r.requestedAt),
    updated_datetime: chicagoW3c(r.updatedAt),
    expected_datetime: r.expectedAt ? chicagoW3c(r.expectedAt) : null,
    address: r.address,
    address_id: r.addressId,
    zipcode: r.zipcode,
    lat: r.location?.lat ?? null,
    long: r.location?.long ?? null,
    media_url: r.mediaUrls[0] ?? null,
  }
}


const insideBox = (r: InsertedRequest, box: number[]) =>
  !!r.location && r.location.long >= box[0]! && r.location.long <= box[2]! && r.location.lat >= box[1]! && r.location.lat <= box[3]!

/** The XML text an element must carry for a JSON scalar: empty for null. */
const xmlText = (value: unknown) => (value === null || value === undefined ? '' : String(value))

t.test('requests.json: a bare array of core-only requests, newest first, the last 90 days', async (t) => {
  const res = await get('requests.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
  const body = res.json() as WireRequest[]
  t.ok(Array.isArray(body), 'a bare array, no root key')
  const expected = newestFirst(publicFixtures.filter(recent))
  t.ok(expected.length >= 10, 'the window holds most of the fixtures')
  t.same(body, expected.map(expectedCore), 'golden: every field of every request')

  for (const item of body) {
    t.same(Object.keys(item).sort(), CORE_FIELDS, `${item.service_request_id}: exactly the core fields`)
    t.type(item.service_request_id, 'string')
    t.type(item.service_code, 'string')
    for (const name of ['requested_datetime', 'updated_datetime'] as const) {
      t.match(item[name], W3C, `${name} is a W3C datetime with offset`)
      const offset = chicagoOffsetMinutes(new Date(item[name]))
      t.equal(item[name].slice(-6), offset === -300 ? '-05:00' : '-06:00', `${name} carries the America/Chicago offset`)
    }
    if (item.expected_datetime !== null) t.match(item.expected_datetime, W3C)
  }
  const located = body.filter((r) => r.lat !== null)
  t.ok(located.length >= 9)
  for (const item of located) {
    t.type(item.lat, 'number')
    t.type(item.long, 'number')
  }
  const addressOnly = body.find((r) => r.service_request_id === f('n1').publicId)
  t.match(addressOnly, { lat: null, long: null, address: 'Alley behind 1200 S State St', address_id: 'ADDR-7781' })

  const returned = new Set(ids(body))
  t.ok(returned.has(f('f4').publicId), '89 days old: inside the default window')
  t.notOk(returned.has(f('f5').publicId), '91 days old: outside the default window')
  t.notOk(returned.has(f('c6').publicId), '120 days old: outside the default window')
  t.notOk(returned.has(f('p1').publicId), 'a non-public request never appears')
  t.notMatch(res.body, /PRIVATE report/)
  for (let i = 1; i < body.length; i++) {
    t.ok(Date.parse(body[i - 1]!.requested_datetime) >= Date.parse(body[i]!.requested_datetime), 'newest first')
  }
})

t.test('requests.xml carries the same data under <service_requests><request>', async (t) => {
  const [jsonRes, xmlRes] = await Promise.all([get('requests.json'), get('requests.xml')])
  t.equal(xmlRes.statusCode, 200)
  t.match(xmlRes.headers['content-type'], /^text\/xml; charset=utf-8/)
  t.match(xmlRes.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
  const parsed = xml.parse(xmlRes.body) as { service_requests: { request: Json[] } }
  const items = parsed.service_requests.request
  const json = jsonRes.json() as WireRequest[]
  t.equal(items.length, json.length)
  items.forEach((item, i) => {
    t.same(Object.keys(item).sort(), CORE_FIELDS, 'the core elements, nothing else')
    const expected = Object.fromEntries(Object.entries(json[i]!).map(([k, v]) => [k, xmlText(v)]))
    t.same(item, expected, `request ${i}: same values as JSON (null → empty element)`)
  })
})

t.test('golden datetimes across the America/Chicago DST changes', async (t) => {
  const body = await getJson(`requests.json${qs({ service_request_id: ['h1', 'h2', 'h3', 'h4'].map((k) => f(k).publicId).join(',') })}`)
  t.same(ids(body), ['h2', 'h4', 'h3', 'h1'].map((k) => f(k).publicId), 'newest first, older than 90 days since ids were asked')
  const byKey = (key: string) => body.find((r) => r.service_request_id === f(key).publicId)!
  t.match(byKey('h1'), { requested_datetime: '2025-01-15T06:00:00-06:00', updated_datetime: '2025-01-20T09:30:00-06:00', expected_datetime: null })
  t.match(byKey('h2'), {
    requested_datetime: '2025-07-15T07:00:00-05:00',
    updated_datetime: '2025-07-15T20:02:03-05:00',
    expected_datetime: '2025-07-20T12:00:00-05:00',
  })
  t.equal(byKey('h3').requested_datetime, '2025-03-09T01:59:59-06:00', 'last second of CST')
  t.equal(byKey('h4').requested_datetime, '2025-03-09T03:00:00-05:00', 'first second of CDT')
  t.equal(byKey('h3').updated_datetime, '2025-11-02T01:30:00-05:00', '01:30 the first time (CDT)')
  t.equal(byKey('h4').updated_datetime, '2025-11-02T01:30:00-06:00', '01:30 the second time (CST)')
  t.same(body, ['h2', 'h4', 'h3', 'h1'].map((k) => expectedCore(f(k))))
})

t.test('start_date is inclusive, end_date exclusive', async (t) => {
  const from = f('c3').requestedAt
  const before = f('c2').requestedAt
  const expected = newestFirst(publicFixtures.filter((r) => r.requestedAt >= from && r.requestedAt < before))
  const utc = await getJson(`requests.json${qs({ start_date: utcZ(from), end_date: utcZ(before) })}`)
  t.same(ids(utc), idsOf(expected))
  t.ok(ids(utc).includes(f('c3').publicId), 'a request at exactly start_date is included')
  t.notOk(ids(utc).includes(f('c2').publicId), 'a request at exactly end_date is excluded')
  const local = await getJson(`requests.json${qs({ start_date: chicagoW3c(from), end_date: chicagoW3c(before) })}`)
  t.same(ids(local), ids(utc), 'the same instants written with the local offset')
  const justAfter = await getJson(`requests.json${qs({ start_date: utcZ(new Date(from.getTime() + 1000)), end_date: utcZ(new Date(before.getTime() + 1000)) })}`)
  t.notOk(ids(justAfter).includes(f('c3').publicId))
  t.ok(ids(justAfter).includes(f('c2').publicId))
})

t.test('a date range over 90 days is refused with 400 naming end_date', async (t) => {
  const start = new Date(now.getTime() - 150 * DAY_MS)
  const tooLong = await get(`requests.json${qs({ start_date: utcZ(start), end_date: utcZ(new Date(start.getTime() + 91 * DAY_MS)) })}`)
  t.equal(tooLong.statusCode, 400)
  t.match(tooLong.json(), [{ code: 400, description: /end_date/ }])
  const asXml = await get(`requests.xml${qs({ start_date: utcZ(start), end_date: utcZ(new Date(start.getTime() + 91 * DAY_MS)) })}`)
  t.equal(asXml.statusCode, 400)
  t.match(xml.parse(asXml.body), { errors: { error: [{ code: '400', description: /end_date/ }] } })
  const exactly90 = await get(`requests.json${qs({ start_date: utcZ(start), end_date: utcZ(new Date(start.getTime() + 90 * DAY_MS)) })}`)
  t.equal(exactly90.statusCode, 200, 'exactly 90 days is allowed')
  const inverted = await get(`requests.json${qs({ start_date: utcZ(now), end_date: utcZ(start) })}`)
  t.equal(inverted.statusCode, 400)
  t.match(inverted.json(), [{ code: 400, description: /end_date/ }])
})

t.test('only start_date: the 90 days from it; only end_date: the 90 days before it', async (t) => {
  const start = new Date(now.getTime() - 150 * DAY_MS)
  const end = new Date(start.getTime() + 90 * DAY_MS)
  const fromStart = await getJson(`requests.json${qs({ start_date: utcZ(start) })}`)
  t.same(ids(fromStart), idsOf(newestFirst(publicFixtures.filter((r) => r.requestedAt >= start && r.requestedAt < end))))
  t.ok(ids(fromStart).includes(f('c6').publicId), '120 days ago is in [150, 60) days ago')
  t.ok(ids(fromStart).includes(f('f3').publicId), '60 days and 3 hours ago is in the window')
  t.notOk(ids(fromStart).includes(f('f2').publicId), '45 days ago is after start + 90 days')
  t.notOk(ids(fromStart).includes(f('f6').publicId), '150 days and 5 hours ago is before start')

  const onlyEnd = new Date(now.getTime() - 100 * DAY_MS)
  const toEnd = await getJson(`requests.json${qs({ end_date: utcZ(onlyEnd) })}`)
  const from = new Date(onlyEnd.getTime() - 90 * DAY_MS)
  t.same(ids(toEnd), idsOf(newestFirst(publicFixtures.filter((r) => r.requestedAt >= from && r.requestedAt < onlyEnd))))
  t.same(ids(toEnd), [f('c6').publicId, f('f6').publicId])
})

t.test('service_request_id overrides every other filter', async (t) => {
  const c1 = f('c1').publicId
  const c2 = f('c2').publicId
  const c6 = f('c6').publicId
  const both = await getJson(`requests.json${qs({ service_request_id: `${c2},${c1}`, status: 'closed', service_code: 'graffiti' })}`)
  t.same(ids(both), [c1, c2], 'c1 is open and a pothole, yet listed; newest first')
  t.same(both, [expectedCore(f('c1')), expectedCore(f('c2'))])
  const old = await getJson(`requests.json${qs({ service_request_id: c6, start_date: utcZ(new Date(now.getTime() - DAY_MS)) })}`)
  t.same(ids(old), [c6], 'outside both the default window and the given dates')
  const spaced = await getJson(`requests.json${qs({ service_request_id: ` ${c1} , ${c2},` })}`)
  t.same(ids(spaced), [c1, c2], 'blanks and empty items are ignored')
  const withPrivate = await getJson(`requests.json${qs({ service_request_id: `${f('p1').publicId},${c1},999999999` })}`)
  t.same(ids(withPrivate), [c1], 'non-public and unknown ids are simply absent')
  const none = await getJson(`requests.json${qs({ service_request_id: '999999999' })}`)
  t.same(none, [])
})

t.test('service_code and status filters (comma-separated lists)', async (t) => {
  const codes = await getJson(`requests.json${qs({ service_code: 'pothole,graffiti' })}`)
  const expectedCodes = newestFirst(publicFixtures.filter((r) => recent(r) && ['pothole', 'graffiti'].includes(r.serviceCode)))
  t.same(ids(codes), idsOf(expectedCodes))
  t.same(ids(codes), ['c1', 'c5', 'c2', 'c4'].map((k) => f(k).publicId))
  t.same(await getJson(`requests.json${qs({ service_code: 'no-such-service' })}`), [])

  for (const [status, allowed] of [
    ['open', ['open']],
    ['closed', ['closed']],
    ['open,closed', ['open', 'closed']],
  ] as const) {
    const body = await getJson(`requests.json${qs({ status })}`)
    t.same(ids(body), idsOf(newestFirst(publicFixtures.filter((r) => recent(r) && (allowed as readonly string[]).includes(r.status)))), `status=${status}`)
    t.ok(body.length > 0)
  }
  const combined = await getJson(`requests.json${qs({ status: 'closed', service_code: 'pothole' })}`)
  t.same(ids(combined), ['c5', 'c4'].map((k) => f(k).publicId))

  const bogus = await get(`requests.json${qs({ status: 'bogus' })}`)
  t.equal(bogus.statusCode, 400)
  t.match(bogus.json(), [{ code: 400, description: /status/ }])
  const mixed = await get(`requests.json${qs({ status: 'open,bogus' })}`)
  t.equal(mixed.statusCode, 400)
  const bogusXml = await get(`requests.xml${qs({ status: 'in_progress' })}`)
  t.equal(bogusXml.statusCode, 400)
  t.match(bogusXml.headers['content-type'], /^text\/xml/)
  t.match(xml.parse(bogusXml.body), { errors: { error: [{ code: '400', description: /status/ }] } })

  const empty = await getJson(`requests.json${qs({ status: '', service_code: '', start_date: '', jurisdiction_id: '' })}`)
  t.same(ids(empty), idsOf(newestFirst(publicFixtures.filter(recent))), 'empty parameters count as absent')
})

t.test('paging: page/page_size with X-Page, X-Page-Size, X-Next-Page-URL and Link', async (t) => {
  const all = newestFirst(publicFixtures.filter(recent))
  const size = 3
  const collected: WireRequest[] = []
  let url: string | undefined = `requests.json${qs({ status: 'open,closed', page_size: size })}`
  let page = 1
  while (url) {
    const res = await get(url)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-page'], String(page))
    t.equal(res.headers['x-page-size'], String(size))
    const body = res.json() as WireRequest[]
    collected.push(...body)
    const next = res.headers['x-next-page-url'] as string | undefined
    const link = (res.headers.link as string | undefined) ?? ''
    if (page > 1) t.match(link, /rel="prev"/, 'a previous link after page 1')
    if (next) {
      t.equal(body.length, size, 'full pages before the last')
      const parsed = new URL(next)
      t.equal(`${parsed.origin}${parsed.pathname}`, 'http://open311.test/open311/v2/requests.json', 'built from PUBLIC_BASE_URL')
      t.equal(parsed.searchParams.get('page'), String(page + 1))
      t.equal(parsed.searchParams.get('page_size'), String(size))
      t.equal(parsed.searchParams.get('status'), 'open,closed', 'other parameters are kept')
      t.match(link, `<${next}>; rel="next"`)
      url = `${parsed.pathname.replace('/open311/v2/', '')}${parsed.search}`
    } else {
      t.ok(body.length <= size && body.length > 0, 'the last page')
      t.notMatch(link, /rel="next"/, 'no next link on the last page')
      url = undefined
    }
    page++
    if (page > 20) throw new Error('paging does not end')
  }
  t.equal(page - 1, Math.ceil(all.length / size))
  t.same(ids(collected), idsOf(all), 'the pages together are the whole answer, in order, without repeats')

  const exact = await get(`requests.json${qs({ page_size: all.length })}`)
  t.equal((exact.json() as WireRequest[]).length, all.length)
  t.equal(exact.headers['x-next-page-url'], undefined, 'a page ending exactly at the last item has no next page')
  t.equal(exact.headers.link, undefined, 'and, being page 1, no Link header at all')
  const oneShort = await get(`requests.json${qs({ page_size: all.length - 1 })}`)
  t.ok(oneShort.headers['x-next-page-url'], 'one item left over: a next page')

  const past = await get(`requests.json${qs({ page: 100, page_size: size })}`)
  t.equal(past.statusCode, 200)
  t.same(past.json(), [], 'past the end: an empty list')
  t.equal(past.headers['x-page'], '100')
  t.equal(past.headers['x-next-page-url'], undefined)
  const pastXml = await get(`requests.xml${qs({ page: 100 })}`)
  t.equal(pastXml.statusCode, 200)
  t.match(pastXml.body, /<service_requests><\/service_requests>|<service_requests\/>/)

  const zero = await get(`requests.json${qs({ page: 0, page_size: size })}`)
  const one = await get(`requests.json${qs({ page: 1, page_size: size })}`)
  t.equal(zero.headers['x-page'], '1', 'page=0 reads as 1')
  t.same(zero.json(), one.json())
  t.same(ids(one.json() as WireRequest[]), idsOf(all.slice(0, size)))
  const second = await get(`requests.json${qs({ page: 2, page_size: size })}`)
  t.same(ids(second.json() as WireRequest[]), idsOf(all.slice(size, 2 * size)))

  const defaults = await get('requests.json')
  t.equal(defaults.headers['x-page'], '1')
  t.equal(defaults.headers['x-page-size'], '1000', 'page_size defaults to 1000')
  t.equal((await get(`requests.json${qs({ page_size: 1000 })}`)).statusCode, 200)
  for (const [name, value] of [
    ['page_size', '1001'],
    ['page_size', '0'],
    ['page_size', 'ten'],
    ['page', '-1'],
    ['page', '1.5'],
  ] as const) {
    const res = await get(`requests.json${qs({ [name]: value })}`)
    t.equal(res.statusCode, 400, `${name}=${value}`)
    t.match(res.json(), [{ code: 400, description: new RegExp(name) }])
  }
})

t.test('updated_after (exclusive) and updated_before (inclusive): oldest updated first, no 90-day default', async (t) => {
  const c3 = f('c3')
  const after = await getJson(`requests.json${qs({ updated_after: utcZ(c3.updatedAt) })}`)
  const expectedAfter = oldestUpdatedFirst(publicFixtures.filter((r) => r.updatedAt > c3.updatedAt))
  t.same(ids(after), idsOf(expectedAfter), 'strictly after, oldest updated first')
  t.notOk(ids(after).includes(c3.publicId), 'exclusive: updated exactly then is left out')
  t.same(after, expectedAfter.map(expectedCore))

  const justBefore = await getJson(`requests.json${qs({ updated_after: utcZ(new Date(c3.updatedAt.getTime() - 1000)) })}`)
  t.equal(ids(justBefore)[0], c3.publicId, 'one second earlier: it comes first')

  const longAgo = new Date(now.getTime() - 365 * DAY_MS)
  const everything = await getJson(`requests.json${qs({ updated_after: utcZ(longAgo) })}`)
  t.same(ids(everything), idsOf(oldestUpdatedFirst(publicFixtures.filter((r) => r.updatedAt > longAgo))))
  for (const key of ['c6', 'f5', 'f6', 'f7']) t.ok(ids(everything).includes(f(key).publicId), `${key}: requested over 90 days ago, still listed`)
  for (let i = 1; i < everything.length; i++) {
    t.ok(Date.parse(everything[i - 1]!.updated_datetime) <= Date.parse(everything[i]!.updated_datetime), 'oldest updated first')
  }

  const before = await getJson(`requests.json${qs({ updated_before: utcZ(c3.updatedAt) })}`)
  t.same(ids(before), idsOf(oldestUpdatedFirst(publicFixtures.filter((r) => r.updatedAt <= c3.updatedAt))))
  t.equal(ids(before).at(-1), c3.publicId, 'inclusive: updated exactly then is the last one')
  t.ok(ids(before).includes(f('h1').publicId), 'no 90-day default with updated_before either')

  const from = f('f2').updatedAt
  const window = await getJson(`requests.json${qs({ updated_after: utcZ(from), updated_before: utcZ(c3.updatedAt), status: 'open' })}`)
  t.same(ids(window), idsOf(oldestUpdatedFirst(publicFixtures.filter((r) => r.updatedAt > from && r.updatedAt <= c3.updatedAt && r.status === 'open'))))
  t.ok(window.length > 0)

  const reversed = await get(`requests.json${qs({ updated_after: utcZ(c3.updatedAt), updated_before: utcZ(from) })}`)
  t.equal(reversed.statusCode, 400)
  t.match(reversed.json(), [{ code: 400, description: /updated_before/ }])
})

t.test('lat+long+radius returns exactly the fixture points within the radius', async (t) => {
  const distance = (r: InsertedRequest) => (r.location ? haversineMeters(CENTER, r.location) : Number.POSITIVE_INFINITY)
  for (const radius of [300, 5000]) {
    // Sanity of the fixture spread: nothing within 5% of the edge, so spheroid vs sphere cannot matter.
    for (const r of publicFixtures) {
      const d = distance(r)
      t.ok(Math.abs(d - radius) > radius * 0.05, `${r.key} is ${Math.round(d)} m away: clearly in or out of ${radius} m`)
    }
    const body = await getJson(`requests.json${qs({ lat: CENTER.lat, long: CENTER.long, radius })}`)
    const expected = newestFirst(publicFixtures.filter((r) => recent(r) && distance(r) <= radius))
    t.same(ids(body), idsOf(expected), `radius ${radius} m, default window`)
    const anyTime = await getJson(`requests.json${qs({ lat: CENTER.lat, long: CENTER.long, radius, updated_after: '2000-01-01T00:00:00Z' })}`)
    t.same(ids(anyTime), idsOf(oldestUpdatedFirst(publicFixtures.filter((r) => distance(r) <= radius))), `radius ${radius} m, any time`)
  }
  const cluster = await getJson(`requests.json${qs({ lat: CENTER.lat, long: CENTER.long, radius: 300, updated_after: '2000-01-01T00:00:00Z' })}`)
  t.same(new Set(ids(cluster)), new Set(['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map((k) => f(k).publicId)), 'exactly the cluster (not the private one)')
  const wide = await getJson(`requests.json${qs({ lat: CENTER.lat, long: CENTER.long, radius: 5000, updated_after: '2000-01-01T00:00:00Z' })}`)
  for (const key of ['f1', 'f2', 'f6', 'h1', 'h2']) t.ok(ids(wide).includes(f(key).publicId), `${key} is within 5 km`)
  for (const key of ['f3', 'f4', 'f5', 'f7', 'n1', 'h3']) t.notOk(ids(wide).includes(f(key).publicId), `${key} is not within 5 km`)
  const combined = await getJson(`requests.json${qs({ lat: CENTER.lat, long: CENTER.long, radius: 300, status: 'closed' })}`)
  t.same(ids(combined), ['c5', 'c2', 'c4'].map((k) => f(k).publicId), 'radius combines with the other filters')

  for (const params of [
    { lat: CENTER.lat, long: CENTER.long },
    { lat: CENTER.lat, radius: 300 },
    { long: CENTER.long, radius: 300 },
    { radius: 300 },
  ]) {
    const res = await get(`requests.json${qs(params)}`)
    t.equal(res.statusCode, 400, `${Object.keys(params).join('+')} alone`)
    t.match(res.json(), [{ code: 400, description: /radius/ }])
  }
  const tooFar = await get(`requests.json${qs({ lat: CENTER.lat, long: CENTER.long, radius: 6000 })}`)
  t.equal(tooFar.statusCode, 400)
  t.match(tooFar.json(), [{ code: 400, description: /radius/ }])
  t.equal((await get(`requests.json${qs({ lat: CENTER.lat, long: CENTER.long, radius: 5000 })}`)).statusCode, 200, '5000 m is the limit')
  const badLat = await get(`requests.json${qs({ lat: 'north', long: CENTER.long, radius: 300 })}`)
  t.equal(badLat.statusCode, 400)
  t.match(badLat.json(), [{ code: 400, description: /lat/ }])
  t.equal((await get(`requests.json${qs({ lat: 91, long: CENTER.long, radius: 300 })}`)).statusCode, 400, 'lat out of range')
})

t.test('bbox=min_long,min_lat,max_long,max_lat returns exactly the points inside', async (t) => {
  const f1 = f('f1').location!
  const boxes = {
    cluster: [CENTER.long - 0.005, CENTER.lat - 0.004, CENTER.long + 0.005, CENTER.lat + 0.004],
    aroundF1: [f1.long - 0.002, f1.lat - 0.002, f1.long + 0.002, f1.lat + 0.002],
    everything: [CENTER.long - 0.2, CENTER.lat - 0.2, CENTER.long + 0.2, CENTER.lat + 0.2],
  }
  for (const [name, box] of Object.entries(boxes)) {
    const body = await getJson(`requests.json${qs({ bbox: box.join(','), updated_after: '2000-01-01T00:00:00Z' })}`)
    t.same(ids(body), idsOf(oldestUpdatedFirst(publicFixtures.filter((r) => insideBox(r, box)))), `${name} box, any time`)
  }
  const cluster = await getJson(`requests.json${qs({ bbox: boxes.cluster.join(',') })}`)
  t.same(ids(cluster), ['c1', 'c5', 'c2', 'c3', 'c4'].map((k) => f(k).publicId), 'cluster box, default window, newest first')
  const aroundF1 = await getJson(`requests.json${qs({ bbox: boxes.aroundF1.join(',') })}`)
  t.same(ids(aroundF1), [f('f1').publicId])
  const everything = await getJson(`requests.json${qs({ bbox: boxes.everything.join(','), status: 'open' })}`)
  t.same(ids(everything), idsOf(newestFirst(publicFixtures.filter((r) => recent(r) && r.location && r.status === 'open'))), 'bbox combines with status')

  const [minLong, minLat, maxLong, maxLat] = boxes.cluster as [number, number, number, number]
  for (const bbox of [
    [maxLong, minLat, minLong, maxLat],
    [minLong, maxLat, maxLong, minLat],
    [maxLong, maxLat, minLong, minLat],
  ]) {
    const res = await get(`requests.json${qs({ bbox: bbox.join(',') })}`)
    t.equal(res.statusCode, 400, `inverted bbox=${bbox.join(',')}`)
    t.match(res.json(), [{ code: 400, description: /bbox/ }])
  }
  for (const bbox of ['1,2,3', 'a,b,c,d', `${minLong},${minLat},${maxLong}`, `${minLong},${minLat},${maxLong},${maxLat},1`, '-100,30,-80,45', '-87,95,-86,96']) {
    const res = await get(`requests.json${qs({ bbox })}`)
    t.equal(res.statusCode, 400, `bbox=${bbox}`)
    t.match(res.json(), [{ code: 400, description: /bbox/ }])
  }
})

// Geography && alone compares geocentric boxes; the filter must be an exact lon/lat rectangle.
t.test('bbox excludes points just outside a tall thin box', async (t) => {
  const box = [CENTER.long - 0.001, CENTER.lat - 0.001, CENTER.long + 0.001, CENTER.lat + 0.03]
  t.notOk(insideBox(f('c3'), box), 'c3 is outside the box (west of min_long)')
  t.ok(f('c3').location!.long < box[0]! - 0.0007, 'by more than 0.0007 degrees (~60 m)')
  t.ok(insideBox(f('c1'), box) && insideBox(f('f1'), box), 'c1 and f1 are inside')
  const body = await getJson(`requests.json${qs({ bbox: box.join(',') })}`)
  t.ok(ids(body).includes(f('c1').publicId) && ids(body).includes(f('f1').publicId), 'the points inside are returned')
  t.same(ids(body), ['c1', 'f1'].map((k) => f(k).publicId), 'nothing outside the box is returned')
})

t.test('extensions=true adds extended_attributes, attributes and public notes only', async (t) => {
  const keys = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']
  const body = await getJson(`requests.json${qs({ extensions: true, service_request_id: keys.map((k) => f(k).publicId).join(',') })}`)
  t.equal(body.length, keys.length)
  for (const item of body) {
    const r = [...fx.values()].find((x) => x.publicId === item.service_request_id)!
    t.same(Object.keys(item).sort(), [...CORE_FIELDS, ...EXTENSION_FIELDS].sort(), `${r.key}: core + extension fields`)
    const { extended_attributes, attributes, notes, ...core } = item
    t.same(core, expectedCore(r), `${r.key}: core fields unchanged`)
    const parent = r.parentKey ? f(r.parentKey).publicId : null
    t.same(extended_attributes, {
      detailed_status: r.detailedStatus,
      channel: r.channel,
      duplicate: parent !== null,
      parent_service_request_id: parent,
      closed_datetime: r.closedAt ? chicagoW3c(r.closedAt) : null,
      media_urls: r.mediaUrls,
    }, `${r.key}: extended_attributes`)
    const definitions = catalogAttributes.get(r.serviceCode)!
    const expectedAttributes = definitions
      .filter((d) => d.public !== false && d.variable !== false && r.attributes[d.code] !== undefined)
      .map((d) => {
        const answer = r.attributes[d.code]!
        const values = Array.isArray(answer) ? answer : [answer]
        return {
          code: d.code,
          name: d.description,
          values,
          ...(d.values ? { labels: values.map((v) => d.values!.find((x) => x.key === v)!.name) } : {}),
        }
      })
    t.same(attributes, expectedAttributes, `${r.key}: public answers, in definition order, lists with labels`)
    const publicUpdates = r.updates.filter((u) => u.isPublic)
    t.same(
      notes,
      publicUpdates.map((u) => ({
        update_id: u.updateId,
        datetime: chicagoW3c(u.at),
        status: u.status,
        detailed_status: u.detailedStatus,
        description: u.description,
        type: 'update',
      })),
      `${r.key}: notes are the public updates, oldest first`,
    )
  }
  const c1 = body.find((r) => r.service_request_id === f('c1').publicId)!
  t.match(
    c1.attributes,
    [
      { code: 'size', values: ['LARGE'], labels: ['Larger than a car tire (over 60 cm)'] },
      { code: 'depth_cm', values: ['12'] },
      { code: 'lane', values: ['BIKE'], labels: ['Bike lane'] },
    ],
    'c1: list answers with labels, number as given',
  )
  const c5 = body.find((r) => r.service_request_id === f('c5').publicId)!
  t.match(c5.extended_attributes, { duplicate: true, parent_service_request_id: f('c4').publicId, detailed_status: 'duplicate' })
  const c6 = body.find((r) => r.service_request_id === f('c6').publicId)!
  t.notOk((c6.attributes as { code: string }[]).some((a) => a.code === 'license_plate'), 'a non-public attribute is never shown')
  t.equal((c6.attributes as unknown[]).length, 3, 'c6: the three public answers')
  const c3 = body.find((r) => r.service_request_id === f('c3').publicId)!
  t.equal((c3.notes as unknown[]).length, 2, 'the internal note is not among them')
  const serialized = JSON.stringify(body)
  t.notMatch(serialized, /INTERNAL|555-0100/, 'no trace of the non-public update')
  t.notMatch(serialized, /ABC 1234/, 'no trace of the non-public attribute answer')

  for (const query of ['', qs({ extensions: false }), qs({ service_request_id: f('c1').publicId })]) {
    const plain = await getJson(`requests.json${query}`)
    t.ok(plain.length > 0)
    for (const item of plain) {
      for (const field of EXTENSION_FIELDS) t.notOk(field in item, `${field} absent without extensions (${query || 'no query'})`)
    }
  }
  const plainXml = await get('requests.xml')
  t.notMatch(plainXml.body, /<extended_attributes|<notes|<attributes/)

  const single = await getJson(`requests/${f('c3').publicId}.json${qs({ extensions: true })}`)
  t.same(single, body.filter((r) => r.service_request_id === f('c3').publicId), 'GET request with extensions: the same object')

  const asXml = await get(`requests/${f('c3').publicId}.xml${qs({ extensions: true })}`)
  t.equal(asXml.statusCode, 200)
  t.notMatch(asXml.body, /INTERNAL/)
  const request = (xml.parse(asXml.body) as { service_requests: { request: Json[] } }).service_requests.request
  t.equal(request.length, 1)
  t.match(request[0], {
    service_request_id: f('c3').publicId,
    extended_attributes: { detailed_status: 'in_progress', channel: 'app', duplicate: 'false', parent_service_request_id: '', closed_datetime: '' },
    notes: { note: [{ detailed_status: 'submitted', type: 'update' }, { description: 'Crew scheduled', type: 'update' }] },
  })
  t.match(
    request[0],
    {
      attributes: {
        attribute: [
          { code: 'pole_number', values: { value: ['RL-04821'] } },
          { code: 'pattern', values: { value: ['FLICKER'] }, labels: { label: ['Flickering or cycling on and off'] } },
        ],
      },
    },
    'XML: <attributes><attribute> with <values><value> and <labels><label>',
  )
  t.equal((request[0] as { notes: { note: unknown[] } }).notes.note.length, 2)
})

t.test('GET requests/{id}: a one-element list in both formats; unknown → 404', async (t) => {
  for (const key of ['c1', 'n1', 'h2', 'c6']) {
    const r = f(key)
    const res = await get(`requests/${r.publicId}.json`)
    t.equal(res.statusCode, 200)
    t.same(res.json(), [expectedCore(r)], `${key}: one-element array, golden`)
    const asXml = await get(`requests/${r.publicId}.xml`)
    t.equal(asXml.statusCode, 200)
    t.match(asXml.headers['content-type'], /^text\/xml; charset=utf-8/)
    const parsed = xml.parse(asXml.body) as { service_requests: { request: Json[] } }
    t.equal(parsed.service_requests.request.length, 1)
    t.same(parsed.service_requests.request[0], Object.fromEntries(Object.entries(expectedCore(r)).map(([k, v]) => [k, xmlText(v)])))
  }
  for (const id of ['999999999', f('p1').publicId]) {
    const json = await get(`requests/${id}.json`)
    t.equal(json.statusCode, 404, `${id}: 404 in JSON`)
    t.match(json.json(), [{ code: 404, description: String }])
    const asXml = await get(`requests/${id}.xml`)
    t.equal(asXml.statusCode, 404, `${id}: 404 in XML`)
    t.match(asXml.headers['content-type'], /^text\/xml/)
    t.match(xml.parse(asXml.body), { errors: { error: [{ code: '404', description: /./ }] } })
  }
  t.notMatch((await get(`requests/${f('p1').publicId}.json`)).body, /PRIVATE/)
})

t.test('lenient input datetimes; garbage → 400 naming the parameter', async (t) => {
  const h1 = f('h1').publicId // requested 2025-01-15T12:00:00Z = 06:00 CST
  const h2 = f('h2').publicId // requested 2025-07-15T12:00:00Z = 07:00 CDT
  const window = async (start_date: string, end_date: string) => ids(await getJson(`requests.json${qs({ start_date, end_date })}`))
  const cases: [string, string, string[]][] = [
    ['2025-01-15T12:00:00Z', 'Z', [h1]],
    ['2025-01-15T12:00:00.000Z', 'fractional seconds', [h1]],
    ['2025-01-15T11:59:59.999Z', 'fraction just before', [h1]],
    ['2025-01-15T12:00:00.001Z', 'fraction just after', []],
    ['2025-01-15T12:00:00+0000', '+0000 without colon', [h1]],
    ['2025-01-15T06:00:00-0600', '-0600 without colon', [h1]],
    ['2025-01-15T13:00:00+01:00', '+01:00', [h1]],
    ['2025-01-15T13:00:01+01:00', '+01:00 one second later', []],
    ['2025-01-15T06:00:00', 'zone-less, read in America/Chicago (CST)', [h1]],
    ['2025-01-15T06:00:01', 'zone-less, one second later', []],
    ['2025-01-15T12:00:00', 'zone-less noon is 18:00Z', []],
  ]
  for (const [start, label, expected] of cases) {
    t.same(await window(start, '2025-01-16T00:00:00Z'), expected, `start_date=${start} (${label})`)
  }
  t.same(await window('2025-07-15T07:00:00', '2025-07-16T00:00:00Z'), [h2], 'zone-less in summer is CDT')
  t.same(await window('2025-07-15T07:00:01', '2025-07-16T00:00:00Z'), [])
  t.same(await window('2025-01-14T00:00:00Z', '2025-01-15T06:00:00'), [], 'zone-less end_date, exclusive')
  t.same(await window('2025-01-14T00:00:00Z', '2025-01-15T06:00:00.5'), [h1])

  for (const name of ['start_date', 'end_date', 'updated_after', 'updated_before']) {
    for (const value of ['yesterday', '2025-13-01T00:00:00Z', '2025-02-30T00:00:00Z', '2025-01-15T25:00:00Z', '15/01/2025']) {
      const res = await get(`requests.json${qs({ [name]: value })}`)
      t.equal(res.statusCode, 400, `${name}=${value}`)
      t.match(res.json(), [{ code: 400, description: new RegExp(name) }])
    }
  }
})
