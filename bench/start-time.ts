/**
 * Start time (issue 17): from spawning the command until GET /open311/v2/services.json answers
 * 200, on the embedded default with the default configuration (only PORT, HOST and DATA_DIR
 * set), as a newcomer starts it:
 *
 *   cold  an empty DATA_DIR: PGlite creates the cluster, migrations set up PostGIS and the
 *         schema, the demo city is seeded;
 *   warm  the same DATA_DIR again, after a clean stop;
 *
 * each as `npm start` and as `node dist/server.js` (the bench builds dist/ first). The four are
 * measured in alternation, `rounds` times, so drift on a shared machine spreads over all of
 * them; each is reported by its median, with its phases (what the server's progress lines say
 * each took) and the CPU seconds its processes used until then (npm's included): on a shared
 * machine the wall time measures the neighbours too, the CPU time much less so.
 *
 *   npm run bench -- --only start [--start-rounds 5]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { clean, median } from './setup.js'

export interface StartFigure {
  scenario: string
  reqPerSec: number
  p50: number
  p99: number
  note?: string
}

const COMMANDS = {
  'npm start': ['npm', 'start'],
  'node dist/server.js': ['node', 'dist/server.js'],
} as const
type Command = keyof typeof COMMANDS

interface Run {
  /** ms from spawn until services.json answered. */
  ms: number
  /** CPU seconds (user + system) of the command's processes by then. */
  cpu: number
  /** Seconds the server's progress lines give each phase; `load` = before the first line (process, modules). */
  phases: Record<string, number>
}

/** One start of `command` on `dataDir`, timed until services.json answers, then a clean stop. */
async function timeStart(command: Command, dataDir: string, port: number): Promise<Run> {
  const [bin, ...args] = COMMANDS[command]
  const started = performance.now()
  // Its own process group: npm's child (node) stops with it.
  const child = spawn(bin, args, {
    env: { ...clean(process.env), PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  })
  let stderr = ''
  const firstLine: { at?: number } = {}
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    firstLine.at ??= performance.now()
    stderr += chunk
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let gone = false
  void exited.then(() => (gone = true))
  try {
    for (;;) {
      if (gone) throw new Error(`${command} exited before it answered:\n${stderr}`)
      if (performance.now() - started > 180_000) throw new Error(`${command} did not answer within 180 s:\n${stderr}`)
      const ok = await fetch(`http://127.0.0.1:${port}/open311/v2/services.json`, { signal: AbortSignal.timeout(2_000) })
        .then(async (res) => (await res.arrayBuffer(), res.status === 200))
        .catch(() => false)
      if (ok) break
      await sleep(50)
    }
    const ms = performance.now() - started
    return { ms, cpu: await groupCpuSeconds(child.pid!), phases: phasesOf(stderr, ((firstLine.at ?? started) - started) / 1000) }
  } finally {
    await stop(child, exited)
  }
}

/** The /proc/<pid>/stat fields, after the command name, of the live processes in process group `pgid` (Linux). */
async function groupProcesses(pgid: number): Promise<string[][]> {
  const found: string[][] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // The command name may hold spaces, inside parentheses: the fields start after it (state first).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) === pgid) found.push(fields)
  }
  return found
}

/** User + system CPU seconds of the live processes in group `pgid` (clock ticks at 100 Hz). */
async function groupCpuSeconds(pgid: number): Promise<number> {
  const processes = await groupProcesses(pgid)
  return processes.reduce((sum, fields) => sum + Number(fields[11]) + Number(fields[12]), 0) / 100
}

async function stop(child: ChildProcess, exited: Promise<void>) {
  try {
    process.kill(-child.pid!, 'SIGTERM')
  } catch {
    return
  }
  const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000)
  await exited
  // npm can exit before the server under it has closed: the next start would find it still
  // answering on the port (and fail itself on the busy port). Wait for the whole group.
  while ((await groupProcesses(child.pid!)).length > 0) await sleep(50)
  clearTimeout(killer)
}

/** The phases' seconds from the progress lines ("embedded database open (6.1 s)", "database ready (3.2 s)"). */
function phasesOf(stderr: string, loadSeconds: number): Record<string, number> {
  const seconds = (pattern: RegExp) => Number(pattern.exec(stderr)?.[1] ?? Number.NaN)
  return {
    load: loadSeconds,
    open: seconds(/embedded database open \((\d+\.\d) s\)/),
    migrate: seconds(/database ready \((\d+\.\d) s\)/),
    ready: seconds(/ready in (\d+\.\d) s/),
  }
}

export async function benchStartTime({ rounds, port, report }: { rounds: number; port: number; report: (figure: StartFigure) => void }) {
  const runs = new Map<string, Run[]>()
  const record = (scenario: string, run: Run) => {
    runs.set(scenario, [...(runs.get(scenario) ?? []), run])
    console.log(`# ${scenario}: ${(run.ms / 1000).toFixed(2)} s, ${run.cpu.toFixed(1)} s CPU (${JSON.stringify(run.phases)})`)
  }
  const root = await mkdtemp(join(tmpdir(), 'open311-bench-start-'))
  try {
    for (let round = 0; round < rounds; round++) {
      for (const command of Object.keys(COMMANDS) as Command[]) {
        const dataDir = join(root, `${round}-${command.replace(/\W+/g, '-')}`)
        record(`start: ${command}, cold (empty DATA_DIR)`, await timeStart(command, dataDir, port))
        record(`start: ${command}, warm`, await timeStart(command, dataDir, port))
        await rm(dataDir, { recursive: true, force: true })
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
  for (const [scenario, list] of runs) {
    const ms = list.map((r) => r.ms)
    const phase = (name: string) => median(list.map((r) => r.phases[name]!)).toFixed(1)
    report({
      scenario: `${scenario} → services.json answers`,
      reqPerSec: Number.NaN,
      p50: Math.round(median(ms)),
      p99: Math.round(Math.max(...ms)),
      note:
        `p50 = median, p99 = slowest of ${list.length}; runs ${ms.map((v) => (v / 1000).toFixed(1)).join(', ')} s; ` +
        `CPU ${list.map((r) => r.cpu.toFixed(1)).join(', ')} s (median ${median(list.map((r) => r.cpu)).toFixed(1)}); ` +
        `median phases: first line ${phase('load')} s, database open ${phase('open')} s, migrations ${phase('migrate')} s, ready at ${phase('ready')} s of the server process`,
    })
  }
}
