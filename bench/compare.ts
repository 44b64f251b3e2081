/**
 * `npm run bench:compare -- --baseline <git rev>` — the server as deployed at another commit
 * against the working tree, on the same machine, in the same run: services.json, the radius
 * search, the POST and deliveries by the server's own workers. Each round starts one build,
 * measures every scenario, stops it, then does the same for the other build (the two never run
 * at once: both servers' workers would share the outbox). Reported per scenario: the median of
 * each side and the median of the per-round ratios (after / before), the steadier figure on a
 * shared machine whose speed drifts over minutes.
 *
 *   npm run bench:compare -- --baseline 3780b8e --rows 1000000 --connections 32
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { benchUrl, measure, median, postForm, prepareDatabase, radiusSearchPath, startDeployedServer } from './setup.js'
import { benchServerDeliveries, prepareDepartment, type Receiver, startReceiver } from './webhooks.js'

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rows: { type: 'string', default: '1000000' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    deliveries: { type: 'string', default: '3000' },
    /** Only the scenarios whose name contains this text (e.g. `POST`, `radius`, `services`). */
    only: { type: 'string' },
  },
})
if (!args.baseline) throw new Error('--baseline <git rev> is required')
const DURATION = Number(args.duration)
const CONNECTIONS = Number(args.connections)
const ROUNDS = Number(args.rounds)

/** The baseline commit compiled in a worktree of its own, with its own locked dependencies. */
function buildBaseline(rev: string): string {
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { encoding: 'utf8' }).trim()
  const root = `/tmp/open311-bench-baseline-${sha}`
  if (!existsSync(root)) execFileSync('git', ['worktree', 'add', '--detach', root, sha], { stdio: 'inherit' })
  if (!existsSync(`${root}/node_modules`)) execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' })
  execFileSync('node_modules/.bin/tsc', ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  return root
}

async function throughput(options: autocannon.Options): Promise<number> {
  const result = await measure(options, CONNECTIONS, DURATION)
  if (result.non2xx + result.errors > 0) throw new Error(`${options.method ?? 'GET'} ${options.url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return result.requests.average
}

type Scenarios = Record<string, (base: string) => Promise<number>>

function scenarios(apiKey: string, departmentId: number, receiver: Receiver): Scenarios {
  const form = postForm(apiKey)
  return {
    'GET services.json (req/s)': (base) => throughput({ url: `${base}/open311/v2/services.json` }),
    // As browsers and most HTTP clients ask for it.
    'GET services.json, Accept-Encoding: gzip, deflate, br (req/s)': (base) =>
      throughput({ url: `${base}/open311/v2/services.json`, headers: { 'accept-encoding': 'gzip, deflate, br' } }),
    'GET requests.json?lat&long&radius=500 (req/s)': (base) =>
      throughput({
        url: base,
        requests: [{ setupRequest: (r) => ({ ...r, path: radiusSearchPath() }) }],
      }),
    'POST requests.json (req/s)': (base) =>
      throughput({ url: `${base}/open311/v2/requests.json`, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }),
    [`deliveries by the server's workers (${args.deliveries} events, events/s)`]: async () =>
      (await benchServerDeliveries(benchUrl, departmentId, receiver, Number(args.deliveries))).perSecond,
  }
}

async function main() {
  console.log(`# Compares the server as deployed (node dist/server.js, default configuration, LOG_LEVEL=info to a file)
#   at ${args.baseline} (before) with the working tree (after); ${CONNECTIONS} connections, ${DURATION} s per run, ${ROUNDS} rounds.`)
  const apiKey = await prepareDatabase(Number(args.rows))
  const before = buildBaseline(args.baseline!)
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' })
  await mkdir('bench/.results', { recursive: true })
  const port = 32000 + Math.floor(Math.random() * 1000)
  const receiver = await startReceiver(port + 1)
  const results: Record<string, [number[], number[]]> = {}
  try {
    const departmentId = await prepareDepartment(benchUrl, receiver.url, 'pothole')
    const all = Object.fromEntries(Object.entries(scenarios(apiKey, departmentId, receiver)).filter(([name]) => !args.only || name.includes(args.only)))
    for (let round = 0; round < ROUNDS; round++) {
      // Each round swaps which build goes first, so a drift of the machine within a round
      // (a cache warming, another process) does not always favour the same side.
      const sides: [number, string][] = [[0, before], [1, process.cwd()]]
      for (const [side, root] of round % 2 ? sides.reverse() : sides) {
        const server = await startDeployedServer(root, port, `bench/.results/compare-${side ? 'after' : 'before'}.log`)
        try {
          for (const [name, run] of Object.entries(all)) {
            const value = await run(server.base)
            ;(results[name] ??= [[], []])[side]!.push(value)
            console.log(`# round ${round + 1} ${side ? 'after ' : 'before'} ${name}: ${Math.round(value)}`)
          }
        } finally {
          await server.stop()
        }
      }
    }
  } finally {
    receiver.process.kill()
  }
  const rows = Object.entries(results).map(([name, [b, a]]) => {
    const ratios = a.map((value, i) => value / b[i]!)
    const runs = (values: number[]) => values.map((v) => Math.round(v).toLocaleString('en-US')).join(', ')
    return `| ${name} | ${Math.round(median(b)).toLocaleString('en-US')} | ${Math.round(median(a)).toLocaleString('en-US')} | ${median(ratios).toFixed(2)} | before ${runs(b)}; after ${runs(a)} |`
  })
  const table = ['| scenario | before (median) | after (median) | after / before (median of rounds) | runs |', '| --- | ---: | ---: | ---: | --- |', ...rows].join('\n')
  console.log(`\n${table}`)
  await writeFile('bench/.results/compare.json', JSON.stringify({ baseline: args.baseline, connections: CONNECTIONS, duration: DURATION, results }, null, 2))
}

await main()
