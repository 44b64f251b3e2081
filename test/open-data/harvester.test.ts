/**
 * A harvester as docs/open-data.md tells one to work: pull the whole feed page by page through
 * Link rel="next" while another task creates, updates, withdraws from public view and restores
 * requests, then stay current with `updated_after` = the largest updated_datetime received and
 * `removed?since=` = the largest removed_datetime. It must see every version at most once, and
 * end with exactly the server's public set, each request at its latest version.
 * CSV is read with a real parser (csv-parse), GeoJSON checked by a validator (@placemarkio/check-geojson).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { check as checkGeojson } from '@placemarkio/check-geojson'
import { parse as parseCsv } from 'csv-parse/sync'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const { app, logs } = await buildTestApp(t)
const db = app.db
await loadDemoCatalog(db)
const { key } = await createApiKey(db, { name: 'harvest writer' }, SERVER_ACTOR)
const operator = await createApiKey(db, { name: 'operator', scopes: ['admin'] }, SERVER_ACTOR)

async function createRequest(n: number): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    payload: new URLSearchParams({ api_key: key, service_code: 'graffiti', lat: String(41.87 + n / 10_000), long: '-87.63', 'attribute[surface][]': 'WALL', 'attribute[offensive]': 'NO' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  if (res.statusCode !== 200) throw new Error(`POST: ${res.statusCode} ${res.body} ${JSON.stringify(logs().filter((l) => Number(l.level) >= 50))}`)
  return (res.json() as { service_request_id: string }[])[0]!.service_request_id
}

const created: string[] = []
for (let n = 0; n < 25; n++) created.push(await createRequest(n))

/** What the harvester keeps: each request's latest version, and every version it was sent. */
const store = new Map<string, Record<string, string>>()
const versionsSeen: string[] = []

async function setPublic(publicId: string, isPublic: boolean) {
  const res = await app.inject({
    method: 'POST',
    url: `/admin/v1/requests/${publicId}/public-view`,
    headers: { authorization: `Bearer ${operator.key}` },
    payload: { public: isPublic, reason: 'harvest test' },
  })
  if (res.statusCode !== 200) throw new Error(`public-view: ${res.statusCode} ${res.body}`)
}

/** Pulls pages from `url` to the end, handing each CSV record to `take`; returns how many came. */
async function pull(url: string, take: (record: Record<string, string>) => void): Promise<number> {
  let rows = 0
  for (let next: string | undefined = url; next; ) {
    const res = await app.inject(next)
    if (res.statusCode !== 200) throw new Error(`${next}: ${res.statusCode} ${res.body}`)
    for (const record of parseCsv(res.body, { columns: true }) as Record<string, string>[]) {
      take(record)
      rows++
    }
    const link = res.headers.link as string | undefined
    next = link ? /^<http:\/\/open311\.test([^>]+)>; rel="next"$/.exec(link)![1] : undefined
  }
  return rows
}

const keep = (record: Record<string, string>) => {
  versionsSeen.push(`${record.service_request_id}@${record.updated_datetime}`)
  store.set(record.service_request_id!, record)
}
let removedSince = ''
const forget = (record: Record<string, string>) => {
  store.delete(record.service_request_id!)
  removedSince = record.removed_datetime!
}
const harvest = (url: string) => pull(url, keep)
const newest = () => [...store.values()].map((r) => r.updated_datetime!).sort().at(-1)!

t.test('a harvest by cursor while requests are created, updated, withdrawn and restored, then incremental pulls of requests and removals, ends with the server\'s public set', async (t) => {
  let writing = true
  const writer = (async () => {
    for (let n = 100; n < 130; n++) {
      created.push(await createRequest(n))
      const target = created[(n * 7) % created.length]!
      await db.execute(sql`update service_requests set status_notes = ${`visit ${n}`} where public_id = ${target}`)
      if (n % 5 === 0) await db.execute(sql`update service_requests set status = 'closed', closed_at = now(), detailed_status = 'resolved' where public_id = ${created[n % 20]!} and status = 'open'`)
      // Some leave public view for good, some come back.
      if (n % 4 === 0) await setPublic(created[n % 24]!, false)
      if (n % 8 === 0) await setPublic(created[(n - 4) % 24]!, true)
    }
    writing = false
  })()

  const first = await harvest('/open-data/v1/requests.csv?limit=4')
  t.ok(first > 0, `the first harvest got ${first} rows (those changed meanwhile come in the incremental pulls)`)
  let pulls = 0
  // Incremental pulls until the writer is done and a pull brings nothing new.
  for (;;) {
    const stillWriting = writing
    // Requests first, then removals: a removal seen is one whose request has not come back yet.
    const rows =
      (await harvest(`/open-data/v1/requests.csv?limit=6&updated_after=${encodeURIComponent(newest())}`)) +
      (await pull(`/open-data/v1/removed.csv?limit=6${removedSince ? `&since=${encodeURIComponent(removedSince)}` : ''}`, forget))
    pulls++
    if (!stillWriting && rows === 0) break
    // Caught up while the writer is still busy: poll again shortly, as a harvester would.
    if (rows === 0) await sleep(10)
    if (pulls > 10_000) throw new Error('the incremental pulls never caught up')
  }
  await writer

  t.equal(new Set(versionsSeen).size, versionsSeen.length, `no version was sent twice (${versionsSeen.length} versions in ${pulls} incremental pulls)`)
  const server = await queryRows<{ public_id: string; updated: string; status: string; status_notes: string | null }>(
    db,
    sql`select public_id, to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated, status, status_notes
        from service_requests where is_public order by public_id`,
  )
  t.ok(server.length < created.length, `${created.length - server.length} of ${created.length} requests are out of public view`)
  t.same([...store.keys()].sort(), server.map((r) => r.public_id), 'the harvester holds exactly the server\'s public requests')
  for (const row of server) {
    const held = store.get(row.public_id)!
    if (held.updated_datetime !== row.updated || held.status !== row.status || held.status_notes !== (row.status_notes ?? '')) {
      t.fail(`${row.public_id}: harvested ${held.updated_datetime} ${held.status}, server ${row.updated} ${row.status}`)
    }
  }
  t.ok(versionsSeen.length > server.length, 'rows changed during the harvest came again, at their new version')
  t.ok(removedSince !== '', 'withdrawn requests were learnt from the removed feed')

  // The same set as a map layer: the GeoJSON feed, checked by a GeoJSON validator.
  const layer = checkGeojson((await app.inject('/open-data/v1/requests.geojson')).body) as unknown as { features: { id: string }[] }
  t.same(layer.features.map((f) => f.id).sort(), server.map((r) => r.public_id), 'the GeoJSON feed holds the same public set')
})
