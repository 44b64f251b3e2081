/**
 * Named prepared statements stay on every pooled connection, so only the first
 * MAX_NAMED_STATEMENTS distinct texts get names; later texts run unnamed and still answer.
 * And the switch that turns them off.
 */
import { readFile } from 'node:fs/promises'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { MAX_NAMED_STATEMENTS, openDatabase, preparedRows, queryRows } from '../../src/db/database.js'
import { activeService } from '../../src/domain/catalog/catalog-cache.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { resolveJurisdiction } from '../../src/domain/jurisdictions.js'
import { findPublicRequests } from '../../src/domain/requests/find-requests.js'
import { submitServiceRequest } from '../../src/domain/requests/submit-request.js'
import { validateSubmission } from '../../src/domain/requests/submission.js'
import { createTestDatabase } from '../helpers/database.js'
import { embeddedTemplatePath } from '../helpers/template.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const quiet = { warn: () => {}, info: () => {}, error: () => {} }
const { database, url } = await createTestDatabase(t)
const { db } = database

/**
 * DATABASE_PREPARED_STATEMENTS: on (the default), the hot paths run as named prepared
 * statements; off (PgBouncer in transaction mode), they work just the same and the session
 * holds none. One connection per database, so the session asked is the one that ran them.
 * On the embedded backend the switch is accepted and the hot paths work either way; PGlite
 * keeps no named statements (drizzle's PGlite session does not name them), on or off.
 * First in this file: the cap test below uses up the process's names.
 */
t.test('DATABASE_PREPARED_STATEMENTS: named when on, none held when off', async (t) => {
  for (const preparedStatements of [false, true]) {
    // Its own database handle with the switch set: the same PostgreSQL database, or a fresh embedded one from the template.
    const own = url
      ? await openDatabase({ databaseUrl: url, poolSize: 1, preparedStatements, logger: quiet })
      : await openDatabase({ loadDataDir: new Blob([await readFile(await embeddedTemplatePath())]), preparedStatements, logger: quiet })
    t.teardown(() => own.close())
    await loadDemoCatalog(own.db)
    const jurisdiction = await resolveJurisdiction(own.db, undefined)
    const service = (await activeService(own.db, jurisdiction, 'pothole'))!
    const submission = validateSubmission({ lat: '41.8781', long: '-87.6298', email: 'x@example.org', 'attribute[size]': 'SMALL' }, service, jurisdiction.timeZone)
    const created = await own.db.transaction((tx) => submitServiceRequest(tx, { jurisdiction, service, submission, actor: SERVER_ACTOR, channel: 'internal' }))
    const found = await findPublicRequests(own.db, { jurisdictionId: jurisdiction.id, serviceRequestIds: [created.serviceRequestId], order: 'requested_desc', limit: 10, offset: 0 }, 'core')
    t.equal(found.length, 1, `prepared statements ${preparedStatements ? 'on' : 'off'}: the new request is written and found`)
    const held = await queryRows<{ name: string }>(own.db, sql`select name from pg_prepared_statements order by name`)
    if (preparedStatements && url) t.ok(held.length >= 2 && held.every((s) => s.name.startsWith('open311_')), `on: the hot statements — the request's write, the search — are named (${held.length})`)
    else t.same(held, [], `${preparedStatements ? 'on (embedded)' : 'off'}: the session holds no prepared statement`)
  }
})

t.test('past the cap, distinct texts still run, unnamed', async (t) => {
  const shapes = MAX_NAMED_STATEMENTS + 30
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < shapes; i++) {
      const rows = await preparedRows<{ n: number; v: string }>(db, sql`select ${sql.raw(String(i))}::int as n, ${`value ${i}`}::text as v`)
      if (rows[0]?.n !== i || rows[0]?.v !== `value ${i}`) t.fail(`shape ${i} answered ${JSON.stringify(rows)}`)
    }
  }
  t.pass(`${shapes} shapes, twice each, all answered`)
})

t.test('no connection holds more than the cap', async (t) => {
  // Ask every pooled connection at once, so each answers for itself. (The embedded database
  // has one connection and drizzle's PGlite session does not name statements: it holds none.)
  const counts = await Promise.all(
    Array.from({ length: 5 }, () => queryRows<{ n: number }>(db, sql`select count(*)::int as n, pg_sleep(0.05) from pg_prepared_statements`)),
  )
  for (const [row] of counts) t.ok(row!.n <= MAX_NAMED_STATEMENTS, `${row!.n} prepared on a connection`)
})

