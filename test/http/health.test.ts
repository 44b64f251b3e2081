import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { closeDatabaseUnderApp } from '../helpers/closed-database.js'

// One database per test file; the readiness failure needs a second app whose database it closes.
const { app } = await buildTestApp(t)

t.test('GET /healthz: the process is serving', async (t) => {
  const res = await app.inject('/healthz')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.same(res.json(), { status: 'ok' })
  t.ok(res.headers['x-request-id'], 'carries a request id like every answer')
})

t.test('GET /readyz: 200 while the database answers', async (t) => {
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ready' })
  const again = await Promise.all(Array.from({ length: 10 }, () => app.inject('/readyz')))
  t.same(
    again.map((r) => r.statusCode),
    Array(10).fill(200),
    'repeatedly and concurrently',
  )
})

t.test('HEAD and unknown methods', async (t) => {
  const head = await app.inject({ method: 'HEAD', url: '/healthz' })
  t.equal(head.statusCode, 200, 'HEAD works for probes that use it')
  t.equal(head.body, '')
  const post = await app.inject({ method: 'POST', url: '/healthz' })
  t.equal(post.statusCode, 404)
  t.match(post.json(), [{ code: 404 }])
})

t.test('with the database gone: /readyz 503, /healthz still 200, and back on the healthy app', async (t) => {
  const broken = await buildTestApp(t)
  t.equal((await broken.app.inject('/readyz')).statusCode, 200, 'ready before the database closes')
  await closeDatabaseUnderApp(broken.database)

  const res = await broken.app.inject('/readyz')
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /^application\/json/)
  t.same(res.json(), { status: 'database unreachable' })
  t.notMatch(res.body, /PGlite|pool|closed|Error/, 'no internals in the answer')
  const warning = broken.logs().find((l) => l.msg === 'readiness check failed: database unreachable')
  t.match(warning, { level: 40, reqId: res.headers['x-request-id'], err: { message: String } }, 'logged as a warning with the cause')

  t.same(
    (await Promise.all([broken.app.inject('/readyz'), broken.app.inject('/readyz')])).map((r) => r.statusCode),
    [503, 503],
    'stays 503 while the database is gone',
  )
  const live = await broken.app.inject('/healthz')
  t.equal(live.statusCode, 200, 'liveness does not depend on the database')
  t.same(live.json(), { status: 'ok' })

  t.equal((await app.inject('/readyz')).statusCode, 200, 'the other app is unaffected')
})
