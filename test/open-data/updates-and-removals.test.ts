/**
 * GET /open-data/v1/updates.{csv,json} (the public history) and removed.{csv,json} (requests
 * that left public view), golden-tested on the known fixtures, and the operator's
 * POST /admin/v1/requests/{id}/public-view that takes a request out of view and puts it back.
 *
 * UPDATE_GOLDEN=1 rewrites the golden files from the server's answers (then read the diff).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { parse as parseCsv } from 'csv-parse/sync'
import { sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { DEMO_JURISDICTION, demoFixtures, insertFixtures } from '../open311/fixtures.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const GOLDEN = new URL('./golden/', import.meta.url)
const { app } = await buildTestApp(t)
const db = app.db
await loadDemoCatalog(db)
const fixtures = await insertFixtures(db, demoFixtures(new Date('2026-06-01T15:00:00Z')))
const fixture = (key: string) => fixtures.get(key)!
const admin = await createApiKey(db, { name: 'operator', scopes: ['admin'] }, SERVER_ACTOR)

const get = (url: string) => app.inject(url)
const csv = (body: string): Record<string, string>[] => parseCsv(body, { columns: true })

async function golden(t: Test, name: string, body: string) {
  const file = new URL(name, GOLDEN)
  if (process.env.UPDATE_GOLDEN) await writeFile(file, body)
  t.equal(body, await readFile(file, 'utf8'), `${name} as in test/open-data/golden/`)
}

const publicUpdates = [...fixtures.values()]
  .filter((f) => f.isPublic)
  .flatMap((f) => f.updates.filter((u) => u.isPublic).map((u) => ({ ...u, publicId: f.publicId })))
  .sort((a, b) => a.at.getTime() - b.at.getTime() || Number(a.updateId) - Number(b.updateId))

t.test('updates: every public entry of every public request, in (updated_datetime, id) order, golden', async (t) => {
  for (const format of ['csv', 'json']) {
    const res = await get(`/open-data/v1/updates.${format}`)
    t.equal(res.statusCode, 200)
    await golden(t, `updates.${format}`, res.body)
  }
  const rows = csv((await get('/open-data/v1/updates.csv')).body)
  t.same(rows.map((r) => r.update_id), publicUpdates.map((u) => u.updateId))
  t.notOk(rows.some((r) => r.public_note!.startsWith('INTERNAL')), 'internal notes are not published')
  t.notOk(rows.some((r) => r.service_request_id === fixture('p1').publicId), 'nor the history of a non-public request')
  const c1 = rows.filter((r) => r.service_request_id === fixture('c1').publicId)
  t.match(c1, [{ detailed_status: 'submitted' }, { detailed_status: 'in_progress', public_note: 'Inspector assigned' }])
  const only = csv((await get(`/open-data/v1/updates.csv?service_request_id=${fixture('c3').publicId}`)).body)
  t.same(only.map((r) => r.public_note), ['Request received', 'Crew scheduled'], 'one request\'s history')
  const after = csv((await get(`/open-data/v1/updates.csv?updated_after=${encodeURIComponent(publicUpdates[3]!.at.toISOString())}`)).body)
  t.same(after.map((r) => r.update_id), publicUpdates.filter((u) => u.at > publicUpdates[3]!.at).map((u) => u.updateId), 'updated_after is exclusive')
  const geojson = await get('/open-data/v1/updates.geojson')
  t.equal(geojson.statusCode, 404, 'the history has no GeoJSON form')
  t.match(geojson.json(), [{ code: 404, description: 'unknown format: use .csv or .json' }])
})

t.test('updates: pages by cursor', async (t) => {
  const seen: string[] = []
  for (let next: string | undefined = '/open-data/v1/updates.json?limit=5'; next; ) {
    const res = await get(next)
    seen.push(...(res.json() as { update_id: string }[]).map((r) => r.update_id))
    const link = res.headers.link as string | undefined
    next = link ? /^<http:\/\/open311\.test([^>]+)>/.exec(link)![1] : undefined
  }
  t.same(seen, publicUpdates.map((u) => u.updateId))
  const page = await get('/open-data/v1/updates.json?limit=5')
  const cursor = new URL(/^<([^>]+)>/.exec(page.headers.link as string)![1]!).searchParams.get('cursor')!
  const elsewhere = await get(`/open-data/v1/requests.json?limit=5&cursor=${cursor}`)
  t.equal(elsewhere.statusCode, 400, 'a cursor of one feed is refused by another')
})

t.test('removed: golden, on entries at known times', async (t) => {
  await db.execute(sql`insert into open_data_removals (request_id, jurisdiction_id, service_request_id, reason, removed_at) values
                         (900001, ${DEMO_JURISDICTION}, '900001', 'deleted', '2026-05-01T10:00:00Z'),
                         (900002, ${DEMO_JURISDICTION}, '900002', 'made_private', '2026-05-02T11:30:00.5Z'),
                         (900003, 'elsewhere.example', '900003', 'deleted', '2026-05-03T00:00:00Z')`)
  for (const format of ['csv', 'json']) await golden(t, `removed.${format}`, (await get(`/open-data/v1/removed.${format}`)).body)
  const since = csv((await get(`/open-data/v1/removed.csv?since=${encodeURIComponent('2026-05-01T10:00:00Z')}`)).body)
  t.same(since.map((r) => r.service_request_id), ['900002'], 'since is exclusive, and other jurisdictions\' entries are not shown')
  await db.execute(sql`delete from open_data_removals where request_id >= 900001`)
})

t.test('an operator takes a request out of public view and puts it back; harvesters see both', async (t) => {
  const c2 = fixture('c2')
  const withdraw = (isPublic: boolean) =>
    app.inject({
      method: 'POST',
      url: `/admin/v1/requests/${c2.publicId}/public-view`,
      headers: { authorization: `Bearer ${admin.key}` },
      payload: { public: isPublic, reason: 'names a neighbour' },
    })
  const anonymous = await app.inject({ method: 'POST', url: `/admin/v1/requests/${c2.publicId}/public-view`, payload: { public: false, reason: 'x' } })
  t.equal(anonymous.statusCode, 403, 'operators only')
  const missing = await app.inject({
    method: 'POST',
    url: '/admin/v1/requests/999999/public-view',
    headers: { authorization: `Bearer ${admin.key}` },
    payload: { public: false, reason: 'x' },
  })
  t.equal(missing.statusCode, 404)

  const out = await withdraw(false)
  t.equal(out.statusCode, 200)
  t.same(out.json(), { public: false, changed: true })
  t.same((await withdraw(false)).json(), { public: false, changed: false }, 'again: nothing changes')

  const removed = csv((await get('/open-data/v1/removed.csv')).body)
  t.match(removed, [{ service_request_id: c2.publicId, reason: 'made_private' }], 'listed in removed, once')
  t.equal(removed.length, 1)
  t.notOk((await get('/open-data/v1/requests.csv')).body.includes(`"${c2.publicId}"`), 'gone from the requests feed')
  t.notOk(csv((await get('/open-data/v1/updates.csv')).body).some((r) => r.service_request_id === c2.publicId), 'and its history from the updates feed')
  t.equal((await get(`/open311/v2/requests/${c2.publicId}.json`)).statusCode, 404, 'and from GeoReport')
  const [entry] = await db.execute<{ description: string; is_public: boolean }>(
    sql`select description, is_public from request_updates where request_id = ${c2.id} order by id desc limit 1`,
  ).then((r) => (r as unknown as { rows: { description: string; is_public: boolean }[] }).rows)
  t.match(entry, { description: 'Withdrawn from public view: names a neighbour', is_public: false }, 'the reason is kept, internally')

  const back = await withdraw(true)
  t.same(back.json(), { public: true, changed: true })
  t.same(csv((await get('/open-data/v1/removed.csv')).body), [], 'back in view: no longer listed as removed')
  const last = csv((await get('/open-data/v1/requests.csv')).body).at(-1)
  t.equal(last?.service_request_id, c2.publicId, 'back in the requests feed, at the end: a harvester pulling updated_after sees it')
  const history = csv((await get('/open-data/v1/updates.csv')).body)
  const c2Entries = c2.updates.filter((u) => u.isPublic).length
  t.same(
    history.slice(-c2Entries).map((r) => r.service_request_id),
    Array(c2Entries).fill(c2.publicId),
    'its history re-enters the updates feed at the end, for harvesters already past its old times',
  )
  t.equal(history.at(-1)!.datetime, c2.updates.filter((u) => u.isPublic).at(-1)!.at.toISOString().replace('Z', '000Z'), 'each entry keeps its own datetime')
})
