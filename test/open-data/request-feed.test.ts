/**
 * GET /open-data/v1/requests.{csv,json,geojson}: the known fixtures (fixed instants) in every
 * format against golden files, read back with a real CSV parser and a GeoJSON validator;
 * paging by cursor, conditional GETs, filters, refusals, compression and the horizon.
 *
 * UPDATE_GOLDEN=1 rewrites the golden files from the server's answers (then read the diff).
 */
import { readFile, writeFile } from 'node:fs/promises'
import zlib from 'node:zlib'
import { check as checkGeojson } from '@placemarkio/check-geojson'
import { parse as parseCsv } from 'csv-parse/sync'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { REMOVAL_FIELDS } from '../../src/domain/open-data/removal-feed.js'
import { REQUEST_FIELDS } from '../../src/domain/open-data/request-fields.js'
import { UPDATE_FIELDS } from '../../src/domain/open-data/update-feed.js'
import { buildTestApp } from '../helpers/app.js'
import { CENTER, DEMO_JURISDICTION, demoFixtures, insertFixtures } from '../open311/fixtures.js'

const GOLDEN = new URL('./golden/', import.meta.url)
const FORMATS = ['csv', 'json', 'geojson'] as const
const BASE = 'http://open311.test'

const { app, databaseUrl } = await buildTestApp(t)
const db = app.db
await loadDemoCatalog(db)
const fixtures = await insertFixtures(db, demoFixtures(new Date('2026-06-01T15:00:00Z')))
const fixture = (key: string) => fixtures.get(key)!

// c1 is held by Streets (in a named routing area) after Parks passed it on.
await db.execute(sql`insert into departments (jurisdiction_id, code, name) values
                       (${DEMO_JURISDICTION}, 'streets', 'Streets & Sanitation'), (${DEMO_JURISDICTION}, 'parks', 'Parks')`)
await db.execute(sql`insert into service_routes (service_id, department_id, area, area_name)
                     select s.id, d.id, ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(${CENTER.long}, ${CENTER.lat}), 4326)::geography, 400)::geometry)::geography, 'The Loop'
                     from services s, departments d where s.service_code = 'pothole' and d.code = 'streets'`)
await db.execute(sql`insert into work_orders (request_id, department_id, state)
                     select ${fixture('c1').id}, d.id, case d.code when 'streets' then 'in_progress' else 'reassigned' end from departments d`)

const publicFixtures = [...fixtures.values()].filter((f) => f.isPublic)
const inFeedOrder = [...publicFixtures].sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || a.id - b.id)

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers })

/** Follows rel="next" from `url`; returns every page. */
async function allPages(url: string) {
  const pages = []
  for (let next: string | undefined = url; next; ) {
    const res = await get(next)
    if (res.statusCode !== 200) throw new Error(`${next}: ${res.statusCode} ${res.body}`)
    pages.push(res)
    const link = res.headers.link as string | undefined
    next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]!.replace(BASE, '') : undefined
  }
  return pages
}

const csvRecords = (body: string): Record<string, string>[] => parseCsv(body, { columns: true, bom: true, comment: '#' })

t.test('every format matches its golden file', async (t) => {
  for (const format of FORMATS) {
    const res = await get(`/open-data/v1/requests.${format}`)
    t.equal(res.statusCode, 200)
    const golden = new URL(`requests.${format}`, GOLDEN)
    if (process.env.UPDATE_GOLDEN) await writeFile(golden, res.body)
    t.equal(res.body, await readFile(golden, 'utf8'), `requests.${format} as in test/open-data/golden/`)
  }
})

t.test('CSV: RFC 4180, read back by a real parser', async (t) => {
  const res = await get('/open-data/v1/requests.csv')
  t.match(res.headers['content-type'], /^text\/csv; charset=utf-8/)
  t.equal(res.headers['cache-control'], 'public, max-age=3600', 'a whole dump may be cached for an hour')
  t.notOk(res.body.startsWith('\uFEFF'), 'no byte-order mark unless asked')
  t.ok(res.body.split('\r\n').length > publicFixtures.length, 'lines end in CRLF')
  t.notOk(/[^\r]\n/.test(res.body.replace(/"(?:[^"]|"")*"/g, '')), 'no bare LF outside quoted fields')
  const records = csvRecords(res.body)
  t.same(records.map((r) => r.service_request_id), inFeedOrder.map((f) => f.publicId), 'every public request once, in (updated, id) order')
  t.notOk(records.some((r) => r.service_request_id === fixture('p1').publicId), 'the non-public request is not there')

  const byKey = (key: string) => records.find((r) => r.service_request_id === fixture(key).publicId)!
  t.match(byKey('c1'), {
    service_code: 'pothole',
    service_name: 'Pothole',
    status: 'open',
    detailed_status: 'in_progress',
    departments: 'Streets & Sanitation',
    areas: 'The Loop',
    channel: 'app',
    duplicate: 'false',
    parent_service_request_id: '',
    address: '233 S Wacker Dr',
    zipcode: '60606',
  })
  t.same(JSON.parse(byKey('c1').attributes!), { size: 'LARGE', depth_cm: '12', lane: 'BIKE' })
  t.equal(byKey('c1').requested_datetime, fixture('c1').requestedAt.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'), 'UTC with microseconds')
  t.equal(Number(byKey('c1').lat), fixture('c1').location!.lat)
  t.equal(Number(byKey('c1').long), fixture('c1').location!.long)
  t.match(byKey('c5'), { duplicate: 'true', parent_service_request_id: fixture('c4').publicId, detailed_status: 'duplicate' })
  t.match(byKey('n1'), { lat: '', long: '', areas: '', address: 'Alley behind 1200 S State St' })
  t.match(byKey('c2'), { status: 'closed', status_notes: 'Removed by crew 12', closed_datetime: fixture('c2').closedAt!.toISOString().replace('Z', '000Z') })
  t.same(JSON.parse(byKey('c6').attributes!), { make_model: 'Blue Honda Civic', first_seen: '2026-07-01T08:00:00-05:00', vehicle_condition: ['FLAT', 'EXPIRED'] }, 'the plate (public: false) is left out')
  t.notOk(res.body.includes('Pothole in the bike lane'), 'descriptions are not published')
})

t.test('CSV options: a byte-order mark and a trailer, on request', async (t) => {
  const res = await get('/open-data/v1/requests.csv?bom=true&trailer=true')
  t.ok(res.body.startsWith('\uFEFFservice_request_id,'), 'BOM, then the header')
  t.ok(res.body.endsWith(`# complete: ${publicFixtures.length} rows\r\n`), 'the last line says the download is whole')
  t.equal(csvRecords(res.body).length, publicFixtures.length)
})

t.test('GeoJSON: RFC 7946, checked by a validator', async (t) => {
  const res = await get('/open-data/v1/requests.geojson')
  t.match(res.headers['content-type'], /^application\/geo\+json/)
  const collection = checkGeojson(res.body) as unknown as { type: string; features: { id: string; geometry: { type: string; coordinates: number[] } | null; properties: Record<string, unknown> }[] }
  t.equal(collection.type, 'FeatureCollection')
  t.same(collection.features.map((f) => f.id), inFeedOrder.map((f) => f.publicId))
  const c1 = collection.features.find((f) => f.id === fixture('c1').publicId)!
  t.same(c1.geometry, { type: 'Point', coordinates: [fixture('c1').location!.long, fixture('c1').location!.lat] }, '[long, lat]')
  t.same(c1.properties.departments, ['Streets & Sanitation'])
  t.same(c1.properties.areas, ['The Loop'])
  t.notOk('lat' in c1.properties, 'the point is the geometry, not a property')
  t.equal(collection.features.find((f) => f.id === fixture('n1').publicId)!.geometry, null, 'no location: a null geometry')
})

t.test('JSON: an array of objects, the same rows', async (t) => {
  const res = await get('/open-data/v1/requests.json')
  t.match(res.headers['content-type'], /^application\/json/)
  const rows = res.json() as Record<string, unknown>[]
  t.same(rows.map((r) => r.service_request_id), inFeedOrder.map((f) => f.publicId))
  t.match(rows.find((r) => r.service_request_id === fixture('c5').publicId), { duplicate: true, parent_service_request_id: fixture('c4').publicId, departments: [], areas: [] })
})

t.test('pages: a cursor in Link rel="next", every row once, the same as the whole feed', async (t) => {
  for (const format of FORMATS) {
    const pages = await allPages(`/open-data/v1/requests.${format}?limit=4`)
    t.equal(pages.length, Math.ceil(publicFixtures.length / 4), `${format}: ${pages.length} pages`)
    t.notOk(pages.at(-1)!.headers.link, 'no Link on the last page')
    const ids = pages.flatMap((p) =>
      format === 'csv'
        ? csvRecords(p.body).map((r) => r.service_request_id)
        : format === 'json'
          ? (p.json() as { service_request_id: string }[]).map((r) => r.service_request_id)
          : (p.json() as { features: { id: string }[] }).features.map((f) => f.id),
    )
    t.same(ids, inFeedOrder.map((f) => f.publicId), `${format}: the pages make up the feed`)
    for (const page of pages) t.match(page.headers.etag, /^W\/"/, 'each page has a validator')
  }
  const exact = await allPages(`/open-data/v1/requests.json?limit=${publicFixtures.length}`)
  t.equal(exact.length, 1, 'a page that holds the rest has no next link')
})

t.test('pages answer conditional GETs with 304', async (t) => {
  const first = await get('/open-data/v1/requests.csv?limit=3')
  const etag = first.headers.etag as string
  t.equal(first.headers['cache-control'], 'no-cache')
  const again = await get('/open-data/v1/requests.csv?limit=3', { 'if-none-match': etag })
  t.equal(again.statusCode, 304, 'If-None-Match: 304')
  t.equal(again.body, '')
  const echoed = await get('/open-data/v1/requests.csv?limit=3', { 'if-modified-since': first.headers['last-modified'] as string })
  t.equal(echoed.statusCode, 200, 'If-Modified-Since its own Last-Modified (cut to the second): not proof enough, 200')
  const later = await get('/open-data/v1/requests.csv?limit=3', { 'if-modified-since': new Date(Date.now() + 3_600_000).toUTCString() })
  t.equal(later.statusCode, 304, 'If-Modified-Since a time past the horizon: 304')
  const otherFormat = await get('/open-data/v1/requests.json?limit=3', { 'if-none-match': etag })
  t.equal(otherFormat.statusCode, 200, 'another format has another validator')
  const lastModified = Date.parse(first.headers['last-modified'] as string)
  t.ok(lastModified <= Date.now() && lastModified > Date.now() - 60_000, 'Last-Modified: the horizon the page was read under (a moment ago)')
})

t.test('filters', async (t) => {
  const ids = async (query: string) => csvRecords((await get(`/open-data/v1/requests.csv?${query}`)).body).map((r) => r.service_request_id)
  const expect = (keep: (f: (typeof inFeedOrder)[number]) => boolean) => inFeedOrder.filter(keep).map((f) => f.publicId)
  t.same(await ids('service_code=pothole,graffiti'), expect((f) => ['pothole', 'graffiti'].includes(f.serviceCode)))
  t.same(await ids('status=closed'), expect((f) => f.status === 'closed'))
  const c3 = fixture('c3')
  const stamp = (d: Date) => encodeURIComponent(d.toISOString())
  t.same(await ids(`updated_after=${stamp(c3.updatedAt)}`), expect((f) => f.updatedAt > c3.updatedAt), 'updated_after is exclusive')
  t.same(await ids(`updated_before=${stamp(c3.updatedAt)}`), expect((f) => f.updatedAt <= c3.updatedAt), 'updated_before is inclusive')
  t.same(await ids(`requested_after=${stamp(c3.requestedAt)}`), expect((f) => f.requestedAt > c3.requestedAt))
  t.same(await ids(`requested_before=${stamp(c3.requestedAt)}`), expect((f) => f.requestedAt <= c3.requestedAt))
  t.same(
    await ids(`bbox=${CENTER.long - 0.01},${CENTER.lat - 0.01},${CENTER.long + 0.01},${CENTER.lat + 0.01}`),
    expect((f) => f.location !== null && Math.abs(f.location.lat - CENTER.lat) < 0.01 && Math.abs(f.location.long - CENTER.long) < 0.01),
  )
  t.same(await ids('service_code=pothole&status=open'), expect((f) => f.serviceCode === 'pothole' && f.status === 'open'))
  const microsecond = await ids(`updated_after=${encodeURIComponent('2025-07-16T01:02:02.999999Z')}&updated_before=${encodeURIComponent('2025-07-16T01:02:03.000000Z')}`)
  t.same(microsecond, [fixture('h2').publicId], 'times are compared to the microsecond')
})

t.test('bad parameters and cursors: 400 in the Open311 envelope, before any byte of the feed', async (t) => {
  const cases: [string, RegExp][] = [
    ['limit=50001', /limit/],
    ['limit=0', /limit/],
    ['updated_after=yesterday', /updated_after/],
    ['updated_after=2026-01-02T00:00:00Z&updated_before=2026-01-01T00:00:00Z', /updated_before/],
    ['status=pending', /status/],
    ['bbox=1,2,3', /bbox/],
    ['cursor=not-a-cursor', /cursor/],
  ]
  for (const [query, pattern] of cases) {
    const res = await get(`/open-data/v1/requests.csv?${query}`)
    t.equal(res.statusCode, 400, query)
    t.match(res.headers['content-type'], /^application\/json/)
    t.match(res.json(), [{ code: 400, description: pattern }], query)
  }
  const page = await get('/open-data/v1/requests.csv?limit=2&status=open')
  const cursor = new URL(/^<([^>]+)>/.exec(page.headers.link as string)![1]!).searchParams.get('cursor')!
  const elsewhere = await get(`/open-data/v1/requests.csv?limit=2&status=closed&cursor=${cursor}`)
  t.equal(elsewhere.statusCode, 400, 'a cursor is refused with other filters')
  t.match(elsewhere.json(), [{ description: /other filters/ }])
  const unknown = await get('/open-data/v1/requests.xml')
  t.equal(unknown.statusCode, 404, 'an unknown format is an unknown resource')
})

t.test('HEAD sends the headers only; gzip and brotli are streamed', async (t) => {
  const head = await app.inject({ method: 'HEAD', url: '/open-data/v1/requests.csv' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')
  t.match(head.headers['content-type'], /^text\/csv/)
  const plain = (await get('/open-data/v1/requests.geojson')).body
  for (const [encoding, decode] of [['gzip', zlib.gunzipSync], ['br', zlib.brotliDecompressSync]] as const) {
    const res = await app.inject({ url: '/open-data/v1/requests.geojson', headers: { 'accept-encoding': encoding } })
    t.equal(res.headers['content-encoding'], encoding)
    t.equal(decode(res.rawPayload).toString('utf8'), plain, `${encoding}: the same bytes`)
  }
  const cors = await get('/open-data/v1/requests.json', { origin: 'https://portal.example' })
  t.equal(cors.headers['access-control-allow-origin'], '*', 'any origin may read the feed')
})

t.test('a change moves a request to the end of the order, with a new updated_datetime', async (t) => {
  const f1 = fixture('f1')
  const before = csvRecords((await get('/open-data/v1/requests.csv')).body)
  await db.execute(sql`update service_requests set status_notes = 'Crew on site' where id = ${f1.id}`)
  const after = csvRecords((await get('/open-data/v1/requests.csv')).body)
  t.equal(after.length, before.length)
  t.match(after.at(-1), { service_request_id: f1.publicId, status_notes: 'Crew on site' }, 'last now')
  t.ok(after.at(-1)!.updated_datetime! > before.at(-1)!.updated_datetime!, 'stamped later than every other row')
})

t.test('the horizon: rows stamped while an earlier writer is still running wait until it ends', async (t) => {
  const newest = async () => csvRecords((await get('/open-data/v1/requests.csv')).body).at(-1)!.service_request_id
  const c2 = fixture('c2')
  const f3 = fixture('f3')
  if (!databaseUrl) {
    // The embedded database has one connection: no transaction runs while the feed reads.
    await db.execute(sql`update service_requests set status_notes = 'at once' where id = ${c2.id}`)
    t.equal(await newest(), c2.publicId, 'embedded: a committed change is in the feed at once')
    return
  }
  const writer = new pg.Client({ connectionString: databaseUrl })
  await writer.connect()
  t.teardown(() => writer.end())
  await writer.query('begin')
  await writer.query(`update service_requests set status_notes = 'slow writer' where id = $1`, [c2.id])
  // A later change, committed while the writer is still open: stamped after the writer's start.
  await db.execute(sql`update service_requests set status_notes = 'quick writer' where id = ${f3.id}`)
  const [stamps] = await queryRows<{ quick_after_slow_start: boolean }>(
    db,
    sql`select updated_at > (select xact_start from pg_stat_activity where pid = ${(await writer.query('select pg_backend_pid() as pid')).rows[0].pid}) as quick_after_slow_start
        from service_requests where id = ${f3.id}`,
  )
  t.ok(stamps?.quick_after_slow_start, 'the committed change is stamped after the open writer began')
  const held = csvRecords((await get('/open-data/v1/requests.csv')).body)
  t.notOk(held.some((r) => r.service_request_id === f3.publicId), 'the committed change is held back (its old version is gone) while the writer runs')
  t.ok(held.some((r) => r.service_request_id === c2.publicId && r.status_notes !== 'slow writer'), 'the writer\'s change is not visible')
  await writer.query('commit')
  const released = csvRecords((await get('/open-data/v1/requests.csv')).body)
  t.same(released.slice(-2).map((r) => r.status_notes), ['slow writer', 'quick writer'], 'both, in the order they were stamped')
})

t.test('docs/open-data.md describes every column of every feed', async (t) => {
  const doc = await readFile(new URL('../../docs/open-data.md', import.meta.url), 'utf8')
  for (const field of [...REQUEST_FIELDS, ...UPDATE_FIELDS, ...REMOVAL_FIELDS]) t.match(doc, new RegExp(`^\\| \`${field.name}\` \\| ${field.type} \\| \\S`, 'm'), field.name)
})

t.test('the horizon refuses when it cannot see every writer', async (t) => {
  if (!databaseUrl) {
    // The embedded database has one role and one connection: every writer is visible.
    const [row] = await queryRows<{ ok: boolean }>(db, sql`select open311_feed_horizon() <= clock_timestamp() as ok`)
    t.ok(row?.ok, 'embedded: the horizon is now')
    return
  }
  // A reader role without pg_read_all_stats cannot see the superuser's transaction start.
  const role = `feed_reader_${process.pid}`
  await db.execute(sql.raw(`create role ${role} login; grant usage on schema public to ${role}`))
  t.teardown(async () => {
    await db.execute(sql.raw(`drop owned by ${role}; drop role if exists ${role}`)).catch(() => {})
  })
  const writer = new pg.Client({ connectionString: databaseUrl })
  await writer.connect()
  await writer.query('begin')
  await writer.query(`update service_requests set status_notes = 'hidden writer' where id = $1`, [fixture('f2').id])
  const url = new URL(databaseUrl)
  url.username = role
  const reader = new pg.Client({ connectionString: url.toString() })
  await reader.connect()
  const refused = await reader.query('select open311_feed_horizon()').then(
    () => undefined,
    (e: { code?: string; message?: string }) => e,
  )
  t.match(refused, { code: '55000', message: /pg_read_all_stats/ }, 'refused, naming the grant it needs')
  await writer.query('rollback')
  await writer.end()
  await reader.end()
})
