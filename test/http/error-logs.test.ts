/**
 * A failing statement never puts personal data in the logs: not through drizzle's wrapper
 * (the SQL text and every parameter), not through PostgreSQL's own message or detail. Made
 * to fail for real: a trigger that refuses reporters and quotes their data in its error, the
 * worst case — and a unique violation, whose detail quotes the value.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { serializeError } from '../../src/shared/log-errors.js'
import { startPeriodicWorker } from '../../src/workers/periodic.js'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const { app, database, logs, rawLogs } = await buildTestApp(t)
await loadDemoCatalog(app.db)
const key = await createApiKey(app.db, { name: 'app', scopes: ['requests:write'] }, SERVER_ACTOR)
const reporter = { email: 'leaky.reporter@example.org', first_name: 'Philomena', last_name: 'Vandersloot', phone: '+1 555 0142 987' }

t.test('a statement fails during a POST carrying personal data: 500, and not a byte of it in any log line', async (t) => {
  await app.db.execute(
    sql.raw(`create function refuse_reporter() returns trigger language plpgsql as $$
      begin raise exception 'refusing % % % %', new.email, new.first_name, new.last_name, new.phone; end $$`),
  )
  await app.db.execute(sql.raw('create trigger refuse_reporter before insert on request_reporters for each row execute function refuse_reporter()'))
  t.teardown(() => app.db.execute(sql.raw('drop trigger if exists refuse_reporter on request_reporters')))

  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'leak-check-1' },
    payload: new URLSearchParams({ service_code: 'pothole', lat: '41.88', long: '-87.63', 'attribute[size]': 'SMALL', ...reporter }).toString(),
  })
  t.equal(res.statusCode, 500)
  t.match(res.json(), [{ code: 500, description: /leak-check-1/ }])
  const failure = logs().find((l) => l.reqId === 'leak-check-1' && l.msg === 'request failed')
  t.match(failure, { level: 50, err: { code: 'P0001', type: String, stack: String } }, 'the failure is logged with its SQLSTATE and stack')
  for (const value of Object.values(reporter)) t.notOk(rawLogs().includes(value), `"${value}" is nowhere in the log output`)
  t.notOk(/Failed query|params:|insert into|refusing/i.test(rawLogs()), 'neither the statement, its parameters nor the database message')
})

t.test('the serializer keeps what explains a database error and drops what quotes data', async (t) => {
  await app.db.execute(sql.raw('create table leak_probe (email text unique)'))
  await app.db.execute(sql`insert into leak_probe values (${reporter.email})`)
  const err = await app.db.execute(sql`insert into leak_probe values (${reporter.email})`).catch((e: unknown) => e)
  const logged = serializeError(err)
  t.match(logged, { code: '23505', constraint: 'leak_probe_email_key', table: 'leak_probe' }, 'SQLSTATE, constraint and table stay')
  t.notOk(JSON.stringify(logged).includes(reporter.email), 'the value (in the message, the detail and the parameters) is gone')
  t.notOk('message' in logged, 'a database message is not kept: it quotes values')

  const plain = serializeError(new TypeError('x is not a function', { cause: err }))
  t.match(plain, { type: 'TypeError', message: 'x is not a function', cause: { code: '23505' } }, 'other errors keep their message; causes follow the same rules')
  t.notOk(JSON.stringify(plain).includes(reporter.email))
})

t.test('a background worker whose statement fails logs the failure, not the data', async (t) => {
  const worker = await startPeriodicWorker({
    name: 'leak-probe-worker',
    database,
    logger: app.log,
    intervalMs: 60_000,
    batchSize: 1,
    work: async () => {
      await app.db.execute(sql`insert into leak_probe values (${reporter.email})`)
      return 0
    },
  })
  t.teardown(() => worker.stop())
  await worker.runOnce()
  const line = logs().find((l) => l.worker === 'leak-probe-worker')
  t.match(line, { level: 50, msg: 'background work failed; will retry', err: { code: '23505' } })
  t.notOk(rawLogs().includes(reporter.email), 'the parameter is nowhere in the log output')
})

t.test("a department's callback whose statement fails: 500, and nothing it sent in the logs", async (t) => {
  const h = await buildDepartmentHarness(t, {
    jurisdiction: { id: 'leaks.test.example', name: 'Leak Test City', time_zone: 'UTC' },
    services: [{ service_code: 'pothole', service_name: 'Pothole', group: 'Streets' }],
  })
  const streets = await h.registerDepartment({ code: 'streets' })
  await h.setRoutes('pothole', [{ department: 'streets' }])
  const id = await h.createRequest('pothole')
  const [wo] = await h.workOrders(id)
  await h.app.db.execute(
    sql.raw(`create function refuse_work_order() returns trigger language plpgsql as $$
      begin raise exception 'refusing %', new.external_ref; end $$`),
  )
  await h.app.db.execute(sql.raw('create trigger refuse_work_order before update on work_orders for each row execute function refuse_work_order()'))
  const secretRef = 'CASE-4471 for Mrs Ottoline Fairweather'
  const res = await h.statusChanged(streets, { work_order_id: wo!.id, status: 'accepted', external_ref: secretRef, public_note: 'Ottoline called again' })
  t.equal(res.statusCode, 500)
  t.match(h.logs().find((l) => l.msg === 'request failed'), { level: 50, err: { code: 'P0001' } })
  t.notOk(h.rawLogs().includes('Ottoline'), 'neither its external_ref nor its note reach a log line')
})
