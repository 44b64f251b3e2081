/**
 * While the server drains after SIGTERM (app.close()), a request already in flight finishes;
 * one that arrives on a kept-alive connection meanwhile is told to go elsewhere: 503 in the
 * envelope, Retry-After, Connection: close — not Fastify's own body. Over a real socket, with
 * the second request pipelined behind a slow one, so it arrives during the drain.
 */
import { connect } from 'node:net'
import pino from 'pino'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createTestDatabase } from '../helpers/database.js'

const { database } = await createTestDatabase(t)
const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), database, logger: pino({ level: 'silent' }) })
let release: () => void = () => {}
const held = new Promise<void>((resolve) => (release = resolve))
let arrived: () => void = () => {}
const inFlight = new Promise<void>((resolve) => (arrived = resolve))
// A request that is still being answered when the drain begins.
app.get('/test/slow', async () => {
  arrived()
  await held
  return { done: true }
})
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }

interface Answer {
  status: number
  headers: Record<string, string>
  body: string
}

/** Splits what a socket received into HTTP/1.1 answers (each with a Content-Length). */
function parseAnswers(bytes: string): Answer[] {
  const answers: Answer[] = []
  let rest = bytes
  while (rest.startsWith('HTTP/1.1')) {
    const headEnd = rest.indexOf('\r\n\r\n')
    const [statusLine = '', ...lines] = rest.slice(0, headEnd).split('\r\n')
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
    const length = Number(headers['content-length'] ?? 0)
    answers.push({ status: Number(statusLine.split(' ')[1]), headers, body: rest.slice(headEnd + 4, headEnd + 4 + length) })
    rest = rest.slice(headEnd + 4 + length)
  }
  return answers
}

t.test('a request arriving during the drain: 503 + Retry-After + Connection: close, in the envelope', async (t) => {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.on('data', (chunk) => (received += chunk.toString('utf8')))
  socket.write('GET /test/slow HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
  await inFlight

  const closing = app.close()
  // Pipelined on the kept-alive connection: Node hands it over once the slow one is answered.
  socket.write('GET /open311/v2/services.xml HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
  socket.write('GET /open311/v2/services.json HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
  await new Promise((r) => setTimeout(r, 100))
  release()
  await closed
  await closing

  const [slow, refused] = parseAnswers(received)
  t.equal(slow?.status, 200, 'the request in flight finishes')
  t.same(JSON.parse(slow?.body ?? 'null'), { done: true })
  t.equal(refused?.status, 503, `the pipelined request is refused (${received.slice(0, 400)})`)
  t.equal(refused?.headers['retry-after'], '5', 'with Retry-After')
  t.equal(refused?.headers.connection, 'close', 'and Connection: close')
  t.match(refused?.headers['content-type'], /^text\/xml/, 'in the format its URL asked for')
  t.match(refused?.body, /<errors><error><code>503<\/code><description>the server is shutting down; retry the request<\/description><\/error><\/errors>/)
  t.notMatch(received, /"error":"Service Unavailable"/, "never Fastify's own body")
})
