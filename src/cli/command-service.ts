/**
 * The server's side of the CLI on the embedded database (see control-file.ts): a loopback-only
 * HTTP listener that runs a command line as the CLI would, against the database this server
 * already holds, and answers its output and exit code. One request, one command:
 *
 *   POST /commands   Authorization: Bearer <token>   {"argv": ["keys", "list"], "cwd": "/home/me/city"}
 *   → 200 {"code": 0, "stdout": "…", "stderr": ""}
 *
 * `cwd` is where the CLI was started: file arguments (`services import catalog.json`) are read
 * from there. Not part of the public API, so not in openapi/: nothing but the CLI calls it.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isAbsolute } from 'node:path'
import type { AppConfig } from '../config.js'
import type { Database, DatabaseLogger } from '../db/database.js'
import { runCommandLine } from './command-line.js'
import { COMMANDS } from './commands.js'
import { newControlToken, removeControlFile, writeControlFile } from './control-file.js'

/** Far more than any command line; a body past it is refused unread. */
const MAX_BODY_BYTES = 64 * 1024

export interface CommandService {
  close(): Promise<void>
}

export interface CommandServiceOptions {
  config: AppConfig
  database: Database
  logger: DatabaseLogger
}

export async function serveCommands({ config, database, logger }: CommandServiceOptions): Promise<CommandService> {
  const token = newControlToken()
  const expected = digest(`Bearer ${token}`)
  const server = createServer((request, response) => {
    handle(request, response).catch((err: unknown) => {
      logger.error({ err }, 'CLI command through the server failed')
      if (!response.headersSent) answer(response, 500, { error: 'the command failed in the server; see its log' })
    })
  })

  async function handle(request: IncomingMessage, response: ServerResponse) {
    if (request.method !== 'POST' || request.url !== '/commands') return answer(response, 404, { error: 'not found' })
    if (!timingSafeEqual(digest(request.headers.authorization ?? ''), expected)) return answer(response, 401, { error: 'wrong token' })
    const body = await readJson(request)
    const argv = (body as { argv?: unknown })?.argv
    const cwd = (body as { cwd?: unknown })?.cwd
    if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string') || typeof cwd !== 'string' || !isAbsolute(cwd)) {
      return answer(response, 400, { error: 'expected {"argv": [strings], "cwd": "/absolute/path"}' })
    }
    let stdout = ''
    let stderr = ''
    // Which command, never its arguments (names and URLs are the operator's business, not the log's).
    logger.info({ command: knownCommand(argv) }, 'CLI command run by the server for a local operator')
    const code = await runCommandLine(argv, {
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
      withDatabase: (work) => work(database, config),
      cwd,
    })
    answer(response, 200, { code, stdout, stderr })
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: 0, host: '127.0.0.1' }, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  await writeControlFile(config.dataDir, { pid: process.pid, port, token })
  return {
    async close() {
      await removeControlFile(config.dataDir, token)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest()

function answer(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) return null
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return null
  }
}

/** The command's name from the list of commands, or `unknown`: never a word of its arguments (`--name alice keys create`). */
function knownCommand(argv: string[]): string {
  const words = argv.filter((a) => !a.startsWith('-'))
  for (let i = 0; i < words.length; i++) {
    const two = `${words[i]} ${words[i + 1] ?? ''}`
    const found = COMMANDS.find((c) => c.name === two) ?? COMMANDS.find((c) => c.name === words[i])
    if (found) return found.name
  }
  return 'unknown'
}
