/**
 * Helpers for tests that run the real server or CLI as child processes (`node --import tsx …`).
 * Children get a clean environment: none of the app's configuration variables, nor tap's
 * NODE_OPTIONS hooks, leak in from the test runner; each test passes exactly what it means.
 * All HTTP traffic goes to 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

/** The package root: children run with it as their working directory. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * What a child inherits from the runner: enough to run node, nothing that configures the app
 * (so a DATABASE_URL or PORT in the runner's environment cannot leak into a test's child)
 * and not tap's NODE_OPTIONS hooks.
 */
const INHERITED = /^(PATH|HOME|USER|LOGNAME|SHELL|TMPDIR|TEMP|TMP|TZ|LANG|LC_[A-Z]+|NODE_EXTRA_CA_CERTS|SYSTEMROOT|SystemRoot)$/

/** A minimal environment for a child process, plus `env`. */
export function childEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (INHERITED.test(name)) clean[name] = value
  }
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined) clean[name] = value
  }
  return clean
}

export interface RunResult {
  /** Exit code, or null when the process died of a signal (a timeout kills with SIGKILL). */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  durationMs: number
  timedOut: boolean
}

export interface RunOptions {
  env?: Record<string, string | undefined>
  timeoutMs?: number
}

/** Runs `node --import tsx <args>` in the package root and collects its output and exit code. */
export function runNode(args: string[], { env = {}, timeoutMs = 60_000 }: RunOptions = {}): Promise<RunResult> {
  const started = performance.now()
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    // 'close', not 'exit': it fires after the output streams are drained.
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, durationMs: performance.now() - started, timedOut })
    })
  })
}

/** Runs the operators' CLI (`src/cli/main.ts`) with `args`. */
export function runCli(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runNode(['src/cli/main.ts', ...args], options)
}

/** The non-empty lines of a command's output. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '')
}

/** A port in 20000–40000 that 127.0.0.1 could bind a moment ago (the server may still lose a race; see startServer). */
export async function pickPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_001)
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer()
      probe.once('error', () => resolve(false))
      probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)))
    })
    if (free) return port
  }
  throw new Error('no free port found in 20000-40000')
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface ServerOptions {
  env?: Record<string, string | undefined>
  /** How long to wait for GET /open311/v2/services.json to answer 200. */
  readyTimeoutMs?: number
}

export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ServerProcess {
  child: ChildProcess
  pid: number
  port: number
  baseUrl: string
  /** Everything the server wrote to stdout so far (every start attempt, in order: a demo key logged by an attempt that then lost its port still counts). */
  stdout(): string
  /** What the running server wrote to stderr (earlier, failed attempts excluded). */
  stderr(): string
  /** stdout parsed as pino JSON lines; lines that are not JSON are skipped. */
  logs(): Record<string, unknown>[]
  /** Sends `signal` and resolves with the exit status (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus & { killed: boolean }>
  exited: Promise<ExitStatus>
}

const ADDRESS_IN_USE = /already in use|EADDRINUSE/

/**
 * Starts `src/server.ts` on 127.0.0.1 and a random port in 20000–40000, and resolves once
 * GET /open311/v2/services.json answers 200. A start that loses the port to another process
 * (EADDRINUSE) is retried on another port. The child is killed at teardown if still running.
 */
export async function startServer(t: Teardown, { env = {}, readyTimeoutMs = 60_000 }: ServerOptions = {}): Promise<ServerProcess> {
  let stdout = ''
  let stderr = ''
  for (let attempt = 0; ; attempt++) {
    const port = await pickPort()
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: childEnv({ HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env, PORT: String(port) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const attemptStderrStart = stderr.length
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const exited = new Promise<ExitStatus>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
    let running = true
    void exited.then(() => (running = false))
    t.teardown(async () => {
      if (!running) return
      child.kill('SIGKILL')
      await exited
    })

    const baseUrl = `http://127.0.0.1:${port}`
    const ready = await waitUntilReady(baseUrl, exited, readyTimeoutMs)
    if (ready === 'exited') {
      const status = await exited
      if (attempt < 3 && ADDRESS_IN_USE.test(stderr.slice(attemptStderrStart))) continue
      throw new Error(`server exited before it was ready (code ${status.code}, signal ${status.signal}):\n${stderr}\n${stdout}`)
    }
    if (ready === 'timeout') {
      child.kill('SIGKILL')
      await exited
      throw new Error(`server not ready after ${readyTimeoutMs} ms:\n${stderr}\n${stdout}`)
    }

    return {
      child,
      pid: child.pid!,
      port,
      baseUrl,
      stdout: () => stdout,
      stderr: () => stderr.slice(attemptStderrStart),
      logs: () => parseJsonLines(stdout),
      exited,
      async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
        if (running) child.kill(signal)
        let killed = false
        const timer = setTimeout(() => {
          killed = true
          child.kill('SIGKILL')
        }, timeoutMs)
        const status = await exited
        clearTimeout(timer)
        return { ...status, killed }
      },
    }
  }
}

async function waitUntilReady(baseUrl: string, exited: Promise<ExitStatus>, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
  let hasExited = false
  void exited.then(() => (hasExited = true))
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (hasExited) return 'exited'
    try {
      const res = await fetch(`${baseUrl}/open311/v2/services.json`, { signal: AbortSignal.timeout(2_000) })
      await res.arrayBuffer()
      if (res.status === 200) return 'ready'
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  return hasExited ? 'exited' : 'timeout'
}

function parseJsonLines(text: string): Record<string, unknown>[] {
  const parsed: Record<string, unknown>[] = []
  for (const line of lines(text)) {
    try {
      const value: unknown = JSON.parse(line)
      if (value && typeof value === 'object') parsed.push(value as Record<string, unknown>)
    } catch {
      // Not a log line.
    }
  }
  return parsed
}
