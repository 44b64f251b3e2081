/**
 * The rollups under concurrent writes (docs/reports.md, "Rollups"): many POSTs at once are all
 * counted; a write still in flight while a refresh runs is neither lost nor blocks it, and is
 * counted by the next refresh once committed; refreshes at once never count a cell twice.
 * Races need two connections (PostgreSQL); the embedded backend has one, so there the same
 * events run one after the other.
 */
import { sql } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { refreshRollups } from '../../src/domain/reports/rollups.js'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'

const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'rollups.test.example', name: 'Rollup City', time_zone: 'Europe/Paris' },
  services: [{ service_code: 'litter', service_name: 'Litter' }],
})
const { app, rows } = h
await h.registerDepartment({ code: 'cleansing' })
await h.setRoutes('litter', [{ department: 'cleansing' }])

const volume = async () => {
  const res = await app.inject({ url: '/admin/v1/reports/volume.json?by=channel', headers: h.asAdmin })
  if (res.statusCode !== 200) throw new Error(res.body)
  return (res.json() as { rows: { channel: string; created: number }[] }).rows.map(({ channel, created }) => ({ channel, created }))
}

t.test('forty POSTs at once are all counted, once', async (t) => {
  await Promise.all(Array.from({ length: 40 }, () => h.createRequest('litter')))
  t.same(await volume(), [{ channel: 'app', created: 40 }])
  const [cells] = await rows<{ n: number }>(sql`select count(*)::int as n from report_daily where grain = 'full'`)
  t.equal(cells!.n, 1, 'one cell: today, litter, cleansing, app, no area')
})

t.test('a write in flight during a refresh is counted by the next one; it does not hold the refresh', async (t) => {
  const id = await h.createRequest('litter')
  await refreshRollups(app.db)
  const moveToPhone = `update service_requests set channel = 'phone' where public_id = $1`
  if (h.databaseUrl) {
    const writer = new pg.Client({ connectionString: h.databaseUrl })
    await writer.connect()
    t.teardown(() => writer.end())
    await writer.query('begin')
    await writer.query(moveToPhone, [id])
    t.equal(await refreshRollups(app.db), 0, 'the refresh runs at once: the uncommitted entry is not visible to it')
    t.same(await volume(), [{ channel: 'app', created: 41 }], 'the report shows what has committed')
    await writer.query('commit')
  } else {
    t.same(await volume(), [{ channel: 'app', created: 41 }])
    await app.db.execute(sql.raw(moveToPhone.replace('$1', `'${id}'`)))
  }
  t.same(await volume(), [{ channel: 'app', created: 40 }, { channel: 'phone', created: 1 }], 'committed: the next report counts it')
})

t.test('refreshes at once recompute each cell once', async (t) => {
  for (let i = 0; i < 5; i++) await h.createRequest('litter')
  await Promise.all([refreshRollups(app.db), refreshRollups(app.db), refreshRollups(app.db, { wait: false })])
  t.same(await volume(), [{ channel: 'app', created: 45 }, { channel: 'phone', created: 1 }])
  const [pending] = await rows<{ n: number }>(sql`select count(*)::int as n from report_rollup_pending`)
  t.equal(pending!.n, 0, 'nothing left pending')
})
