/**
 * Sensitive services (catalog `"privacy": "sensitive"`, docs/open-data.md "Sensitive
 * categories"): every open-data feed and every anonymous GeoReport read shows the request at
 * its grid cell's centre, without address, description, notes, media or free-text answers, and
 * spatial filters match that centre; an admin key reads it as it is; other services are as they
 * always were.
 */
import { check as checkGeojson } from '@placemarkio/check-geojson'
import { parse as parseCsv } from 'csv-parse/sync'
import { sql } from 'drizzle-orm'
import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import demoCatalog from '../../src/domain/demo/demo-catalog.json' with { type: 'json' }
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const xml = new XMLParser({ parseTagValue: false, isArray: (name) => ['request', 'request_update', 'attribute', 'note', 'media_url'].includes(name) })

const { app } = await buildTestApp(t)
const db = app.db
await loadDemoCatalog(db)
const admin = await createApiKey(db, { name: 'sensitive ops', scopes: ['admin'] }, SERVER_ACTOR)
const client = await createApiKey(db, { name: 'sensitive client' }, SERVER_ACTOR)
const asAdmin = { authorization: `Bearer ${admin.key}` }

/** The demo catalog with noise complaints made sensitive (or not), imported as an operator does. */
async function importNoisePrivacy(privacy: string) {
  const catalog = structuredClone(demoCatalog) as { services: { service_code: string; privacy?: string }[] }
  catalog.services.find((s) => s.service_code === 'noise-complaint')!.privacy = privacy
  return app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: catalog })
}

/** Where the reporter stood: a home. */
const HOME = { lat: '41.87912', long: '-87.63588' }
/**
 * Its grid cell's centre, worked out by hand from the method in docs/open-data.md:
 * row floor(41.87912 × 1000) = 41879, centre latitude 41.8795; cos(41.8795°) × 360000 → 268038
 * cells in that row, each 360/268038° wide; column floor((−87.63588 + 180) × 268038 / 360) =
 * 68769, centre −180 + 68769.5 × 360 / 268038 = −87.6361560…, rounded to 6 decimals. 48 m from HOME.
 */
const CELL = { lat: 41.8795, long: -87.636156 }
/** Another home in the same cell. */
const NEIGHBOUR = { lat: '41.8796', long: '-87.6356' }
/** A pothole in the street 4 m from the home: a standard service. */
const KERB = { lat: '41.87915', long: '-87.63586' }
const KERB_ADDRESS = '1300 W Harbour St'
const KERB_NOTE = 'Crew patched it'

const ADDRESS = '1234 W Quillfeather Ave'
const DESCRIPTION = 'Bass from Zephyrina next door every night'
const DETAILS = 'The grey house with plate QZX-4417 in the drive'
const PHOTO = 'https://photos.example/home-7731.jpg'
const STATUS_NOTE = 'Officer spoke to the tenant at 1234 W Quillfeather'
const UPDATE_NOTE = 'Warning letter sent to 1234 W Quillfeather Ave'
/** What no public read of the sensitive request may show: its text, and its true coordinates (not as a prefix of the cell's). */
const SECRET_TEXT = [ADDRESS, 'Quillfeather', 'Zephyrina', DETAILS, 'QZX-4417', PHOTO, 'home-7731', STATUS_NOTE, UPDATE_NOTE, 'ADDR-77310']
const TRUE_POINT = /41\.87912|-87\.63588|41\.8796(?!\d)|-87\.6356(?!\d)/

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

async function postRequest(fields: Record<string, string>): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    payload: form({ api_key: client.key, ...fields }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  if (res.statusCode !== 200) throw new Error(`POST: ${res.statusCode} ${res.body}`)
  return res.json()[0].service_request_id
}

const noiseAt = (point: { lat: string; long: string }) => ({
  service_code: 'noise-complaint',
  ...point,
  address_string: ADDRESS,
  address_id: 'ADDR-77310',
  zipcode: '60607',
  description: DESCRIPTION,
  media_url: PHOTO,
  'attribute[noise_type]': 'MUSIC',
  'attribute[started_at]': '2026-05-01T22:30:00-05:00',
  'attribute[recurring_details]': DETAILS,
})

t.test('the catalog takes privacy per service, refuses other values naming the field, and the admin API shows it', async (t) => {
  const bad = await importNoisePrivacy('secret')
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), [{ code: 400, description: /services\[\d+\]\.privacy must be one of standard, sensitive \(got "secret"\)$/ }])

  const ok = await importNoisePrivacy('sensitive')
  t.equal(ok.statusCode, 200, ok.body)
  t.same(ok.json().updated, ['noise-complaint'], 'only that service changed')
  t.same((await importNoisePrivacy('sensitive')).json().updated, [], 'importing it again changes nothing')

  const listed = (await app.inject({ url: '/admin/v1/services', headers: asAdmin })).json() as { service_code: string; privacy: string }[]
  t.equal(listed.find((s) => s.service_code === 'noise-complaint')?.privacy, 'sensitive')
  t.equal(listed.find((s) => s.service_code === 'pothole')?.privacy, 'standard', 'the default')

  for (const format of ['json', 'xml']) {
    const services = await app.inject(`/open311/v2/services.${format}`)
    t.notOk(services.body.includes('privacy'), `GeoReport services.${format} keeps its shape`)
    const definition = await app.inject(`/open311/v2/services/noise-complaint.${format}`)
    t.notOk(definition.body.includes('privacy'), `GeoReport services/noise-complaint.${format} keeps its shape`)
  }
})

const ids = { noise: '', neighbour: '', pothole: '' }

t.test('requests on the sensitive service are stored as sent', async (t) => {
  ids.noise = await postRequest(noiseAt(HOME))
  ids.neighbour = await postRequest({ ...noiseAt(NEIGHBOUR), description: 'Dog barking' })
  ids.pothole = await postRequest({ service_code: 'pothole', ...KERB, address_string: KERB_ADDRESS, description: 'Deep hole by the kerb', 'attribute[size]': 'LARGE' })
  for (const [id, text] of [[ids.noise, STATUS_NOTE], [ids.pothole, KERB_NOTE]] as const) {
    await db.execute(sql`update service_requests set status_notes = ${text} where public_id = ${id}`)
    const note = await app.inject({ method: 'POST', url: `/admin/v1/requests/${id}/notes`, headers: asAdmin, payload: { description: text, public: true } })
    t.equal(note.statusCode, 200, note.body)
  }
  const note = await app.inject({ method: 'POST', url: `/admin/v1/requests/${ids.noise}/notes`, headers: asAdmin, payload: { description: UPDATE_NOTE, public: true } })
  t.equal(note.statusCode, 200, note.body)
  const [stored] = await queryRows<{ lat: number; long: number; address: string; description: string }>(
    db,
    sql`select ST_Y(location::geometry) as lat, ST_X(location::geometry) as long, address, description from service_requests where public_id = ${ids.noise}`,
  )
  t.same(stored, { lat: 41.87912, long: -87.63588, address: ADDRESS, description: DESCRIPTION }, 'the exact point and the text are kept')
})

/** A request as the GeoReport JSON answers show it. */
type WireRequest = Record<string, unknown> & {
  service_request_id: string
  extended_attributes?: { media_urls: string[] }
  attributes?: { code: string; values: string[] }[]
  notes?: { description: string }[]
}

t.test('every feed format shows the cell centre and none of the text', async (t) => {
  for (const query of ['', '?limit=1', '?limit=2', '?service_code=noise-complaint', `?bbox=${CELL.long - 0.0001},${CELL.lat - 0.0001},${CELL.long + 0.0001},${CELL.lat + 0.0001}`]) {
    for (const format of ['csv', 'json', 'geojson']) {
      const url = `/open-data/v1/requests.${format}${query}`
      const res = await app.inject(url)
      t.equal(res.statusCode, 200, url)
      t.same(SECRET_TEXT.filter((s) => res.body.includes(s)), [], `${url}: none of the text`)
      t.notOk(TRUE_POINT.test(res.body), `${url}: not the true coordinates`)
    }
  }
  for (const url of ['/open-data/v1/updates.csv', '/open-data/v1/updates.json', `/open-data/v1/updates.csv?service_request_id=${ids.noise}`, '/open-data/v1/removed.csv']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    t.same(SECRET_TEXT.filter((s) => res.body.includes(s)), [], `${url}: none of the text`)
  }
  const history = parseCsv((await app.inject(`/open-data/v1/updates.csv?service_request_id=${ids.noise},${ids.pothole}`)).body, { columns: true }) as Record<string, string>[]
  t.ok(history.some((u) => u.service_request_id === ids.noise), 'the sensitive request\'s history is listed')
  t.ok(history.filter((u) => u.service_request_id === ids.noise).every((u) => u.public_note === ''), 'with its notes withheld')
  t.ok(history.some((u) => u.service_request_id === ids.pothole && u.public_note === KERB_NOTE), 'a standard request keeps its notes in the updates feed')

  const csv = parseCsv((await app.inject('/open-data/v1/requests.csv')).body, { columns: true }) as Record<string, string>[]
  const row = csv.find((r) => r.service_request_id === ids.noise)!
  t.match(row, { lat: '41.8795', long: '-87.636156', address: '', zipcode: '60607', status_notes: '', service_code: 'noise-complaint' })
  t.same(JSON.parse(row.attributes!), { noise_type: 'MUSIC', started_at: '2026-05-01T22:30:00-05:00' }, 'list and datetime answers stay; free text goes')
  t.match(csv.find((r) => r.service_request_id === ids.neighbour), { lat: '41.8795', long: '-87.636156' }, 'the neighbour is in the same cell')
  t.match(csv.find((r) => r.service_request_id === ids.pothole), { lat: KERB.lat, long: KERB.long, address: KERB_ADDRESS, status_notes: KERB_NOTE }, 'a standard service is exact')

  const json = (await app.inject('/open-data/v1/requests.json')).json() as Record<string, unknown>[]
  t.match(json.find((r) => r.service_request_id === ids.noise), { lat: CELL.lat, long: CELL.long, address: null, status_notes: null, attributes: { noise_type: 'MUSIC' } })

  const geojson = checkGeojson((await app.inject('/open-data/v1/requests.geojson')).body) as unknown as {
    features: { id: string; geometry: { coordinates: number[] }; properties: Record<string, unknown> }[]
  }
  const feature = geojson.features.find((f) => f.id === ids.noise)!
  t.same(feature.geometry, { type: 'Point', coordinates: [CELL.long, CELL.lat] })
  t.match(feature.properties, { address: null, status_notes: null })
  t.same(geojson.features.find((f) => f.id === ids.pothole)!.geometry.coordinates, [Number(KERB.long), Number(KERB.lat)])
})

t.test('feed bbox filters match the cell centre, not the true point', async (t) => {
  const box = (p: { lat: number; long: number }, d: number) => `${p.long - d},${p.lat - d},${p.long + d},${p.lat + d}`
  const idsIn = async (bbox: string) =>
    (parseCsv((await app.inject(`/open-data/v1/requests.csv?bbox=${bbox}`)).body, { columns: true }) as { service_request_id: string }[]).map((r) => r.service_request_id)
  t.same((await idsIn(box(CELL, 0.0001))).sort(), [ids.noise, ids.neighbour].sort(), 'a box around the centre holds both homes of the cell')
  t.same(await idsIn(box({ lat: 41.87912, long: -87.63588 }, 0.0001)), [ids.pothole], 'a box around the home holds only the pothole by it')
})

const georeportReads = (id: string) =>
  ['json', 'xml'].flatMap((format) =>
    ['', '?extensions=true'].flatMap((q) => [
      `/open311/v2/requests/${id}.${format}${q}`,
      `/open311/v2/requests.${format}${q}`,
      `/open311/v2/requests.${format}?service_request_id=${id}${q ? '&extensions=true' : ''}`,
      `/open311/v2/requests.${format}?service_code=noise-complaint${q ? '&extensions=true' : ''}`,
    ]),
  )

t.test('anonymous GeoReport reads show the cell centre and none of the text, in JSON and XML, with and without extensions', async (t) => {
  const updatesWindow = `?start_date=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}`
  const urls = [...georeportReads(ids.noise), ...['json', 'xml'].map((f) => `/open311/v2/servicerequestupdates.${f}${updatesWindow}`)]
  const writeKey = { authorization: `Bearer ${client.key}` }
  for (const url of urls) {
    for (const headers of [{}, writeKey, { authorization: `Bearer o311_notakey00000_${'x'.repeat(43)}` }]) {
      const res = await app.inject({ url, headers })
      const who = Object.keys(headers).length ? `${url} (${headers === writeKey ? 'a requests:write key' : 'an invalid key'})` : url
      t.equal(res.statusCode, 200, who)
      t.same(SECRET_TEXT.filter((s) => res.body.includes(s)), [], `${who}: none of the text`)
      t.notOk(TRUE_POINT.test(res.body), `${who}: not the true coordinates`)
      t.notOk(res.headers['cache-control'], `${who}: nothing private to protect`)
    }
  }

  const [core] = (await app.inject(`/open311/v2/requests/${ids.noise}.json`)).json() as WireRequest[]
  t.match(core, { lat: CELL.lat, long: CELL.long, address: null, address_id: null, zipcode: '60607', description: null, status_notes: null, media_url: null })
  const extended = ((await app.inject(`/open311/v2/requests/${ids.noise}.json?extensions=true`)).json() as WireRequest[])[0]!
  t.match(extended, { lat: CELL.lat, long: CELL.long, address: null, description: null })
  t.same(extended.extended_attributes!.media_urls, [])
  t.same(extended.attributes!.map((a) => [a.code, a.values]), [['noise_type', ['MUSIC']], ['started_at', ['2026-05-01T22:30:00-05:00']]], 'free text withheld')
  t.ok(extended.notes!.length >= 2, 'the history is shown')
  t.same([...new Set(extended.notes!.map((n) => n.description))], [''], 'without its notes')

  const xmlRequest = xml.parse((await app.inject(`/open311/v2/requests/${ids.noise}.xml?extensions=true`)).body).service_requests.request[0]
  t.match(xmlRequest, { lat: '41.8795', long: '-87.636156', address: '', description: '' })

  const updates = (await app.inject(`/open311/v2/servicerequestupdates.json${updatesWindow}`)).json() as { service_request_id: string; description: string; media_url: string | null }[]
  const noiseUpdates = updates.filter((u) => u.service_request_id === ids.noise)
  t.ok(noiseUpdates.length >= 2, 'servicerequestupdates lists its updates')
  t.same([...new Set(noiseUpdates.map((u) => `${u.description}|${u.media_url}`))], ['|null'], 'with empty descriptions and no media (media_url null)')
  t.ok(updates.some((u) => u.service_request_id === ids.pothole && u.description === KERB_NOTE), 'a standard request keeps its notes')
})

t.test('anonymous radius and bbox searches match the cell centre, not the true point', async (t) => {
  const found = async (query: string, headers: Record<string, string> = {}) =>
    ((await app.inject({ url: `/open311/v2/requests.json?${query}`, headers })).json() as WireRequest[]).map((r) => r.service_request_id).sort()
  const sorted = (...list: string[]) => [...list].sort()
  t.same(await found(`lat=${HOME.lat}&long=${HOME.long}&radius=10`), [ids.pothole], '10 m around the home: only the pothole by it')
  t.same(await found(`lat=${CELL.lat}&long=${CELL.long}&radius=10`), sorted(ids.noise, ids.neighbour), '10 m around the centre: both homes of the cell')
  t.same(await found(`lat=${HOME.lat}&long=${HOME.long}&radius=60`), sorted(ids.noise, ids.neighbour, ids.pothole), '60 m: the centre (48 m away) is inside')
  t.same(await found(`bbox=-87.6359,41.8791,-87.6358,41.8792`), [ids.pothole], 'a box around the home: only the pothole')
  t.same(await found(`bbox=-87.6362,41.8794,-87.6361,41.8796`), sorted(ids.noise, ids.neighbour), 'a box around the centre: both')
  t.same(await found(`lat=${HOME.lat}&long=${HOME.long}&radius=10`, asAdmin), sorted(ids.noise, ids.pothole), 'an operator searches the true points')
})

t.test('an admin key sees the sensitive request as it is, in JSON and XML, and the answer is not cacheable', async (t) => {
  for (const url of georeportReads(ids.noise)) {
    const res = await app.inject({ url, headers: asAdmin })
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['cache-control'], 'private, no-store', `${url}: private`)
    t.ok(res.body.includes('41.87912') && res.body.includes('-87.63588'), `${url}: the exact point`)
    t.ok(res.body.includes(ADDRESS) && res.body.includes(DESCRIPTION) && res.body.includes(STATUS_NOTE), `${url}: the text`)
  }
  const extended = ((await app.inject({ url: `/open311/v2/requests/${ids.noise}.json?extensions=true`, headers: asAdmin })).json() as WireRequest[])[0]!
  t.match(extended, { lat: 41.87912, long: -87.63588, address: ADDRESS, address_id: 'ADDR-77310', description: DESCRIPTION, status_notes: STATUS_NOTE, media_url: PHOTO })
  t.same(extended.extended_attributes!.media_urls, [PHOTO])
  t.ok(extended.attributes!.some((a) => a.code === 'recurring_details' && a.values[0] === DETAILS), 'the free-text answer')
  t.ok(extended.notes!.some((n) => n.description === UPDATE_NOTE), 'the notes')
  const xmlRequest = xml.parse((await app.inject({ url: `/open311/v2/requests/${ids.noise}.xml`, headers: asAdmin })).body).service_requests.request[0]
  t.match(xmlRequest, { lat: '41.87912', long: '-87.63588', address: ADDRESS })
  const updates = await app.inject({ url: '/open311/v2/servicerequestupdates.json', headers: asAdmin })
  t.ok(updates.body.includes(UPDATE_NOTE), 'servicerequestupdates shows the notes to an operator')
  for (const format of ['csv', 'json', 'geojson']) {
    const feed = await app.inject({ url: `/open-data/v1/requests.${format}`, headers: asAdmin })
    t.ok(feed.body.includes(ids.noise) && !TRUE_POINT.test(feed.body) && !feed.body.includes(ADDRESS), `requests.${format}: the feeds are public whoever asks`)
  }
})

t.test('a standard service reads the same for the public and for an operator', async (t) => {
  for (const url of georeportReads(ids.pothole).filter((u) => u.includes(ids.pothole))) {
    const [anonymous, operator] = await Promise.all([app.inject(url), app.inject({ url, headers: asAdmin })])
    t.equal(anonymous.body, operator.body, url)
    t.ok(anonymous.body.includes(KERB.lat) && anonymous.body.includes(KERB_ADDRESS), `${url}: exact point and address`)
  }
})

t.test('changing a service\'s privacy moves its requests\' updated_datetime, so harvesters fetch them again', async (t) => {
  const updatedAt = async () =>
    queryRows<{ public_id: string; updated_at: string }>(db, sql`select public_id, updated_at::text from service_requests where public_id in (${ids.noise}, ${ids.pothole}) order by public_id`)
  const before = await updatedAt()
  t.equal((await importNoisePrivacy('standard')).statusCode, 200)
  const after = await updatedAt()
  const noise = (rows: typeof before) => rows.find((r) => r.public_id === ids.noise)!.updated_at
  const pothole = (rows: typeof before) => rows.find((r) => r.public_id === ids.pothole)!.updated_at
  t.not(noise(after), noise(before), 'the noise request changed')
  t.equal(pothole(after), pothole(before), 'the pothole did not')
  const json = (await app.inject('/open-data/v1/requests.json')).json() as Record<string, unknown>[]
  t.match(json.at(-1), { service_request_id: String, service_code: 'noise-complaint' }, 'the noise requests come last in the feed now')
  t.match(json.find((r) => r.service_request_id === ids.noise), { lat: 41.87912, long: -87.63588, address: ADDRESS }, 'and are exact while the service is standard')

  const history = parseCsv((await app.inject('/open-data/v1/updates.csv')).body, { columns: true }) as Record<string, string>[]
  t.equal(history.at(-1)?.service_request_id, ids.noise, 'its history comes again at the end of the updates feed')
  t.ok(history.some((u) => u.public_note === UPDATE_NOTE), 'with its notes, now the service is standard')

  t.equal((await importNoisePrivacy('sensitive')).statusCode, 200)
  const feed = await app.inject('/open-data/v1/requests.json')
  t.notOk(TRUE_POINT.test(feed.body), 'sensitive again: generalised again')
  const withheld = parseCsv((await app.inject('/open-data/v1/updates.csv')).body, { columns: true }) as Record<string, string>[]
  t.ok(withheld.at(-1)?.service_request_id === ids.noise && withheld.at(-1)?.public_note === '', 'and its history again, its notes withheld')
})
