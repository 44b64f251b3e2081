import { Writable } from 'node:stream'
import { XMLParser } from 'fast-xml-parser'
import { pino } from 'pino'
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { censorSensitive, logAction, loggerOptions } from '../../src/http/logging.js'
import { closeDatabaseUnderApp } from '../helpers/closed-database.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const xml = new XMLParser({ isArray: (name) => name === 'error' })
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

// One database per test file; subtests share it and run in order.
const { app, logs, rawLogs } = await buildTestApp(t)
await loadDemoCatalog(app.db)
const admin = await createApiKey(app.db, { name: 'ops', scopes: ['admin'] }, SERVER_ACTOR)

/** Runs `fn` and returns the log lines written meanwhile, parsed. */
async function linesDuring(fn: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const before = logs().length
  await fn()
  return logs().slice(before)
}

t.test('secrets and personal data in the query string never reach the log', async (t) => {
  const res = await app.inject('/open311/v2/services.json?api_key=SECRETKEY123&email=jane@example.com&phone=5551234')
  t.equal(res.statusCode, 200, 'the request itself is served')
  const raw = rawLogs()
  t.match(raw, /request completed/, 'the request was logged')
  for (const value of ['SECRETKEY123', 'jane@example.com', 'jane', '5551234']) {
    t.notOk(raw.includes(value), `"${value}" is not in the log`)
  }
  const line = logs().find((l) => l.msg === 'request completed' && String(l.url).includes('api_key'))
  t.match(
    line,
    { url: '/open311/v2/services.json?api_key=[REDACTED]&email=[REDACTED]&phone=[REDACTED]' },
    'the URL is logged with the values replaced, parameter names kept',
  )
})

t.test('other sensitive parameters, encodings and positions are redacted as well', async (t) => {
  const values = {
    first_name: 'Janet',
    last_name: 'Doemore',
    device_id: 'DEVICE-77AA',
    account_id: 'ACCT-9911',
    token: 'TOKEN-4242',
    password: 'hunter2hunter2',
    secret: 'SHHH-0001',
  }
  const query = Object.entries(values)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&')
  await app.inject(`/open311/v2/services.json?jurisdiction_id=demo.open311.city&${query}`)
  await app.inject('/open311/v2/services.json?EMAIL=UPPER%40example.com&Api_Key=MIXEDCASE999')
  await app.inject('/open311/v2/services.xml?email=jane.doe%40example.com&jurisdiction_id=demo.open311.city')
  await app.inject('/open311/v2/nothing.json?phone=%2B15550009999')
  const raw = rawLogs()
  for (const value of [...Object.values(values), 'UPPER', 'MIXEDCASE999', 'jane.doe', '5550009999']) {
    t.notOk(raw.includes(value), `"${value}" is not in the log`)
  }
  t.match(raw, /jurisdiction_id=demo\.open311\.city/, 'harmless parameters stay readable')
})

t.test('an Authorization header is never logged', async (t) => {
  const fakeKey = `o311_abcdef012345_${'Z'.repeat(43)}`
  await app.inject({ url: '/open311/v2/services.json', headers: { authorization: `Bearer ${fakeKey}` } })
  const created = await app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { authorization: `Bearer ${admin.key}`, 'x-api-key': 'XAPIKEY-SECRET' },
    payload: { name: 'logged key', scopes: ['requests:write'] },
  })
  t.equal(created.statusCode, 201)
  const denied = await app.inject({ url: '/admin/v1/keys', headers: { authorization: `Bearer ${fakeKey}` } })
  t.equal(denied.statusCode, 403)

  const raw = rawLogs()
  t.match(raw, /api key created/, 'the admin action was logged')
  for (const secret of [fakeKey, 'Z'.repeat(43), admin.key, admin.key.slice(18), created.json().key, created.json().key.slice(18), 'XAPIKEY-SECRET']) {
    t.notOk(raw.includes(secret), 'no key or secret part in the log')
  }
  t.notOk(/o311_[a-z0-9]{12}_[A-Za-z0-9_-]{43}/.test(raw), 'nothing shaped like a raw key')
})

t.test('every line logged during a request carries its reqId', async (t) => {
  const requests = [
    () => app.inject('/open311/v2/services.json'),
    () => app.inject('/open311/v2/services.xml?jurisdiction_id=unknown.example'),
    () => app.inject('/nowhere'),
    () =>
      app.inject({
        method: 'POST',
        url: '/admin/v1/keys',
        headers: { authorization: `Bearer ${admin.key}` },
        payload: { name: 'reqid check' },
      }),
  ]
  for (const request of requests) {
    let id: unknown
    const lines = await linesDuring(async () => {
      id = (await request()).headers['x-request-id']
    })
    t.match(id, UUID, 'a generated request id')
    t.ok(lines.length >= 1, `${lines.length} lines logged`)
    t.same(
      lines.filter((l) => l.reqId !== id),
      [],
      `every line carries reqId ${String(id)}`,
    )
    t.ok(
      lines.some((l) => l.msg === 'request completed'),
      'including the completion line',
    )
  }
  const appLine = logs().find((l) => l.action === 'api key created')
  t.match(appLine, { reqId: UUID, keyId: /^[a-z0-9]{12}$/ }, 'route code logs through the request logger')
})

t.test('an incoming x-request-id is used, logged and echoed', async (t) => {
  const lines = await linesDuring(async () => {
    const res = await app.inject({ url: '/open311/v2/services.json', headers: { 'x-request-id': 'abc-123' } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-request-id'], 'abc-123')
  })
  t.ok(lines.length >= 1)
  t.ok(
    lines.every((l) => l.reqId === 'abc-123'),
    'logged under the caller\'s id',
  )

  const longest = `${'a'.repeat(127)}Z`
  const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': longest } })
  t.equal(res.headers['x-request-id'], longest, '128 characters are accepted')
  const traced = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'edge-01.lb:trace_9' } })
  t.equal(traced.headers['x-request-id'], 'edge-01.lb:trace_9', 'dots, colons and underscores are fine')
})

t.test('a malformed x-request-id is replaced by a generated one', async (t) => {
  const malformed = ['abc 123', 'a'.repeat(300), 'a'.repeat(129), 'id;rm -rf', '{"json":1}', '']
  for (const header of malformed) {
    const lines = await linesDuring(async () => {
      const res = await app.inject({ url: '/open311/v2/services.json', headers: { 'x-request-id': header } })
      t.equal(res.statusCode, 200)
      const id = res.headers['x-request-id']
      t.match(id, UUID, `${JSON.stringify(header.slice(0, 20))}${header.length > 20 ? '…' : ''} → generated id`)
      t.not(id, header)
    })
    t.notOk(
      lines.some((l) => l.reqId === header),
      'the malformed id is not logged as reqId',
    )
  }
  const a = await app.inject('/healthz')
  const b = await app.inject('/healthz')
  t.not(a.headers['x-request-id'], b.headers['x-request-id'], 'generated ids differ')
})

t.test('a crashing route answers 500 in the spec error format, without internals', async (t) => {
  // A separate app whose database is closed under it: every query now fails.
  const broken = await buildTestApp(t)
  await closeDatabaseUnderApp(broken.database)

  const json = await broken.app.inject({
    url: '/open311/v2/services.json?api_key=SECRETKEY123',
    headers: { 'x-request-id': 'crash-json-1' },
  })
  t.equal(json.statusCode, 500)
  t.match(json.headers['content-type'], /^application\/json/)
  t.equal(json.headers['x-request-id'], 'crash-json-1')
  const errors = json.json()
  t.equal(errors.length, 1)
  t.equal(errors[0].code, 500)
  t.match(errors[0].description, /crash-json-1/, 'the body quotes the request id')

  const xmlRes = await broken.app.inject('/open311/v2/services.xml')
  t.equal(xmlRes.statusCode, 500)
  t.match(xmlRes.headers['content-type'], /^text\/xml/)
  t.match(xmlRes.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
  const xmlError = xml.parse(xmlRes.body).errors.error
  t.equal(xmlError.length, 1)
  t.equal(xmlError[0].code, 500)
  t.ok(String(xmlError[0].description).includes(String(xmlRes.headers['x-request-id'])), 'the XML body quotes the request id')

  for (const body of [json.body, xmlRes.body]) {
    t.notMatch(body, /\n\s+at |\.ts:\d+|\.js:\d+|node_modules|stack/i, 'no stack trace')
    t.notMatch(body, /PGlite|pool|closed|select |jurisdictions/i, 'no database internals')
  }

  const failure = broken.logs().find((l) => l.msg === 'request failed' && l.reqId === 'crash-json-1')
  t.ok(failure, 'the failure is logged under the request id')
  t.equal(failure?.level, 50, 'at error level')
  t.match(failure?.err, { message: String, stack: String }, 'with the error for operators')
  t.notOk(broken.rawLogs().includes('SECRETKEY123'), 'still without the secret from the URL')
})

t.test('at level warn the per-request info lines are skipped, and failures are still logged', async (t) => {
  const quiet = await buildTestApp(t, { logLevel: 'warn' })
  await loadDemoCatalog(quiet.app.db)
  const ok = await quiet.app.inject({ url: '/open311/v2/services.json', headers: { 'x-request-id': 'quiet-ok-1' } })
  t.equal(ok.statusCode, 200)
  t.same(quiet.logs().filter((l) => l.reqId === 'quiet-ok-1'), [], 'a served request writes nothing')

  await closeDatabaseUnderApp(quiet.database)
  const failed = await quiet.app.inject({ url: '/open311/v2/requests.json', headers: { 'x-request-id': 'quiet-fail-1' } })
  t.equal(failed.statusCode, 500)
  const lines = quiet.logs().filter((l) => l.reqId === 'quiet-fail-1')
  t.match(lines, [{ msg: 'request failed', level: 50 }], 'a failure writes its error line, and only that')
  t.equal(lines.length, 1)
})

t.test('at info, a request writes one line when it completes: method, URL, route, status, time, request id', async (t) => {
  const lines = await linesDuring(() => app.inject({ url: '/open311/v2/services/pothole.json?email=hidden%40example.com', headers: { 'x-request-id': 'one-line-1' } }))
  const own = lines.filter((l) => l.reqId === 'one-line-1')
  t.equal(own.length, 1, 'one line, not an incoming and a completed one')
  t.match(own[0], {
    level: 30,
    msg: 'request completed',
    method: 'GET',
    url: '/open311/v2/services/pothole.json?email=[REDACTED]',
    route: '/open311/v2/services/:service_code.:format',
    statusCode: 200,
    responseTime: Number,
  })
})

t.test('a write names what it did on its one line: a POST, an admin action', async (t) => {
  const writer = await createApiKey(app.db, { name: 'one-line writer', scopes: ['requests:write'] }, SERVER_ACTOR)
  const posted = await linesDuring(() =>
    app.inject({
      method: 'POST',
      url: '/open311/v2/requests.json',
      headers: { 'x-request-id': 'one-line-post', 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ api_key: writer.key, service_code: 'pothole', lat: '41.88', long: '-87.63', 'attribute[size]': 'SMALL', description: 'deep hole', email: 'posted@example.com' }).toString(),
    }),
  )
  const own = posted.filter((l) => l.reqId === 'one-line-post')
  t.equal(own.length, 1, 'one line for the POST')
  t.match(own[0], { level: 30, msg: 'request completed', method: 'POST', statusCode: 200, action: 'service request submitted', serviceCode: 'pothole', replayed: false })
  t.notOk(rawLogs().includes('posted@example.com'), 'the reporter is not in it')

  const revoked = await linesDuring(() => app.inject({ method: 'DELETE', url: `/admin/v1/keys/${writer.id}`, headers: { authorization: `Bearer ${admin.key}`, 'x-request-id': 'one-line-admin' } }))
  const adminLines = revoked.filter((l) => l.reqId === 'one-line-admin')
  t.equal(adminLines.length, 1, 'one line for the admin action')
  t.match(adminLines[0], { msg: 'request completed', statusCode: 200, action: 'api key revoked', apiKeyId: writer.id })
})

t.test('a URL the router refuses still gets its one line', async (t) => {
  const lines = await linesDuring(() => app.inject({ url: '/open311/v2/services/%c0%ae.json?api_key=ROUTERSECRET', headers: { 'x-request-id': 'bad-url-1' } }))
  t.match(lines.filter((l) => l.reqId === 'bad-url-1'), [{ level: 30, msg: 'request completed', method: 'GET', statusCode: 400, route: null }])
  t.notOk(rawLogs().includes('ROUTERSECRET'), 'its URL redacted like any other')
})

t.test('a sensitive field is censored wherever a line or a child logger carries it, three levels deep', async (t) => {
  const written: string[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      written.push(chunk.toString())
      done()
    },
  })
  const logger = pino(loggerOptions('info'), stream)
  const logged = { email: 'TOP@example.com', nested: { phone: 'NESTED-555', deeper: { token: 'DEEP-TOKEN', safe: 'kept' } }, list: [{ api_key: 'IN-A-LIST' }] }
  const before = structuredClone(logged)
  logger.info(logged, 'with personal data')
  logger.child({ action: 'x', password: 'BOUND-PASSWORD' }).info({ device_id: 'DEVICE-1', bytes: Buffer.from('raw') }, 'bound')
  logger.info({ a: { b: { c: { email: 'FOURTH-LEVEL' } } } }, 'below the depth that is looked at')
  const [first, bound, deep] = written.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(first, { email: '[REDACTED]', nested: { phone: '[REDACTED]', deeper: { token: '[REDACTED]', safe: 'kept' } }, list: [{ api_key: '[REDACTED]' }] })
  t.match(bound, { password: '[REDACTED]', device_id: '[REDACTED]', action: 'x' })
  for (const value of ['TOP@example.com', 'NESTED-555', 'DEEP-TOKEN', 'IN-A-LIST', 'BOUND-PASSWORD', 'DEVICE-1']) {
    t.notOk(written.join('').includes(value), `"${value}" is not in the log`)
  }
  t.same(logged, before, 'the caller’s object is left as it was')
  t.match(deep, { a: { b: { c: { email: 'FOURTH-LEVEL' } } } }, 'as the redact paths did (name, *.name, *.*.name): three levels, not more')
  t.equal(censorSensitive(logged.nested.deeper.safe), 'kept')
  // logAction's facts are bound on the request's logger: censored below the top as well.
  const request = { log: logger } as unknown as Parameters<typeof logAction>[0]
  logAction(request, 'nested facts', { key: { secret: 'FACT-SECRET', id: 7 } })
  request.log.info('done')
  t.match(JSON.parse(written.at(-1)!), { action: 'nested facts', key: { secret: '[REDACTED]', id: 7 } })
  t.notOk(written.join('').includes('FACT-SECRET'))
})
