import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { MIGRATIONS_FOLDER } from '../../src/db/migrations-folder.js'
import { buildTestApp } from '../helpers/app.js'

// One database per test file, cloned from the run's migrated template; subtests share it.
const { app, database } = await buildTestApp(t)
const db = app.db
const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as {
  entries: { tag: string; when: number }[]
}

/** SQL type of a column exactly as psql would print it, e.g. `geography(Point,4326)`. */
async function columnType(table: string, column: string): Promise<string | undefined> {
  const [row] = await queryRows<{ type: string }>(
    db,
    sql`select format_type(a.atttypid, a.atttypmod) as type
        from pg_attribute a
        where a.attrelid = ${`public.${table}`}::regclass and a.attname = ${column} and not a.attisdropped`,
  )
  return row?.type
}

async function columnsOf(table: string): Promise<string[]> {
  const rows = await queryRows<{ column_name: string }>(
    db,
    sql`select column_name from information_schema.columns
        where table_schema = 'public' and table_name = ${table} order by ordinal_position`,
  )
  return rows.map((r) => r.column_name)
}

async function appliedMigrations(): Promise<{ id: number; hash: string; created_at: string }[]> {
  return queryRows(db, sql`select id, hash, created_at::text as created_at from drizzle.__drizzle_migrations order by id`)
}

t.test('extensions postgis and btree_gist are installed', async (t) => {
  const rows = await queryRows<{ extname: string }>(
    db,
    sql`select extname from pg_extension where extname in ('postgis', 'btree_gist') order by extname`,
  )
  t.same(
    rows.map((r) => r.extname),
    ['btree_gist', 'postgis'],
  )
  // PostGIS is not just registered but callable.
  const [point] = await queryRows<{ wkt: string }>(db, sql`select ST_AsText(ST_GeogFromText('POINT(-87.6 41.8)')) as wkt`)
  t.equal(point?.wkt, 'POINT(-87.6 41.8)')
})

t.test('geography columns carry their subtype and SRID', async (t) => {
  t.equal(await columnType('service_requests', 'location'), 'geography(Point,4326)')
  t.equal(await columnType('jurisdictions', 'boundary'), 'geography(MultiPolygon,4326)')

  const registered = await queryRows<{ table: string; column: string; type: string; srid: number }>(
    db,
    sql`select f_table_name::text as table, f_geography_column::text as column, type, srid
        from geography_columns where f_table_schema = 'public' order by f_table_name`,
  )
  const byColumn = new Map(registered.map((r) => [`${r.table}.${r.column}`, r]))
  t.match(byColumn.get('service_requests.location'), { type: 'Point', srid: 4326 }, 'PostGIS registers the location column')
  t.match(byColumn.get('jurisdictions.boundary'), { type: 'MultiPolygon', srid: 4326 }, 'and the boundary column')
  // drizzle-kit emits bare `geography` (type Geometry, SRID 0): each such column needs a hand-written narrowing.
  t.same(
    registered.filter((r) => r.srid !== 4326 || r.type === 'Geometry'),
    [],
    'no geography column is left without a subtype or outside WGS84',
  )
})

t.test('the typmod is enforced: a polygon is not accepted as a request location', async (t) => {
  // Proves the narrowing in 0002 is real, not only a label in the catalog.
  await t.rejects(
    db.execute(sql`select ST_GeogFromText('SRID=4326;POLYGON((0 0,1 0,1 1,0 0))')::geography(Point,4326)`),
    'a polygon does not fit geography(Point,4326)',
  )
  const [ok] = await queryRows<{ ok: boolean }>(
    db,
    sql`select ST_GeogFromText('SRID=4326;POINT(1 2)')::geography(Point,4326) is not null as ok`,
  )
  t.equal(ok?.ok, true)
})

t.test('the composite GiST index covers (location, requested_at)', async (t) => {
  const [index] = await queryRows<{ table: string; method: string; columns: string[]; unique: boolean; valid: boolean }>(
    db,
    sql`select t.relname::text as table, am.amname::text as method, i.indisunique as unique, i.indisvalid as valid,
               array(select pg_get_indexdef(i.indexrelid, k, true) from generate_series(1, i.indnatts) as k order by k) as columns
        from pg_index i
        join pg_class c on c.oid = i.indexrelid
        join pg_class t on t.oid = i.indrelid
        join pg_am am on am.oid = c.relam
        where c.relname = 'service_requests_location_requested_at_gist'`,
  )
  t.ok(index, 'the index exists')
  t.match(index, { table: 'service_requests', method: 'gist', unique: false, valid: true })
  t.same(index?.columns, ['location', 'requested_at'], 'location first, then requested_at, nothing else')
})

t.test('migrate() again is a no-op', async (t) => {
  const before = await appliedMigrations()
  t.ok(journal.entries.length >= 3, 'the journal lists the migrations')
  t.equal(before.length, journal.entries.length, 'one row per migration in migrations/meta/_journal.json')
  t.same(
    before.map((m) => Number(m.created_at)),
    journal.entries.map((e) => e.when),
    'recorded in journal order, stamped with each entry\'s time',
  )
  const tablesBefore = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pg_tables where schemaname = 'public'`)

  await t.resolves(database.migrate(), 'a second migrate() does not fail')
  t.same(await appliedMigrations(), before, 'no migration recorded twice')

  await t.resolves(Promise.all([database.migrate(), database.migrate()]), 'concurrent migrate() calls do not fail')
  t.same(await appliedMigrations(), before, 'still the same migrations')

  const tablesAfter = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pg_tables where schemaname = 'public'`)
  t.same(tablesAfter, tablesBefore)
  t.equal((await app.inject('/healthz')).statusCode, 200)
})

t.test('reporter PII lives in request_reporters, never in service_requests', async (t) => {
  const pii = ['email', 'phone', 'first_name', 'last_name', 'device_id', 'account_id']
  const reporterColumns = await columnsOf('request_reporters')
  for (const column of pii) t.ok(reporterColumns.includes(column), `request_reporters.${column} exists`)

  const requestColumns = await columnsOf('service_requests')
  t.ok(requestColumns.includes('location') && requestColumns.includes('public_id'), 'the service_requests columns were read')
  t.same(
    requestColumns.filter((c) => pii.includes(c)),
    [],
    'service_requests has no personal data column',
  )

  // The reporter row belongs to its request and goes with it.
  const [fk] = await queryRows<{ target: string; on_delete: string }>(
    db,
    sql`select confrelid::regclass::text as target, confdeltype::text as on_delete
        from pg_constraint where conrelid = 'public.request_reporters'::regclass and contype = 'f'`,
  )
  t.same(fk, { target: 'service_requests', on_delete: 'c' }, 'request_reporters → service_requests ON DELETE CASCADE')
})
