/**
 * Text PostgreSQL cannot store, or that arrived broken, never reaches it: every documented
 * route, walked from the OpenAPI document, is sent a NUL, an invalid UTF-8 sequence and an
 * unpaired surrogate in each place it takes text (path, query, body — form, multipart, JSON),
 * and answers 400 in the envelope with nothing stored. Then the router's, parsers' and
 * limits' own refusals (Fastify's FST_ERR_* codes a client can trigger) and malformed or
 * oversized multipart bodies, over a real socket where framing matters.
 */
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { sql } from 'drizzle-orm'
import { XMLParser } from 'fast-xml-parser'
import { errorCodes, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const { app } = await buildTestApp(t, { rateLimits: { perIpPerMinute: 1_000_000, perKeyPerMinute: 1_000_000 } })
await loadDemoCatalog(app.db)
const admin = await createApiKey(app.db, { name: 'ops', scopes: ['admin'] }, SERVER_ACTOR)
const client = await createApiKey(app.db, { name: 'app', scopes: ['requests:write'] }, SERVER_ACTOR)
const xml = new XMLParser({ isArray: (name) => name === 'error' })

/** Every table's rows, hashed: "nothing stored" means this does not change. Rate-limit counters and key use times move with any request. */
async function fingerprint(): Promise<Record<string, string>> {
  const tables = await queryRows<{ table_name: string }>(
    app.db,
    sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`,
  )
  const result: Record<string, string> = {}
  for (const { table_name: name } of tables) {
    if (name === 'rate_limit_counters') continue
    const source = name === 'api_keys' ? sql`(select id, key_id, name, scopes, revoked_at from api_keys)` : sql.identifier(name)
    const [row] = await queryRows<{ n: number; h: string }>(
      app.db,
      sql`select count(*)::int as n, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as h from ${source} t`,
    )
    result[name] = `${row!.n}:${row!.h}`
  }
  return result
}

interface Hostile {
  name: string
  /** Percent-encoded, for paths, query strings and urlencoded bodies. */
  encoded: string
  /** Raw bytes, for multipart and JSON bodies (the JSON escape form for the surrogate). */
  raw: Buffer
  json: string
}

const HOSTILE: Hostile[] = [
  { name: 'NUL', encoded: 'a%00b', raw: Buffer.from([0x61, 0x00, 0x62]), json: '"a\\u0000b"' },
  // An overlong encoding of "." (the classic traversal form): not UTF-8.
  { name: 'invalid UTF-8', encoded: 'a%C0%AEb', raw: Buffer.from([0x61, 0xc0, 0xae, 0x62]), json: '' },
  { name: 'unpaired surrogate', encoded: 'a%ED%A0%80b', raw: Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62]), json: '"a\\ud800b"' },
]
for (const h of HOSTILE) if (!h.json) h.json = Buffer.concat([Buffer.from('"'), h.raw, Buffer.from('"')]).toString('latin1')

interface Operation {
  method: string
  path: string
  pathParams: string[]
  /** The format suffixes the route takes (json and xml for GeoReport; csv, json, geojson for feeds). */
  formats: string[]
  queryParams: string[]
  bodyFields: string[]
}

interface OpenApiOperation {
  parameters?: { in: string; name: string; schema?: { enum?: string[] } }[]
  requestBody?: { content: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
}

const spec = app.swagger() as { paths: Record<string, Record<string, OpenApiOperation>> }
const operations: Operation[] = []
for (const [path, methods] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(methods)) {
    if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
    const params = op.parameters ?? []
    const content = Object.values(op.requestBody?.content ?? {})[0]
    operations.push({
      method: method.toUpperCase(),
      path,
      pathParams: params.filter((p) => p.in === 'path' && p.name !== 'format').map((p) => p.name),
      formats: params.find((p) => p.in === 'path' && p.name === 'format')?.schema?.enum ?? [],
      queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
      bodyFields: Object.keys(content?.schema?.properties ?? {}),
    })
  }
}

const isOpen311 = (op: Operation) => op.path.startsWith('/open311/')
const headersFor = (op: Operation): Record<string, string> =>
  op.path.startsWith('/admin/') ? { authorization: `Bearer ${admin.key}` } : isOpen311(op) ? { authorization: `Bearer ${client.key}` } : {}

/** The operation's URL with every path parameter filled, one of them (or none) hostile. */
function urlOf(op: Operation, format: string, hostileParam?: string, value = '') {
  let url = op.path.replace('{format}', format)
  for (const name of op.pathParams) url = url.replace(`{${name}}`, name === hostileParam ? value : 'x1')
  return url
}

/**
 * Refused for the text itself, not for something else wrong with the request: the input
 * rule's wording (src/shared/text-safety.ts), or the router's for a path that does not decode.
 */
const TEXT_REFUSAL = /^(\S+: (must not contain NUL characters|is not valid UTF-8|must not contain unpaired surrogates)|the URL path is not valid)/

function assertEnvelope(t: Test, res: LightMyRequestResponse, format: string, label: string) {
  t.equal(res.statusCode, 400, `${label}: 400 (${res.body.slice(0, 160)})`)
  if (format === 'xml') {
    t.match(res.headers['content-type'], /^text\/xml/, `${label}: XML`)
    const errors = xml.parse(res.body).errors?.error as { code: number; description: string }[] | undefined
    t.match(errors, [{ code: 400, description: TEXT_REFUSAL }], `${label}: the XML error list, refusing the text`)
  } else {
    t.match(res.headers['content-type'], /^application\/json/, `${label}: JSON`)
    t.match(res.json(), [{ code: 400, description: TEXT_REFUSAL }], `${label}: the JSON error list, refusing the text`)
  }
}

t.test('the walk covers every kind of route', async (t) => {
  const kinds = new Set(operations.map((op) => op.path.split('/')[1]))
  // '' is GET /, the signpost (issue 17).
  t.same([...kinds].sort(), ['', 'admin', 'departments', 'healthz', 'media', 'metrics', 'open-data', 'open311', 'readyz'], 'the signpost, Open311, open-data, media, metrics, admin, department and health routes are all documented')
  t.ok(operations.length >= 25, `${operations.length} operations`)
  t.ok(operations.some((op) => op.bodyFields.length > 0 && isOpen311(op)), 'form bodies are among them')
})

t.test('every route refuses NUL, invalid UTF-8 and unpaired surrogates wherever it takes text, and stores nothing', async (t) => {
  const before = await fingerprint()
  for (const op of operations) {
    const formats = op.formats.length > 0 ? op.formats : ['json']
    for (const h of HOSTILE) {
      for (const format of formats) {
        const label = `${op.method} ${op.path} (${format}, ${h.name}`
        const headers = headersFor(op)
        for (const param of op.pathParams) {
          const res = await app.inject({ method: op.method as 'GET', url: urlOf(op, format, param, h.encoded), headers })
          assertEnvelope(t, res, format, `${label} in path ${param})`)
        }
        const query = op.queryParams[0] ?? 'jurisdiction_id'
        const inQuery = await app.inject({ method: op.method as 'GET', url: `${urlOf(op, format)}?${query}=${h.encoded}`, headers })
        assertEnvelope(t, inQuery, format, `${label} in query ${query})`)
        if (!['POST', 'PUT', 'PATCH'].includes(op.method)) continue
        const field = op.bodyFields.find((f) => f !== 'api_key') ?? 'name'
        if (isOpen311(op)) {
          const encoded = await app.inject({
            method: op.method as 'POST',
            url: urlOf(op, format),
            headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
            payload: `service_code=pothole&${field}=${h.encoded}`,
          })
          assertEnvelope(t, encoded, format, `${label} percent-encoded in form field ${field})`)
          const rawForm = await app.inject({
            method: op.method as 'POST',
            url: urlOf(op, format),
            headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
            payload: Buffer.concat([Buffer.from(`service_code=pothole&${field}=`), h.raw]),
          })
          assertEnvelope(t, rawForm, format, `${label} as raw bytes in form field ${field})`)
          const boundary = 'hostile-boundary'
          const multipart = await app.inject({
            method: op.method as 'POST',
            url: urlOf(op, format),
            headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
            payload: Buffer.concat([
              Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"\r\n\r\n`),
              h.raw,
              Buffer.from(`\r\n--${boundary}--\r\n`),
            ]),
          })
          assertEnvelope(t, multipart, format, `${label} in multipart field ${field})`)
        } else {
          const json = await app.inject({
            method: op.method as 'POST',
            url: urlOf(op, format),
            headers: { ...headers, 'content-type': 'application/json' },
            payload: Buffer.from(`{"${field}":${h.json},"data":{"${field}":${h.json}}}`, 'latin1'),
          })
          assertEnvelope(t, json, format, `${label} in JSON field ${field})`)
          const inKey = await app.inject({
            method: op.method as 'POST',
            url: urlOf(op, format),
            headers: { ...headers, 'content-type': 'application/json' },
            payload: Buffer.from(`{${h.json}:"x"}`, 'latin1'),
          })
          assertEnvelope(t, inKey, format, `${label} in a JSON key)`)
        }
      }
    }
  }
  t.same(await fingerprint(), before, 'no table changed')
})

t.test('the error names the field and the problem', async (t) => {
  const nul = await app.inject(`/open311/v2/requests.json?service_request_id=100001,%00`)
  t.same(nul.json(), [{ code: 400, description: 'service_request_id: must not contain NUL characters (U+0000)' }])
  const form = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { authorization: `Bearer ${client.key}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'service_code=pothole&attribute%5Bsize%5D=%ED%A0%80',
  })
  t.match(form.json(), [{ code: 400, description: /^attribute\[size\]: is not valid UTF-8/ }])
  const surrogate = await app.inject({
    method: 'PUT',
    url: '/admin/v1/catalog',
    headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' },
    payload: '{"jurisdiction":{"id":"x","name":"\\udc00"}}',
  })
  t.same(surrogate.json(), [{ code: 400, description: 'jurisdiction.name: must not contain unpaired surrogates (text must be valid Unicode)' }])
  const pair = await app.inject(`/open311/v2/requests.json?service_request_id=${encodeURIComponent('😀')}`)
  t.not(pair.statusCode, 400, 'a properly paired surrogate (an emoji) is ordinary text')
  const literalPercent = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { authorization: `Bearer ${client.key}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'service_code=pothole&lat=41.88&long=-87.63&attribute%5Bsize%5D=SMALL&description=100%',
  })
  t.equal(literalPercent.statusCode, 200, `a lone % stays literal text, as before (${literalPercent.body})`)
})

t.test('a catalog file with a NUL is refused by the validator the CLI uses, naming the field', async (t) => {
  const catalog = {
    jurisdiction: { id: 'nul.example', name: 'Nul', time_zone: 'UTC' },
    services: [{ service_code: 'a', service_name: 'bad\u0000name', description: 'd' }],
  }
  t.throws(() => validateCatalog(catalog, 'catalog.json'), {
    message: 'catalog.json: services[0].service_name must not contain NUL characters (U+0000)',
  })
})

t.test("Fastify's own refusals a client can trigger all answer in the envelope", async (t) => {
  const cases: { code: string; status: number; request: InjectOptions & { url: string } }[] = [
    { code: 'FST_ERR_BAD_URL', status: 400, request: { url: '/open311/v2/services/%c0%ae%c0%ae%c0%af.json' } },
    { code: 'FST_ERR_BAD_URL', status: 400, request: { url: '/open311/v2/services/%u002e.xml' } },
    { code: 'FST_ERR_BAD_URL', status: 400, request: { url: '/open311/v2/services/%80.json' } },
    { code: 'FST_ERR_BAD_URL', status: 400, request: { url: '/open311/v2/services/%F4%90%80%80.xml' } },
    { code: 'FST_ERR_MAX_PARAM_LENGTH', status: 414, request: { url: `/open311/v2/services/${'a'.repeat(300)}.json` } },
    { code: 'FST_ERR_NOT_FOUND', status: 404, request: { url: '/open311/v2/nothing-here.xml' } },
    { code: 'FST_ERR_VALIDATION', status: 400, request: { url: '/open311/v2/requests.json?start_date=yesterday' } },
    {
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      status: 415,
      request: { method: 'POST', url: '/open311/v2/requests.xml', headers: { 'content-type': 'text/plain' }, payload: 'x' },
    },
    {
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
      status: 413,
      request: {
        method: 'POST',
        url: '/open311/v2/requests.json',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `description=${'x'.repeat(app.config.bodyLimitBytes + 1)}`,
      },
    },
    {
      code: 'FST_ERR_CTP_EMPTY_JSON_BODY',
      status: 400,
      // Not the catalog route: it parses JSON itself, to give line and column (test/http/admin.test.ts).
      request: { method: 'POST', url: '/admin/v1/keys', headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' }, payload: '' },
    },
    {
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
      status: 400,
      request: { method: 'POST', url: '/admin/v1/keys', headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' }, payload: '{"a":' },
    },
    {
      code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
      status: 400,
      request: {
        method: 'POST',
        url: '/open311/v2/requests.json',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '3' },
        payload: 'service_code=pothole',
      },
    },
  ]
  // Every error code Fastify defines with a client (4xx) status is either triggered above or
  // named here with the reason a client cannot reach it: a new one in a Fastify upgrade fails here.
  const unreachable: Record<string, string> = {
    FST_ERR_INVALID_URL: 'a route registered with a non-string url',
    FST_ERR_CTP_INSTANCE_ALREADY_STARTED: 'a parser added after start',
    FST_ERR_ROUTE_MISSING_CONTENT_TYPE: 'a route schema definition',
    FST_ERR_ROUTE_MISSING_CONTENT: 'a route schema definition',
  }
  const clientCodes = Object.entries(errorCodes)
    .filter(([, ErrorType]) => {
      try {
        const status = (new (ErrorType as new (...args: string[]) => { statusCode?: number })('x', 'y', 'z')).statusCode ?? 500
        return status >= 400 && status < 500
      } catch {
        return false
      }
    })
    .map(([name]) => name)
  const triggered = new Set(cases.map((c) => c.code))
  for (const name of clientCodes) {
    t.ok(triggered.has(name) || name in unreachable, `${name}: triggered by a test here, or why a client cannot reach it`)
  }
  for (const { code, status, request } of cases) {
    const res = await app.inject(request)
    const url = request.url
    const label = `${code} (${url.slice(0, 60)})`
    t.equal(res.statusCode, status, `${label}: ${status}`)
    t.notMatch(res.body, /FST_ERR|"statusCode"|"error":/, `${label}: not Fastify's own body`)
    t.ok(res.headers['x-request-id'], `${label}: carries a request id`)
    if (url.split('?')[0]!.endsWith('.xml')) {
      t.match(res.headers['content-type'], /^text\/xml/, `${label}: XML for .xml`)
      t.match(xml.parse(res.body).errors.error, [{ code: status, description: String }], `${label}: the XML list`)
    } else {
      t.match(res.headers['content-type'], /^application\/json/, `${label}: JSON otherwise`)
      t.match(res.json(), [{ code: status, description: String }], `${label}: the JSON list`)
    }
  }
})

t.test('over a real socket: malformed multipart is 400, a chunked multipart body stops at the limit with 413', async (t) => {
  const { app: small, logs: smallLogs } = await buildTestApp(t, { bodyLimitBytes: 262_144 })
  await loadDemoCatalog(small.db)
  const key = await createApiKey(small.db, { name: 'app', scopes: ['requests:write'] }, SERVER_ACTOR)
  await small.listen({ port: 0, host: '127.0.0.1' })
  const { port } = small.server.address() as { port: number }

  /** Streams `chunks` with chunked framing (no Content-Length); resolves with the answer and how much was written before it. */
  function send(contentType: string, chunks: Iterable<Buffer>, path = '/open311/v2/requests.json') {
    return new Promise<{ status: number; body: string; headers: Record<string, unknown>; written: number }>((resolve, reject) => {
      let written = 0
      let answered = false
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-type': contentType, authorization: `Bearer ${key.key}`, 'transfer-encoding': 'chunked' } })
      req.on('response', (res) => {
        answered = true
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers, written }))
      })
      req.on('error', (err) => (answered ? undefined : reject(err)))
      const iterator = chunks[Symbol.iterator]()
      const pump = () => {
        while (!answered) {
          const next = iterator.next()
          if (next.done) return req.end()
          written += next.value.length
          if (!req.write(next.value)) return req.once('drain', pump)
        }
      }
      pump()
    })
  }
  const boundary = 'b0undary'
  const field = (name: string, value: string) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)

  const unclosed = await send(`multipart/form-data; boundary=${boundary}`, [field('service_code', 'pothole'), Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nno end`)])
  t.equal(unclosed.status, 400, `no closing boundary: 400 (${unclosed.body})`)
  t.match(JSON.parse(unclosed.body), [{ code: 400, description: /multipart/ }])

  const otherBoundary = await send('multipart/form-data; boundary=not-the-one', [field('service_code', 'pothole'), Buffer.from(`--${boundary}--\r\n`)], '/open311/v2/requests.xml')
  t.equal(otherBoundary.status, 400, `a boundary other than the header's: 400 (${otherBoundary.body})`)
  t.match(xml.parse(otherBoundary.body).errors.error, [{ code: 400, description: /multipart/ }], 'in XML for .xml')

  const noBoundary = await send('multipart/form-data', [field('service_code', 'pothole')])
  t.equal(noBoundary.status, 400, `no boundary in Content-Type: 400 (${noBoundary.body})`)

  const rssBefore = process.memoryUsage().rss
  // 23.8 MB of one field, in 64 KiB chunks, without a Content-Length.
  const chunk = Buffer.alloc(65_536, 'x')
  function* huge() {
    yield field('service_code', 'pothole')
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\n`)
    for (let i = 0; i < 364; i++) yield chunk
    yield Buffer.from(`\r\n--${boundary}--\r\n`)
  }
  const tooLarge = await send(`multipart/form-data; boundary=${boundary}`, huge())
  t.equal(tooLarge.status, 413, `chunked past BODY_LIMIT_BYTES: 413 (${tooLarge.body})`)
  t.same(JSON.parse(tooLarge.body), [{ code: 413, description: 'request body is too large' }])
  t.equal(tooLarge.headers.connection, 'close', 'the connection closes: the rest is never read')
  t.ok(tooLarge.written < 8 * 1024 * 1024, `the client got its answer after ${tooLarge.written} of 23.8 MB (not after sending it all)`)
  t.ok(process.memoryUsage().rss - rssBefore < 16 * 1024 * 1024, 'the server did not buffer the body')

  const manyFields = await send(`multipart/form-data; boundary=${boundary}`, [
    ...Array.from({ length: 600 }, (_, i) => field(`f${i}`, 'v')),
    Buffer.from(`--${boundary}--\r\n`),
  ])
  t.equal(manyFields.status, 413, `more parts than any report has: 413 (${manyFields.body})`)

  const fine = await send(`multipart/form-data; boundary=${boundary}`, [
    field('service_code', 'pothole'),
    field('lat', '41.88'),
    field('long', '-87.63'),
    field('attribute[size]', 'SMALL'),
    field('description', 'chunked, and within the limit'),
    Buffer.from(`--${boundary}--\r\n`),
  ])
  t.equal(fine.status, 200, `a chunked multipart body within the limit is accepted (${fine.body})`)

  // A client that hangs up mid-upload: a client error, never mistaken for a database outage.
  await new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`)
      const part = field('service_code', 'pothole')
      socket.write(`${part.length.toString(16)}\r\n${part.toString()}\r\n`, () => setTimeout(() => socket.destroy(), 50))
    })
    socket.on('close', () => resolve())
    socket.on('error', () => {})
  })
  await new Promise((r) => setTimeout(r, 300))
  t.notOk(smallLogs().some((l) => /database unreachable/.test(String(l.msg))), 'an aborted upload is not a database outage')
  t.notOk(smallLogs().some((l) => l.level === 50), 'nor an error line')
})

t.test('a stored header (Idempotency-Key) with a NUL or non-ASCII text: 400 in the envelope, nothing stored', async (t) => {
  const before = await fingerprint()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  // Node's HTTP parser refuses a NUL in a header value before any route runs.
  const answer = await new Promise<string>((resolve, reject) => {
    let received = ''
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(`POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\u0000b\r\nContent-Length: 0\r\n\r\n`),
    )
    socket.on('data', (c) => (received += c.toString('utf8')))
    socket.on('close', () => resolve(received))
    socket.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 400 /, 'NUL: 400')
  t.match(answer, /\r\n\r\n\[\{"code":400,"description":"malformed HTTP request"\}\]$/, 'NUL: the envelope')
  const nonAscii = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { authorization: `Bearer ${client.key}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': 'clé\u00e9' },
    payload: 'service_code=pothole&lat=41.88&long=-87.63&attribute%5Bsize%5D=SMALL',
  })
  t.equal(nonAscii.statusCode, 400, 'non-ASCII: 400')
  t.same(nonAscii.json(), [{ code: 400, description: 'Idempotency-Key: must be 1–255 printable ASCII characters' }])
  t.same(await fingerprint(), before, 'no table changed')
})
