/**
 * The rollups' write path, continued (rollup-writes.test.ts has the single writes): the upgrade's
 * backfill (migration 0015, with 0016) on a database that already holds requests, a background
 * refresh (`wait: false`) while another connection holds the refresh lock, and a rebuild with a
 * write landing in the middle of it. Each checks hand-computed figures and a full rebuild.
 *
 * Races need two connections (PostgreSQL); the embedded backend has one, so there the same
 * events run one after the other (as in rollups-concurrency.test.ts).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { btree_gist } from '@electric-sql/pglite/contrib/btree_gist'
import { sql } from 'drizzle-orm'
import { migrate as migratePostgres } from 'drizzle-orm/node-postgres/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import pg from 'pg'
import t, { type Test } from 'tap'
import { postgisCore } from '../../src/db/backends/postgis-core.js'
import { type Db, openDatabase, queryRows } from '../../src/db/database.js'
import { MIGRATIONS_FOLDER } from '../../src/db/migrations-folder.js'
import * as schema from '../../src/db/schema.js'
import { jurisdictions } from '../../src/db/schema.js'
import { resolveReportQuery } from '../../src/domain/reports/report-query.js'
import { PUBLIC_STATS, type ReportName, runReport, runReportDefinition } from '../../src/domain/reports/reports.js'
import { rebuildRollups, refreshRollups } from '../../src/domain/reports/rollups.js'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'
import { eventually } from '../helpers/eventually.js'
import { testDatabaseUrl, withDatabaseName } from '../helpers/template.js'

/** rollups.ts's REFRESH_LOCK ('rprt'), not exported: the advisory lock every refresh and rebuild takes. */
const REFRESH_LOCK = 0x72707274
const KEY = sql`order by jurisdiction_id, day, service_id, grain, department_id, channel, area, public`
const quiet = { warn: () => {}, info: () => {}, error: () => {} }

/** (b) of every case: the rollups after a refresh equal a rebuild of every day from the base tables. */
async function agreesWithRebuild(t: Test, db: Db, what: string) {
  await refreshRollups(db)
  const [pending] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from report_rollup_pending`)
  t.equal(pending!.n, 0, `${what}: nothing left pending after a refresh`)
  const incremental = await queryRows(db, sql`select * from report_daily ${KEY}`)
  await db.execute(sql`delete from report_daily`)
  await rebuildRollups(db)
  t.same(await queryRows(db, sql`select * from report_daily ${KEY}`), incremental, `${what}: the incremental rollups equal a full rebuild`)
}

const h = await buildDepartmentHarness(t, {
  // Chile changes its clocks at midnight: a day that starts at 01:00, and one whose 23:00 hour happens twice.
  jurisdiction: { id: 'rollup-races.test.example', name: 'Race City', time_zone: 'America/Santiago' },
  services: [{ service_code: 'litter', service_name: 'Litter' }],
})
const { app, rows } = h
await h.registerDepartment({ code: 'cleansing' })
await h.setRoutes('litter', [{ department: 'cleansing' }])

/** migrations/ with the journal cut after migration `last`: what a database of an earlier release holds. */
async function migrationsUpTo(t: Test, last: number, tag: string): Promise<string> {
  const before = await mkdtemp(join(tmpdir(), `open311-migrations-${last}-`))
  t.teardown(() => rm(before, { recursive: true, force: true }))
  await cp(MIGRATIONS_FOLDER, before, { recursive: true })
  const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as { entries: { idx: number; tag: string }[] }
  journal.entries = journal.entries.filter((e) => e.idx <= last)
  t.equal(journal.entries.at(-1)!.tag, tag)
  await writeFile(join(before, 'meta/_journal.json'), JSON.stringify(journal))
  return before
}

t.test('6. the upgrade (0015, 0016) on a database already holding requests, work orders and notes', async (t) => {
  const { db, upgrade } = await databaseAt(t, await migrationsUpTo(t, 14, '0014_channels'))
  await seed0014(db)
  await upgrade()

  const [pending] = await queryRows<{ days: string[] }>(db, sql`select array_agg(distinct day::text order by day::text) as days from report_rollup_pending`)
  t.same(pending!.days, ['2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05'], 'every day the existing data fills is scheduled')
  const local = (column: string) => sql.raw(`to_char(${column} at time zone 'America/Chicago', 'YYYY-MM-DD HH24:MI') as ${column}`)
  t.same(await queryRows(db, sql`select id::int, ${local('acknowledged_at')}, ${local('completed_at')} from work_orders order by id`), [
    { id: 1, acknowledged_at: '2026-11-02 10:00', completed_at: '2026-11-03 09:00' },
    { id: 2, acknowledged_at: '2026-11-03 08:30', completed_at: null },
    { id: 3, acknowledged_at: null, completed_at: null },
  ], 'acknowledged: the department’s first report, else its last event; completed: its last event; pending: neither')
  t.same(await queryRows(db, sql`select description, is_answer from request_updates order by id`), [
    { description: 'North accepted the work', is_answer: false },
    { description: 'We are on it', is_answer: true },
    { description: 'Thank you: with our crews.', is_answer: true },
    { description: 'internal', is_answer: false },
    { description: 'North completed the work', is_answer: false },
    { description: 'Duplicate of 100001', is_answer: false },
  ], 'answers: operators’ public entries but the duplicate line, and pre-approved answers')

  const [jurisdiction] = await db.select().from(jurisdictions)
  const query = (group: 'day' | 'month', by: ('service' | 'department')[] = ['service'], publicOnly = false) =>
    resolveReportQuery(db, jurisdiction!, { from: '2026-11-01', to: '2026-11-30', group, by }, { by, publicOnly })
  const report = async (name: ReportName, group: 'day' | 'month', by?: ('service' | 'department')[]) => (await runReport(db, name, await query(group, by))).rows
  const channels = { created_web: 1, created_app: 1, created_phone: 1, created_chat: 0, created_email: 0, created_walk_in: 0, created_text: 0, created_social: 0, created_internal: 0 }
  t.same(await report('volume', 'month'), [{ period: '2026-11-01', service_code: 'pothole', created: 4, closed: 1, still_open: 3, ...channels }], '`api` counts as app; no channel: in created only')
  t.same((await report('volume', 'day')).map(({ period, created, closed, still_open }) => ({ period, created, closed, still_open })), [
    { period: '2026-11-02', created: 1, closed: 0, still_open: 0 },
    { period: '2026-11-03', created: 1, closed: 1, still_open: 1 },
    { period: '2026-11-04', created: 1, closed: 0, still_open: 1 },
    { period: '2026-11-05', created: 1, closed: 0, still_open: 1 },
  ])
  t.same((await report('volume', 'month', ['department'])).map(({ department_code, created }) => ({ department_code, created })), [
    { department_code: 'north', created: 3 },
    { department_code: null, created: 1 },
  ], 'the duplicate has no work order: no department')
  t.same(await report('timeliness', 'month'), [{
    period: '2026-11-01', service_code: 'pothole',
    acknowledged: 2, ack_median_seconds: 1800, ack_p90_seconds: 3600, closed: 1, close_median_seconds: 86400, close_p90_seconds: 86400,
    completed_with_due: 1, completed_within_due: 1, sla_compliance_pct: 100, went_overdue: 1, overdue_open_now: 1,
  }])
  t.same(await report('duplicates', 'month'), [{ period: '2026-11-01', service_code: 'pothole', created: 4, duplicates: 1, duplicate_pct: 25 }])
  t.same(await report('templates', 'month'), [{ period: '2026-11-01', service_code: 'pothole', public_notes: 2, from_template: 1, template_pct: 50 }])
  t.same((await runReportDefinition(db, PUBLIC_STATS, await query('month', ['service'], true))).rows, [
    { period: '2026-11-01', service_code: 'pothole', created: 3, closed: 1, close_median_seconds: 86400, acknowledged: 2, ack_median_seconds: 1800 },
  ], 'public only: the private request is left out (0016)')
  await agreesWithRebuild(t, db, 'after the upgrade')
})

t.test('6c. the upgrade to 0018 writes the per-channel and per-service rows of the cells already there', async (t) => {
  const { db, upgrade } = await databaseAt(t, await migrationsUpTo(t, 17, '0017_duplicate_policy'))
  // Cells as 0015–0017 left them (no grain): one day and service; two departments, two
  // channels, an area, and a private request's cell.
  const list = (values: number[]) => `{${values.join(',')}}`
  const cell = (department: number, channel: string, area: string, isPublic: boolean, created: number, close: [number[], number[]], ack: [number[], number[]]) =>
    sql`('upgrade.test.example', 1, '2026-11-02', ${department}, ${channel}, ${area}, ${isPublic}, ${created}, ${created - 1}, 0, ${close[1].reduce((a, b) => a + b, 0)},
         ${list(close[0])}::int[], ${list(close[1])}::int[], ${ack[1].reduce((a, b) => a + b, 0)}, ${list(ack[0])}::int[], ${list(ack[1])}::int[], 1, 1, 0, 2, 1)`
  await db.execute(sql`insert into report_daily (jurisdiction_id, service_id, day, department_id, channel, area, public, created, still_open, duplicates, closed,
      close_seconds, close_counts, acknowledged, ack_seconds, ack_counts, completed_with_due, completed_within_due, went_overdue, public_notes, from_template)
    values ${sql.join([
      cell(1, 'web', '', true, 2, [[60, 120], [1, 1]], [[30], [1]]),
      cell(2, 'web', 'Ward A', true, 1, [[120, 300], [2, 1]], [[], []]),
      cell(1, 'phone', '', true, 1, [[60], [1]], [[30, 45], [1, 1]]),
      cell(1, 'web', '', false, 1, [[], []], [[], []]),
    ], sql`, `)}`)
  await upgrade()
  const coarse = await queryRows(db, sql`select grain, channel, public, department_id::int, area, created, created_channels, still_open, closed, close_seconds, close_counts,
      acknowledged, ack_seconds, ack_counts, completed_with_due, public_notes, from_template
    from report_daily where grain <> 'full' order by grain, channel, department_id, public`)
  const sums = { department_id: 0, area: '', completed_with_due: 0, public_notes: 0, from_template: 0 }
  t.same(coarse, [
    { grain: 'channel', channel: 'phone', public: true, created: 1, created_channels: { phone: 1 }, still_open: 0, closed: 1, close_seconds: [60], close_counts: [1], acknowledged: 2, ack_seconds: [30, 45], ack_counts: [1, 1], ...sums, completed_with_due: 1, public_notes: 2, from_template: 1 },
    { grain: 'channel', channel: 'web', public: false, created: 1, created_channels: { web: 1 }, still_open: 0, closed: 0, close_seconds: [], close_counts: [], acknowledged: 0, ack_seconds: [], ack_counts: [], ...sums, completed_with_due: 1, public_notes: 2, from_template: 1 },
    { grain: 'channel', channel: 'web', public: true, created: 3, created_channels: { web: 3 }, still_open: 1, closed: 5, close_seconds: [60, 120, 300], close_counts: [1, 3, 1], acknowledged: 1, ack_seconds: [30], ack_counts: [1], ...sums, completed_with_due: 2, public_notes: 4, from_template: 2 },
    { grain: 'department', channel: '', public: false, created: 1, created_channels: { web: 1 }, still_open: 0, closed: 0, close_seconds: [], close_counts: [], acknowledged: 0, ack_seconds: [], ack_counts: [], ...sums, department_id: 1, completed_with_due: 1, public_notes: 2, from_template: 1 },
    { grain: 'department', channel: '', public: true, created: 3, created_channels: { web: 2, phone: 1 }, still_open: 1, closed: 3, close_seconds: [60, 120], close_counts: [2, 1], acknowledged: 3, ack_seconds: [30, 45], ack_counts: [2, 1], ...sums, department_id: 1, completed_with_due: 2, public_notes: 4, from_template: 2 },
    { grain: 'department', channel: '', public: true, created: 1, created_channels: { web: 1 }, still_open: 0, closed: 3, close_seconds: [120, 300], close_counts: [2, 1], acknowledged: 0, ack_seconds: [], ack_counts: [], ...sums, department_id: 2, completed_with_due: 1, public_notes: 2, from_template: 1 },
    { grain: 'service', channel: '', public: false, created: 1, created_channels: { web: 1 }, still_open: 0, closed: 0, close_seconds: [], close_counts: [], acknowledged: 0, ack_seconds: [], ack_counts: [], ...sums, completed_with_due: 1, public_notes: 2, from_template: 1 },
    { grain: 'service', channel: '', public: true, created: 4, created_channels: { web: 3, phone: 1 }, still_open: 1, closed: 6, close_seconds: [60, 120, 300], close_counts: [2, 3, 1], acknowledged: 3, ack_seconds: [30, 45], ack_counts: [2, 1], ...sums, completed_with_due: 3, public_notes: 6, from_template: 3 },
  ], 'summed per channel, per department and in all, per public flag; histograms merged')
  const [full] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from report_daily where grain = 'full'`)
  t.equal(full!.n, 4, 'the cells themselves are the full rows')
  t.same(await queryRows(db, sql`select created_channels from report_daily where grain = 'full' order by department_id, channel, area, public`),
    [{ created_channels: { phone: 1 } }, { created_channels: { web: 1 } }, { created_channels: { web: 2 } }, { created_channels: { web: 1 } }], 'the cells: their own channel')
})

/** A fresh database migrated as far as the journal in `folder` goes, and how to bring it to the latest. */
async function databaseAt(t: Test, folder: string): Promise<{ db: Db; upgrade: () => Promise<void> }> {
  const url = testDatabaseUrl()
  if (!url) {
    const client = await PGlite.create({ extensions: { postgis: postgisCore, btree_gist } })
    t.teardown(() => client.close())
    const db = drizzlePglite({ client, schema })
    await migratePglite(db, { migrationsFolder: folder })
    // The embedded backend's own migrate (backends/embedded.ts) is this call on the whole folder.
    return { db: db as unknown as Db, upgrade: () => migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER }) }
  }
  const name = `open311_test_${process.pid}_upgrade`
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query(statement)
    } finally {
      await client.end()
    }
  }
  await admin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
  await admin(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
  t.teardown(() => admin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`))
  const database = await openDatabase({ databaseUrl: withDatabaseName(url, name), logger: quiet, poolSize: 3 })
  t.teardown(() => database.close())
  const client = new pg.Client({ connectionString: withDatabaseName(url, name) })
  await client.connect()
  try {
    await migratePostgres(drizzlePostgres({ client, schema }), { migrationsFolder: folder })
  } finally {
    await client.end()
  }
  return { db: database.db, upgrade: () => database.migrate() }
}

/**
 * The release before's rows, in its schema (no acknowledged_at, completed_at, area_name, is_answer),
 * November 2026 in America/Chicago (CST, UTC−6):
 * A: web, 11-02 09:00, closed 11-03 09:00; its work order completed 11-03 09:00 (due 11-04), the
 *    department's first report 11-02 10:00; an operator's public note, a pre-approved answer,
 *    an internal note, the department's public status lines.
 * B: written by the release before that (`api`), 11-03 08:00; accepted (its last event 08:30,
 *    no report in the history), overdue since 11-04 08:00.
 * C: no channel, withdrawn from public view, 11-04 12:00; its work order pending.
 * D: phone, 11-05 09:00, a duplicate of A (no work order) with the server's duplicate line.
 */
async function seed0014(db: Db) {
  const at = (day: string, time: string) => `2026-11-${day}T${time}:00-06:00`
  await db.execute(sql`insert into jurisdictions (id, name, time_zone) values ('upgrade.test.example', 'Upgrade City', 'America/Chicago')`)
  await db.execute(sql`insert into services (id, jurisdiction_id, service_code, service_name) overriding system value values (1, 'upgrade.test.example', 'pothole', 'Pothole')`)
  await db.execute(sql`insert into departments (id, jurisdiction_id, code, name) overriding system value values (1, 'upgrade.test.example', 'north', 'North')`)
  await db.execute(sql`insert into response_templates (id, jurisdiction_id, code, public_text) overriding system value values (1, 'upgrade.test.example', 'received', 'Thank you: with our crews.')`)
  await db.execute(sql`insert into service_requests (id, public_id, jurisdiction_id, service_id, status, requested_at, closed_at, channel, is_public, parent_request_id)
    overriding system value values
      (1, '100001', 'upgrade.test.example', 1, 'closed', ${at('02', '09:00')}, ${at('03', '09:00')}, 'web', true, null),
      (2, '100002', 'upgrade.test.example', 1, 'open', ${at('03', '08:00')}, null, 'api', true, null),
      (3, '100003', 'upgrade.test.example', 1, 'open', ${at('04', '12:00')}, null, null, false, null),
      (4, '100004', 'upgrade.test.example', 1, 'open', ${at('05', '09:00')}, null, 'phone', true, 1)`)
  await db.execute(sql`insert into work_orders (id, request_id, department_id, state, created_at, updated_at, last_event_at, due_at, overdue_at)
    overriding system value values
      (1, 1, 1, 'completed', ${at('02', '09:00')}, ${at('03', '09:30')}, ${at('03', '09:00')}, ${at('04', '09:00')}, null),
      (2, 2, 1, 'accepted', ${at('03', '08:00')}, ${at('03', '08:30')}, ${at('03', '08:30')}, ${at('04', '08:00')}, ${at('04', '08:00')}),
      (3, 3, 1, 'pending', ${at('04', '12:00')}, ${at('04', '12:00')}, null, null, null)`)
  await db.execute(sql`insert into request_updates (request_id, status, detailed_status, description, is_public, source, work_order_id, department_id, template_id, created_at) values
      (1, 'open', 'accepted', 'North accepted the work', true, 'department', 1, 1, null, ${at('02', '10:00')}),
      (1, 'open', 'accepted', 'We are on it', true, 'operator', null, null, null, ${at('02', '11:00')}),
      (1, 'open', 'accepted', 'Thank you: with our crews.', true, 'operator', null, null, 1, ${at('02', '12:00')}),
      (1, 'open', 'accepted', 'internal', false, 'operator', null, null, null, ${at('02', '13:00')}),
      (1, 'closed', 'completed', 'North completed the work', true, 'department', 1, 1, null, ${at('03', '09:00')}),
      (4, 'open', 'duplicate', 'Duplicate of 100001', true, 'operator', null, null, null, ${at('05', '09:00')})`)
}

const requestId = async (publicId: string) => Number((await rows<{ id: number }>(sql`select id from service_requests where public_id = ${publicId}`))[0]!.id)
async function cameIn(at: string) {
  const id = await h.createRequest('litter')
  await app.db.execute(sql`update service_requests set requested_at = ${at}::timestamptz, channel = 'web' where id = ${await requestId(id)}`)
  return id
}
const byChannel = async (from: string, to: string) => {
  const res = await app.inject({ url: `/admin/v1/reports/volume.json?from=${from}&to=${to}&by=channel`, headers: h.asAdmin })
  if (res.statusCode !== 200) throw new Error(res.body)
  return (res.json() as { rows: { period: string; channel: string; created: number }[] }).rows.map(({ period, channel, created }) => ({ period, channel, created }))
}
/** The rollups as they are, without a refresh (what the public stats read). */
const rolledUp = (day: string) =>
  rows<{ channel: string; created: number }>(sql`select channel, created from report_daily where grain = 'full' and day = ${day}::date and created > 0 order by channel`)
const pendingIds = async () => (await rows<{ id: string }>(sql`select id::text from report_rollup_pending order by id`)).map((r) => r.id)

t.test('5b. DST changes at local midnight (America/Santiago): the day without its first hour, the day with its last hour twice', async (t) => {
  // 2026-04-05 00:00 −03 → 04-04 23:00 −04; 2026-09-06 00:00 −04 → 01:00 −03 (09-06 starts at 01:00).
  for (const at of ['2026-04-04T23:30:00-03:00', '2026-04-04T23:30:00-04:00', '2026-04-05T00:30:00-04:00', '2026-09-05T23:30:00-04:00', '2026-09-06T01:30:00-03:00']) {
    await cameIn(at)
  }
  t.same(await byChannel('2026-04-01', '2026-04-30'), [{ period: '2026-04-04', channel: 'web', created: 2 }, { period: '2026-04-05', channel: 'web', created: 1 }], 'both 23:30s on 04-04')
  t.same(await byChannel('2026-09-01', '2026-09-30'), [{ period: '2026-09-05', channel: 'web', created: 1 }, { period: '2026-09-06', channel: 'web', created: 1 }], '01:30 −03 is the first hour of 09-06')
  await agreesWithRebuild(t, app.db, 'midnight DST')
})

t.test('7. a background refresh while another connection holds the refresh lock', async (t) => {
  await cameIn('2026-06-10T09:00:00-05:00')
  await refreshRollups(app.db)
  const second = await cameIn('2026-06-10T10:00:00-05:00')
  const waiting = await pendingIds()
  t.ok(waiting.length > 0, 'the write left entries pending')
  if (h.databaseUrl) {
    const holder = new pg.Client({ connectionString: h.databaseUrl })
    await holder.connect()
    t.teardown(() => holder.end())
    await holder.query('begin')
    await holder.query('select pg_advisory_xact_lock($1)', [REFRESH_LOCK])
    t.equal(await refreshRollups(app.db, { wait: false }), 0, 'returns 0 at once: the holder will do it')
    t.same(await pendingIds(), waiting, 'the entries are left for the next refresh')
    t.same(await rolledUp('2026-06-10'), [{ channel: 'web', created: 1 }], 'and the rollups untouched')
    // A report does wait for the lock (it must include every committed write).
    const report = byChannel('2026-06-01', '2026-06-30')
    await eventually('the report to wait on the refresh lock', async () => {
      const [w] = await rows<{ n: number }>(sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`)
      return w!.n > 0
    })
    await holder.query('commit')
    t.same(await report, [{ period: '2026-06-10', channel: 'web', created: 2 }], 'once the lock is free, the report’s refresh counts the write')
  } else {
    // One connection: no other session can hold the lock. The entries still wait for a refresh.
    t.same(await rolledUp('2026-06-10'), [{ channel: 'web', created: 1 }], 'not counted before a refresh')
    t.ok((await refreshRollups(app.db, { wait: false })) > 0, 'nobody holds the lock: the background refresh does the work')
    t.same(await byChannel('2026-06-01', '2026-06-30'), [{ period: '2026-06-10', channel: 'web', created: 2 }])
  }
  t.same(await pendingIds(), [], 'nothing left pending')
  t.equal(await refreshRollups(app.db, { wait: false }), 0, 'and nothing to do')
  t.ok(second)
  await agreesWithRebuild(t, app.db, 'after the lock')
})

t.test('8. a rebuild over a month with a write landing in the middle of it', async (t) => {
  const inFlight = await cameIn('2026-01-14T09:00:00-06:00')
  const midway = await cameIn('2026-01-20T09:00:00-06:00')
  await refreshRollups(app.db)
  const JAN = ['2026-01-01', '2026-01-31'] as const
  const toPhone = (publicId: string) => `update service_requests set channel = 'phone' where public_id = '${publicId}'`
  if (h.databaseUrl) {
    // A write in flight for the whole rebuild: the rebuild cannot see it, its entry survives.
    const writer = new pg.Client({ connectionString: h.databaseUrl })
    await writer.connect()
    t.teardown(() => writer.end())
    await writer.query('begin')
    await writer.query(toPhone(inFlight))
    await rebuildRollups(app.db, { from: JAN[0], to: JAN[1] })
    await writer.query('commit')
    t.same(await rolledUp('2026-01-14'), [{ channel: 'web', created: 1 }], 'the rebuild counted what had committed')
    t.ok((await rows<{ day: string }>(sql`select day::text from report_rollup_pending`)).some((r) => r.day === '2026-01-14'), 'the write’s entry is left for the next refresh')
    t.same(await byChannel(...JAN), [{ period: '2026-01-14', channel: 'phone', created: 1 }, { period: '2026-01-20', channel: 'web', created: 1 }])

    // A write committed while the rebuild is inside its month: after the pending entries were
    // taken, before the cells are recomputed (a lock on a rollup row holds it there).
    await refreshRollups(app.db)
    const blocker = new pg.Client({ connectionString: h.databaseUrl })
    await blocker.connect()
    t.teardown(() => blocker.end())
    await blocker.query('begin')
    await blocker.query(`select 1 from report_daily where day = '2026-01-20' for update`)
    const rebuilt = rebuildRollups(app.db, { from: JAN[0], to: JAN[1] })
    await eventually('the rebuild to wait on the locked rollup row', async () => {
      const [w] = await rows<{ n: number }>(sql`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query like 'delete from report_daily%'`)
      return w!.n > 0
    })
    await app.db.execute(sql.raw(toPhone(midway)))
    await blocker.query('rollback')
    await rebuilt
    t.same(await rolledUp('2026-01-20'), [{ channel: 'phone', created: 1 }], 'the recompute, a statement started after the write committed, already counts it')
    t.ok((await rows<{ day: string }>(sql`select day::text from report_rollup_pending`)).some((r) => r.day === '2026-01-20'), 'the write’s entry survives the rebuild')
  } else {
    await rebuildRollups(app.db, { from: JAN[0], to: JAN[1] })
    await app.db.execute(sql.raw(toPhone(inFlight)))
    t.same(await byChannel(...JAN), [{ period: '2026-01-14', channel: 'phone', created: 1 }, { period: '2026-01-20', channel: 'web', created: 1 }])
    // Queued behind the rebuild's month transactions on the one connection: lands between them or after.
    await Promise.all([rebuildRollups(app.db, { from: '2025-12-01', to: JAN[1] }), app.db.execute(sql.raw(toPhone(midway)))])
  }
  t.same(await byChannel(...JAN), [{ period: '2026-01-14', channel: 'phone', created: 1 }, { period: '2026-01-20', channel: 'phone', created: 1 }], 'after the next refresh, the written cells are right')
  await agreesWithRebuild(t, app.db, 'after the rebuilds')
})
