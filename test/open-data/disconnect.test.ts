/**
 * A client that goes away mid-stream costs nothing further: over a real HTTP connection on
 * 127.0.0.1, a harvester reads the start of a whole 100,000-row feed (~25 MB) and hangs up; the
 * server stops reading batches as soon as its writes fail (it logs how many rows it had read),
 * far short of the feed: what it read past the hang-up is what socket buffers took meanwhile.
 */
import { once } from 'node:events'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { DEMO_JURISDICTION } from '../open311/fixtures.js'

const ROWS = 100_000
const { app, logs } = await buildTestApp(t)
await loadDemoCatalog(app.db)
await app.db.execute(sql`insert into service_requests (jurisdiction_id, service_id, status_notes, location)
                         select ${DEMO_JURISDICTION}, s.id, 'note ' || n, ST_SetSRID(ST_MakePoint(-87.63 + n / 1e6, 41.87), 4326)::geography
                         from services s, generate_series(1, ${ROWS}) n where s.service_code = 'graffiti'`)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }

const STOPPED = 'feed stopped before its end (client gone or a read failed); nothing more is read'
const stopped = () => logs().find((l) => l.msg === STOPPED)

t.test('a client that hangs up mid-stream stops the reading', async (t) => {
  const req = request({ host: '127.0.0.1', port, path: '/open-data/v1/requests.csv' })
  req.end()
  const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage]
  t.equal(res.statusCode, 200)
  const [first] = (await once(res, 'data')) as [Buffer]
  t.match(first.toString('utf8'), /^service_request_id,/, 'the feed started')
  req.destroy()

  // The server notices the closed socket on its next write; poll its log with a generous cap.
  for (let waited = 0; !stopped() && waited < 60_000; waited += 50) await sleep(50)
  const line = stopped()
  t.ok(line, 'the server logged that the feed stopped')
  const rowsRead = Number(line?.rowsRead)
  t.ok(rowsRead > 0 && rowsRead < ROWS / 2, `it had read ${rowsRead} of ${ROWS} rows`)
})

t.test('a feed read to its end logs no such line', async (t) => {
  const count = () => logs().filter((l) => l.msg === STOPPED).length
  const before = count()
  for (const url of ['/open-data/v1/requests.csv?limit=10', '/open-data/v1/updates.json']) {
    t.equal((await app.inject(url)).statusCode, 200)
  }
  t.equal(count(), before)
})
