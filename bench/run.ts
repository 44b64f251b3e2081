/**
 * `npm run bench` — figures, not pass/fail. Loads N synthetic requests spread over one city
 * and three years into a PostGIS database, starts the real server as a child process, and
 * drives it with autocannon next to baselines (a bare Fastify route, the POST's own INSERT
 * statement and the raw radius SQL through pg). Results go to stdout as a Markdown table and to
 * bench/.results/latest.json.
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench -- --rows 1000000
 *
 * The open-data feed's scenarios (issue 14) are in open-data.ts: `--only open-data`; duplicates at
 * intake (issue 15) in duplicates.ts: `--only dup`. Start time
 * (issue 17, start-time.ts) needs no PostGIS and runs first: `--only start` runs it alone.
 * The reports (issue 15, reports.ts) run last, on a data set of their own: `--only reports`.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pg from 'pg'
import { request } from 'undici'
import { type Database, openDatabase } from '../src/db/database.js'
import { activeService } from '../src/domain/catalog/catalog-cache.js'
import { resolveJurisdiction } from '../src/domain/jurisdictions.js'
import { submitServiceRequest } from '../src/domain/requests/submit-request.js'
import { validateSubmission } from '../src/domain/requests/submission.js'
import { benchUrl, CENTRE, measure, median, postForm, prepareDatabase, quiet, radiusSearchPath, randomPoint, startDeployedServer, startProcess } from './setup.js'
import { benchOpenData } from './open-data.js'
import { deleteBenchPosts, DUPLICATE_SEARCH, explainCandidateSearch, formAtCityPoint, setGraffitiPolicy } from './duplicates.js'
import { benchReports } from './reports.js'
import { benchStartTime } from './start-time.js'
import { benchLatency, benchServerDeliveries, prepareDepartment, startReceiver } from './webhooks.js'
import { SERVER_ACTOR } from '../src/domain/audit/audit.js'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '20' },
    only: { type: 'string' },
    'embedded-rows': { type: 'string', default: '100000' },
    'export-rounds': { type: 'string', default: '3' },
    'start-rounds': { type: 'string', default: '5' },
    /** Alternating slices per report and side (--duration seconds per side in all): a baseline of seconds needs several for a p95. */
    'report-rounds': { type: 'string', default: '10' },
    /** Rebuild the reports' rollups even when an earlier run rebuilt them on the same data set. */
    'reports-rebuild': { type: 'boolean', default: false },
  },
})
const ROWS = Number(args.rows)
const DURATION = Number(args.duration)
const CONNECTIONS = Number(args.connections)
const ROUNDS = 5
const SERVER_LOG = 'bench/.results/server.log'
/**
 * Said first, because every figure depends on it: tsx wraps every function it creates at run
 * time (~30% of services.json's server CPU on the session-4 machine), and a quieter log level or
 * a bigger pool than the default measures a server nobody runs.
 */
const AS_DEPLOYED = `# Measures the server as deployed: node dist/server.js (compiled now), default configuration
#   (LOG_LEVEL=info, one line per request, to ${SERVER_LOG}; default pool; prepared statements on);
#   changed only: DATABASE_URL (PostGIS), PORT, SEED_DEMO=false, POST rate limits lifted,
#   webhooks allowed to the loopback receiver.`
interface Figure {
  scenario: string
  reqPerSec: number
  p50: number
  p99: number
  note?: string
}
const figures: Figure[] = []

/** One measured run of a scenario: throughput, latency percentiles in ms, failed requests. */
interface Sample {
  reqPerSec: number
  p50: number
  p99: number
  failures: number
}

const viaAutocannon =
  (options: autocannon.Options, connections = CONNECTIONS) =>
  async (): Promise<Sample> => {
    const result = await measure(options, connections, DURATION)
    return { reqPerSec: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, failures: result.non2xx + result.errors }
  }

/** Latencies in ms of `work` run from `connections` concurrent loops for `seconds`. */
async function sampleLatencies(work: () => Promise<unknown>, connections: number, seconds: number): Promise<number[]> {
  const latencies: number[] = []
  const deadline = performance.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now()
        await work()
        latencies.push(performance.now() - t0)
      }
    }),
  )
  return latencies
}

/** Two seconds of `work` from `connections` loops: every pooled connection is open and warm. */
async function warmUp(work: () => Promise<unknown>, connections: number) {
  await sampleLatencies(work, connections, 2)
}

/** Exact percentiles (autocannon's are whole milliseconds) of latencies gathered over `seconds`. */
function summarise(latencies: number[], seconds: number): Sample {
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! * 100) / 100
  return { reqPerSec: latencies.length / seconds, p50: pct(0.5), p99: pct(0.99), failures: 0 }
}

/** `work` from `connections` concurrent loops for DURATION seconds, after a 2-second warm-up; exact percentiles. */
const viaLoop =
  (work: () => Promise<unknown>, connections = CONNECTIONS) =>
  async (): Promise<Sample> => {
    await warmUp(work, connections)
    return summarise(await sampleLatencies(work, connections, DURATION), DURATION)
  }

function record(scenario: string, sample: Sample, note?: string) {
  const { reqPerSec, p50, p99, failures } = sample
  figures.push({
    scenario,
    reqPerSec: Math.round(reqPerSec),
    p50,
    p99,
    ...(note || failures ? { note: [note, failures ? `${failures} non-2xx/errors` : ''].filter(Boolean).join('; ') } : {}),
  })
  console.log(`# ${scenario}: ${Math.round(reqPerSec)} req/s, p50 ${p50} ms, p99 ${p99} ms`)
}

const selected = (...scenarios: string[]) => !args.only || scenarios.some((scenario) => scenario.includes(args.only!))

async function cannon(scenario: string, options: autocannon.Options, note?: string, connections = CONNECTIONS) {
  if (selected(scenario)) record(scenario, await viaAutocannon(options, connections)(), note)
}

/** A loop scenario reported on its own. */
async function timedLoop(scenario: string, work: () => Promise<unknown>, connections = CONNECTIONS) {
  if (selected(scenario)) record(scenario, await viaLoop(work, connections)())
}

/** A baseline and ours, in that order: a pair's ratio is always ours / baseline. */
type Pair<Run> = [baseline: [name: string, run: Run], ours: [name: string, run: Run]]

/**
 * Two throughput scenarios measured in alternation, ROUNDS times each; each is reported by its
 * median run, and ours' note gives the median of the per-round ratios (ours / baseline).
 * On a shared 2-core machine one run of either can be off by 10-25%, and the noise drifts over
 * seconds: the runs of one round share it, so their ratio is the steadier figure. Failed
 * requests are counted over every run, not only the median one.
 */
async function alternating([first, second]: Pair<() => Promise<Sample>>) {
  if (!selected(first[0], second[0])) return
  const runs: [Sample[], Sample[]] = [[], []]
  for (let round = 0; round < ROUNDS; round++) {
    runs[0].push(await first[1]())
    runs[1].push(await second[1]())
  }
  const ratios = runs[1].map((run, round) => run.reqPerSec / runs[0][round]!.reqPerSec)
  for (const [i, [scenario]] of [first, second].entries()) {
    const sorted = [...runs[i]!].sort((a, b) => a.reqPerSec - b.reqPerSec)
    const all = runs[i]!.map((r) => Math.round(r.reqPerSec).toLocaleString('en-US')).join(', ')
    const ratio = i === 1 ? `; per-round ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${median(ratios).toFixed(2)}` : ''
    const failures = runs[i]!.reduce((sum, run) => sum + run.failures, 0)
    record(scenario, { ...sorted[Math.floor(sorted.length / 2)]!, failures }, `median of ${ROUNDS} alternating runs: ${all}${ratio}`)
  }
}

/**
 * Two one-client latency loops measured in alternation: ROUNDS slices each (DURATION / ROUNDS
 * seconds), DURATION seconds in all per side, after one warm-up each. The p99 of a 10-second
 * loop moves by a third between runs as the machine drifts; slices of the two sides interleaved
 * share that drift, as the throughput pairs do.
 */
async function alternatingLatency(pair: Pair<() => Promise<unknown>>) {
  if (!selected(pair[0][0], pair[1][0])) return
  for (const [, work] of pair) await warmUp(work, 1)
  const latencies: [number[], number[]] = [[], []]
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [, work]] of pair.entries()) latencies[i]!.push(...(await sampleLatencies(work, 1, DURATION / ROUNDS)))
  }
  for (const [i, [scenario]] of pair.entries()) record(scenario, summarise(latencies[i]!, DURATION), `${ROUNDS} alternating slices`)
}

/** Reads a body to its end without keeping it, as autocannon does. */
async function drain(body: AsyncIterable<Uint8Array>) {
  for await (const _chunk of body) {
    // Each chunk is dropped as it arrives.
  }
}

/** The POST's write of `form` without HTTP: submitServiceRequest on `database`, one statement, as the POST sends it. */
async function postWrite(database: Database, form: URLSearchParams): Promise<() => Promise<unknown>> {
  const jurisdiction = await resolveJurisdiction(database.db, undefined)
  const service = (await activeService(database.db, jurisdiction, 'graffiti'))!
  const submission = validateSubmission(Object.fromEntries(form), service, jurisdiction.timeZone)
  return () => submitServiceRequest(database.db, { jurisdiction, service, submission, actor: SERVER_ACTOR, channel: 'app' })
}

/** postWrite at a fresh city point each time, with graffiti's policy off or suggest 50 m / 30 d (bench/duplicates.ts). */
async function cityPointWrite(database: Database, on: boolean): Promise<() => Promise<unknown>> {
  const jurisdiction = await resolveJurisdiction(database.db, undefined)
  const stored = (await activeService(database.db, jurisdiction, 'graffiti'))!
  const service = on
    ? { ...stored, duplicates: { policy: DUPLICATE_SEARCH.policy, radius_m: DUPLICATE_SEARCH.radiusM, window_days: DUPLICATE_SEARCH.windowDays } }
    : { ...stored, duplicates: undefined }
  return () => {
    const form = new URLSearchParams(formAtCityPoint('unused'))
    const submission = validateSubmission(Object.fromEntries(form), service, jurisdiction.timeZone)
    return submitServiceRequest(database.db, { jurisdiction, service, submission, actor: SERVER_ACTOR, channel: 'app' })
  }
}

async function main() {
  // The start-time scenarios say their own set-up (start-time.ts): the embedded default, not PostGIS.
  if (args.only !== 'start') console.log(AS_DEPLOYED)
  const port = 31000 + Math.floor(Math.random() * 1000)
  console.log('# building dist/ …')
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' })
  await mkdir('bench/.results', { recursive: true })
  if (selected('start: npm start', 'start: node dist/server.js')) {
    await benchStartTime({ rounds: Number(args['start-rounds']), port: port + 4, report: (figure) => figures.push(figure) })
    if (args.only === 'start') return writeResults()
  }
  // The reports (issue 15) have a data set and a server of their own (reports.ts): `--only
  // reports` (or `--only 'reports: timeliness'`) runs them without making the feed's data set.
  const reports = () => benchReports({ rows: ROWS, port: port + 5, duration: DURATION, rounds: Number(args['report-rounds']), rebuild: args['reports-rebuild']!, selected, report: (figure) => figures.push(figure) })
  if (args.only?.startsWith('reports')) {
    await reports()
    return writeResults()
  }
  const apiKey = await prepareDatabase(ROWS)
  const server = await startDeployedServer(process.cwd(), port, SERVER_LOG)
  const base = server.base
  const pool = new pg.Pool({ connectionString: benchUrl, max: CONNECTIONS })
  try {
    // The bare route answers the same bytes: this body and these headers (all but the ones
    // Node writes itself), so the comparison shows what our stack costs, not what it sends.
    const services = await fetch(`${base}/open311/v2/services.json`)
    const bodyFile = `/tmp/open311-bench-services-${process.pid}.json`
    await writeFile(bodyFile, await services.text())
    const headersFile = `/tmp/open311-bench-services-headers-${process.pid}.json`
    const nodeWrites = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'])
    await writeFile(headersFile, JSON.stringify(Object.fromEntries([...services.headers].filter(([name]) => !nodeWrites.has(name)))))
    const barePort = port + 1
    const bare = await startProcess(['node', '--import', 'tsx', 'bench/bare-server.ts'], { PORT: String(barePort), BARE_BODY_FILE: bodyFile, BARE_HEADERS_FILE: headersFile }, /ready/)
    await alternating([
      ['bare Fastify route, same body and headers as services.json', viaAutocannon({ url: `http://127.0.0.1:${barePort}/services.json` })],
      ['GET services.json', viaAutocannon({ url: `${base}/open311/v2/services.json` })],
    ])
    bare.kill()

    await cannon('GET requests.json (default 90-day window, 1000 rows)', { url: `${base}/open311/v2/requests.json` })
    const radiusRequests: autocannon.Options = {
      url: base,
      requests: [
        {
          setupRequest: (request) => ({ ...request, path: radiusSearchPath() }),
        },
      ],
    }
    const radiusSql = (client: pg.Pool) => {
      const p = randomPoint()
      return client.query(
        `select sr.public_id, sr.status, sr.status_notes, s.service_name, s.service_code, sr.description, sr.agency_responsible,
                sr.service_notice, sr.requested_at, sr.updated_at, sr.expected_at, sr.address, sr.address_id, sr.zipcode,
                ST_Y(sr.location::geometry), ST_X(sr.location::geometry), sr.media_urls
         from service_requests sr join services s on s.id = sr.service_id
         where sr.jurisdiction_id = 'demo.open311.city' and sr.is_public
           and sr.requested_at >= now() - interval '90 days'
           and ST_DWithin(sr.location, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, 500)
         order by sr.requested_at desc nulls last, sr.id desc nulls last limit 1001`,
        [p.long, p.lat],
      )
    }
    // Saturated (CONNECTIONS clients) for throughput, and one client for latency.
    await cannon('GET requests.json?lat&long&radius=500 (90-day window)', radiusRequests)
    await timedLoop('raw SQL: radius 500 m + 90-day window through pg', () => radiusSql(pool))
    // One client each, in alternating slices. The body is read chunk by chunk and dropped, as
    // autocannon reads it: gathering it into one ArrayBuffer (undici's arrayBuffer()) made the
    // measuring process itself run ~25 mark-compacts in 10 s, up to 4.5 ms each, and its p99
    // 1.5 ms longer: the client's cost, not the server's (docs/benchmarks.md, session 6).
    const radiusHttp = async () => {
      const res = await request(`${base}${radiusSearchPath()}`)
      await drain(res.body)
      // A failed search would be timed as a fast one: stop instead.
      if (res.statusCode !== 200) throw new Error(`radius search answered ${res.statusCode}`)
    }
    await alternatingLatency([
      ['raw SQL: radius 500 m + 90-day window, 1 client', () => radiusSql(pool)],
      ['GET requests.json?lat&long&radius=500, 1 client (whole body read)', radiusHttp],
    ])

    const form = postForm(apiKey, { email: 'bench@example.org' })
    // For reference: the cheapest write a request could be, one row and none of the rest.
    await timedLoop('one-row INSERT into service_requests through pg (reference for POST)', () =>
      pool.query(
        `insert into service_requests (jurisdiction_id, service_id, location, description, channel)
         values ('demo.open311.city', (select id from services where service_code = 'graffiti'),
                 ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, $3, 'app') returning public_id`,
        [CENTRE.long, CENTRE.lat, 'Tag on the wall of the underpass'],
      ),
    )
    // The POST against its own write — submitServiceRequest (request, reporter, history entry,
    // routing, work orders, events) in one statement, called in this process through drizzle
    // and pg with the same values: what the HTTP stack adds. In alternation, like the services
    // pair: measured one after the other, their ratio moved from 0.49 to 0.58 between runs
    // (docs/benchmarks.md, session 6).
    const post = 'POST requests.json'
    const postWriteScenario = "the POST's own write (submitServiceRequest, one statement) without HTTP"
    if (selected(post, postWriteScenario)) {
      const database = await openDatabase({ databaseUrl: benchUrl, logger: quiet, poolSize: CONNECTIONS })
      const write = await postWrite(database, form)
      await alternating([
        [postWriteScenario, viaLoop(write)],
        [
          post,
          viaAutocannon({
            url: `${base}/open311/v2/requests.json`,
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: form.toString(),
          }),
        ],
      ])
      await database.close()
    }
    // Duplicates at intake (issue 15): the same POST with graffiti's policy off and on, posted at
    // city points so the search runs where requests are; the candidate search's plan and cost
    // at this size before and after (bench/duplicates.ts, docs/benchmarks.md).
    const dupOff = 'POST dup-detection off (graffiti at city points)'
    const dupOn = `POST dup-detection on (${DUPLICATE_SEARCH.policy}, ${DUPLICATE_SEARCH.radiusM} m, ${DUPLICATE_SEARCH.windowDays} days)`
    if (selected(dupOff, dupOn)) {
      const database = await openDatabase({ databaseUrl: benchUrl, logger: quiet, poolSize: 2 })
      const explain = async (when: string) => {
        const found = await explainCandidateSearch(database, pool)
        console.log(`# candidate search ${when}: ${found.counts.total} graffiti requests, ${found.counts.in_window} open originals in the window`)
        console.log(found.custom.plan.map((line) => `#   ${line}`).join('\n'))
        console.log(`# generic plan:\n${found.generic.plan.map((line) => `#   ${line}`).join('\n')}`)
        for (const [kind, timing] of [['custom', found.custom], ['generic', found.generic]] as const) {
          figures.push({
            scenario: `candidate search ${when}, EXPLAIN ANALYZE execution ms (${kind} plan, 200 city points)`,
            reqPerSec: Number.NaN,
            p50: timing.median,
            p99: timing.p99,
            note: `${found.counts.in_window} open graffiti originals in the 30-day window of ${found.counts.total}`,
          })
        }
      }
      // Every run starts from the data set as generated (bench/duplicates.ts, deleteBenchPosts).
      const lastId = Number((await pool.query<{ id: string }>('select max(id) as id from service_requests')).rows[0]!.id)
      await explain('before the POSTs')
      const posting = (on: boolean) => async () => {
        await deleteBenchPosts(pool, lastId)
        await setGraffitiPolicy(pool, on)
        return viaAutocannon({
          url: `${base}/open311/v2/requests.json`,
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          requests: [{ setupRequest: (request) => ({ ...request, body: formAtCityPoint(apiKey) }) }],
        })()
      }
      await alternating([
        [dupOff, posting(false)],
        [dupOn, posting(true)],
      ])
      // The same pair without HTTP: the POST's own write (submitServiceRequest, one statement)
      // at city points, the service's policy given in the call, so only the statement differs.
      const writeOff = "the POST's own write, dup-detection off (without HTTP)"
      const writeOn = "the POST's own write, dup-detection on (without HTTP)"
      const writes = await openDatabase({ databaseUrl: benchUrl, logger: quiet, poolSize: CONNECTIONS })
      const writing = (on: boolean) => {
        const write = cityPointWrite(writes, on)
        return async () => {
          await deleteBenchPosts(pool, lastId)
          return viaLoop(await write)()
        }
      }
      await alternating([
        [writeOff, writing(false)],
        [writeOn, writing(true)],
      ])
      await writes.close()
      await setGraffitiPolicy(pool, false)
      await explain('after the last run (its POSTs still there)')
      await deleteBenchPosts(pool, lastId)
      await database.close()
    }
    // Before the webhook scenario, whose work orders on 5,000 open requests would show in the feed.
    await benchOpenData({
      base,
      serverPid: server.pid,
      rows: ROWS,
      port: port + 3,
      embeddedRows: Number(args['embedded-rows']),
      exportRounds: Number(args['export-rounds']),
      selected,
      report: (figure) => {
        figures.push(figure)
        console.log(`# ${figure.scenario}: ${figure.reqPerSec}; ${figure.note ?? ''}`)
      },
      alternatingCannon: (first, second, connections) =>
        alternating([
          [first[0], viaAutocannon({ url: first[1] }, connections)],
          [second[0], viaAutocannon({ url: second[1] }, connections)],
        ]),
    })
    if (selected('webhooks')) {
      const receiver = await startReceiver(port + 2)
      try {
        const departmentId = await prepareDepartment(benchUrl, receiver.url, 'pothole')
        const throughput = await benchServerDeliveries(benchUrl, departmentId, receiver, 5000)
        figures.push({
          scenario: `webhook deliveries by the server's workers to a loopback receiver (${throughput.count} events)`,
          reqPerSec: throughput.perSecond,
          p50: Number.NaN,
          p99: Number.NaN,
          note: `${throughput.received}/${throughput.count} received in ${throughput.seconds.toFixed(1)} s`,
        })
        console.log(`# deliveries: ${throughput.perSecond}/s (${throughput.received}/${throughput.count})`)
        const latency = await benchLatency(base, apiKey, 'pothole', receiver, 200, 20)
        figures.push({
          scenario: 'request created → department received (idle server, 20 POST/s)',
          reqPerSec: 20,
          p50: latency.p50,
          p99: latency.p99,
          note: `${latency.received}/${latency.sent} received`,
        })
        console.log(`# created → received: p50 ${latency.p50} ms, p99 ${latency.p99} ms`)
      } finally {
        receiver.process.kill()
      }
    }
  } finally {
    await server.stop()
    await pool.end()
  }
  await reports()
  await writeResults()
}

async function writeResults() {
  const table = [
    `| scenario | req/s | p50 ms | p99 ms | note |`,
    `| --- | ---: | ---: | ---: | --- |`,
    ...figures.map((f) => `| ${f.scenario} | ${f.reqPerSec} | ${f.p50} | ${f.p99} | ${f.note ?? ''} |`),
  ].join('\n')
  console.log(`\nrows: ${ROWS.toLocaleString()}, duration ${DURATION} s per scenario, ${CONNECTIONS} connections\n\n${table}`)
  await writeFile('bench/.results/latest.json', JSON.stringify({ rows: ROWS, duration: DURATION, connections: CONNECTIONS, figures }, null, 2))
}

await main()
