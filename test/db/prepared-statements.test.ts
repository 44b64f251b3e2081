/**
 * Named prepared statements stay on every pooled connection, so only the first
 * MAX_NAMED_STATEMENTS distinct texts get names; later texts run unnamed and still answer.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { MAX_NAMED_STATEMENTS, preparedRows, queryRows } from '../../src/db/database.js'
import { createTestDatabase } from '../helpers/database.js'

const { database } = await createTestDatabase(t)
const { db } = database

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
