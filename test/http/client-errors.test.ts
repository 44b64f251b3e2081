/**
 * Requests Node's HTTP parser refuses before Fastify sees them still get the Open311 error
 * envelope (a malformed request line or header, oversized headers), over a real socket.
 */
import { connect } from 'node:net'
import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const { app } = await buildTestApp(t)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }

/** Sends raw bytes and reads until the server closes the connection. */
function raw(request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const [head = '', body = ''] = text.split('\r\n\r\n')
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body })
    })
    socket.write(request)
  })
}

t.test('a malformed header: 400 in the envelope, XML when the URL asked for XML', async (t) => {
  const xml = await raw('GET /open311/v2/services.xml HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n')
  t.equal(xml.status, 400)
  t.match(xml.headers['content-type'], /^text\/xml/)
  t.match(xml.body, /^<\?xml version="1.0" encoding="utf-8"\?>/)
  t.same(new XMLParser().parse(xml.body).errors.error, { code: 400, description: 'malformed HTTP request' })

  const json = await raw('GET /open311/v2/services.json HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n')
  t.equal(json.status, 400)
  t.match(json.headers['content-type'], /^application\/json/)
  t.same(JSON.parse(json.body), [{ code: 400, description: 'malformed HTTP request' }])
})

t.test('no request line at all: 400 in JSON', async (t) => {
  const res = await raw('HELLO THERE\r\n\r\n')
  t.equal(res.status, 400)
  t.same(JSON.parse(res.body), [{ code: 400, description: 'malformed HTTP request' }])
})

t.test('headers over the limit: 431 in the envelope', async (t) => {
  const res = await raw(`GET /open311/v2/services.json HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.equal(res.status, 431)
  t.same(JSON.parse(res.body), [{ code: 431, description: 'the request headers are too large' }])
})

t.test('the server still serves afterwards', async (t) => {
  const res = await fetch(`http://127.0.0.1:${port}/open311/v2/discovery.json`)
  t.ok([200, 404].includes(res.status), 'answers a well-formed request')
})

t.test('at level debug the refused request is logged without its bytes', async (t) => {
  const verbose = await buildTestApp(t, { logLevel: 'debug' })
  await verbose.app.listen({ port: 0, host: '127.0.0.1' })
  const verbosePort = (verbose.app.server.address() as { port: number }).port
  const res = await new Promise<string>((resolve, reject) => {
    const socket = connect(verbosePort, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')))
    socket.write('GET /open311/v2/services.json?api_key=SECRETKEY987&email=jane@example.com HTTP/1.1\r\nAuthorization: Bearer TOKEN654\r\nbroken header\r\n\r\n')
  })
  t.match(res, /^HTTP\/1.1 400 /)
  const line = verbose.logs().find((l) => l.msg === 'client error')
  t.ok(line, 'the refusal is logged')
  t.equal(line?.code, 'HPE_INVALID_HEADER_TOKEN')
  for (const secret of ['SECRETKEY987', 'jane@example.com', 'TOKEN654']) {
    t.notOk(verbose.rawLogs().includes(secret), `${secret} is not in the log`)
  }
})
