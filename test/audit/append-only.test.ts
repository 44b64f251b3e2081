/**
 * Issue 16's "done when": an UPDATE, DELETE or TRUNCATE on the audit table fails whatever role
 * the server uses — on the server's own connection (a superuser in these tests, as PGlite's
 * only role is), and even after `session_replication_role = replica`, which a superuser may set
 * to skip ordinary triggers (migration 0019 enables its triggers ALWAYS).
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { recordAudit, systemActor } from '../../src/domain/audit/audit.js'
import { buildTestApp } from '../helpers/app.js'
import { sqlState } from '../helpers/query.js'

const { app } = await buildTestApp(t)
const db = app.db

await recordAudit(db, systemActor('append-only test'), {
  action: 'test.recorded',
  entityType: 'test',
  entityId: 'one',
  changes: { field: { before: 'a', after: 'b' } },
})
const entries = async () => queryRows<{ id: number; action: string; changes: unknown }>(db, sql`select id, action, changes from audit_events order by id`)
const original = await entries()

const ATTEMPTS = [
  ['UPDATE', sql`update audit_events set action = 'test.rewritten', changes = '{}'`],
  ['DELETE', sql`delete from audit_events`],
  ['TRUNCATE', sql`truncate audit_events`],
] as const

t.test("the server's role may do anything else: it is a superuser here, so no grant is what stops it", async (t) => {
  const [role] = await queryRows<{ superuser: boolean }>(db, sql`select rolsuper as superuser from pg_roles where rolname = current_user`)
  t.equal(role?.superuser, true, 'the server connects as a superuser in these tests')
  t.equal(original.length, 1)
})

t.test('UPDATE, DELETE and TRUNCATE fail on the server connection', async (t) => {
  for (const [name, statement] of ATTEMPTS) {
    const err = await db.execute(statement).then(() => null, (e: unknown) => e)
    t.ok(err, `${name} fails`)
    t.equal(sqlState(err), '42501', `${name}: insufficient_privilege, from the trigger`)
  }
  t.same(await entries(), original, 'the entry is as it was')
})

t.test('they fail too under session_replication_role = replica', async (t) => {
  for (const [name, statement] of ATTEMPTS) {
    const err = await db
      .transaction(async (tx) => {
        await tx.execute(sql`set local session_replication_role = replica`)
        const [mode] = await queryRows<{ role: string }>(tx, sql`select current_setting('session_replication_role') as role`)
        t.equal(mode?.role, 'replica', `${name}: the session is a replica's`)
        await tx.execute(statement)
      })
      .then(() => null, (e: unknown) => e)
    t.ok(err, `${name} fails as a replica`)
    t.equal(sqlState(err), '42501', name)
  }
  t.same(await entries(), original, 'the entry is as it was')
})

/** The database's own message, looking through drizzle's wrapping error. */
function messages(err: unknown): string {
  const found: string[] = []
  for (let e: unknown = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) found.push(String((e as { message?: unknown }).message))
  return found.join(' | ')
}

t.test('a role granted every privilege on the table is refused by the trigger too', async (t) => {
  const role = `open311_audit_test_${process.pid}`
  const refusals: { name: string; state: string | undefined; message: string }[] = []
  const rollback = new Error('roll back the role')
  // Roles are transactional: the role exists only inside this transaction, which is rolled back.
  await db
    .transaction(async (tx) => {
      await tx.execute(sql.raw(`create role ${role} nologin`))
      await tx.execute(sql.raw(`grant all on audit_events to ${role}`))
      await tx.execute(sql.raw(`set local role ${role}`))
      for (const [name, statement] of ATTEMPTS) {
        const err = await tx.transaction((sp) => sp.execute(statement)).then(() => null, (e: unknown) => e)
        refusals.push({ name, state: sqlState(err), message: messages(err) })
      }
      throw rollback
    })
    .catch((err: unknown) => {
      if (err !== rollback) throw err
    })
  t.equal(refusals.length, 3)
  for (const r of refusals) {
    t.equal(r.state, '42501', r.name)
    t.match(r.message, /audit_events is append-only/, `${r.name}: refused by the trigger, not for want of a grant`)
  }
  t.same(await entries(), original)
})

t.test('the triggers are enabled ALWAYS', async (t) => {
  const triggers = await queryRows<{ name: string; enabled: string }>(
    db,
    sql`select tgname as name, tgenabled as enabled from pg_trigger where tgrelid = 'audit_events'::regclass and not tgisinternal order by tgname`,
  )
  t.same(triggers, [
    { name: 'audit_events_append_only', enabled: 'A' },
    { name: 'audit_events_no_truncate', enabled: 'A' },
  ])
})

t.test('appending still works', async (t) => {
  await recordAudit(db, systemActor('append-only test'), { action: 'test.recorded', entityType: 'test', entityId: 'two', changes: { f: { before: null, after: 1 } } })
  t.equal((await entries()).length, 2)
})
