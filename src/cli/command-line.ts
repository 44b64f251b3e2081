/**
 * The CLI without the process around it: parses a command line, runs the command, and answers
 * an exit code. `main.ts` wires it to argv, stdout/stderr and the configured database; tests call
 * it in-process with a database they already hold, so a case costs no process or PGlite start,
 * and so does a running server for a CLI process on its embedded database (command-service.ts).
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config.js'
import { describeStartupError } from '../startup-errors.js'
import { COMMANDS, type CommandContext, UsageError, openConfiguredDatabase, usage } from './commands.js'
import { runInRunningServer } from './running-server.js'

export interface CommandLineIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  /**
   * How commands reach the database. Default: the one the environment configures, opened
   * around each command — or, on the embedded database while a server holds it, that server,
   * which runs the whole command line.
   */
  withDatabase?: CommandContext['withDatabase']
  /** Where file arguments are read from (default: this process's working directory). */
  cwd?: string
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        channel: { type: 'string' },
        'jurisdiction-id': { type: 'string' },
        json: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        code: { type: 'string' },
        'webhook-url': { type: 'string' },
        'receives-contact': { type: 'boolean', default: false },
        'overlap-hours': { type: 'string' },
        department: { type: 'string', multiple: true },
        file: { type: 'string' },
        event: { type: 'string' },
        'failed-since': { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        yes: { type: 'boolean', short: 'y', default: false },
        'dry-run': { type: 'boolean', default: false },
      },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** The command a command line names; a usage error naming what was typed when none matches. */
function findCommand(positionals: string[]) {
  const commandName = positionals.slice(0, 2).join(' ')
  const command = COMMANDS.find((c) => c.name === commandName) ?? COMMANDS.find((c) => c.name === positionals[0])
  if (command) return command
  const group = COMMANDS.filter((c) => c.name.startsWith(`${positionals[0]} `)).map((c) => c.name)
  if (group.length) throw new UsageError(`"${commandName}" is not a command; ${positionals[0]} takes one of: ${group.map((n) => n.split(' ')[1]).join(', ')}`)
  throw new UsageError(`unknown command "${positionals[0]}"`)
}

async function dispatch(argv: string[], io: CommandLineIo): Promise<number> {
  const { positionals, values } = parseCommandLine(argv)
  if (values.help || positionals.length === 0) {
    io.stdout(usage())
    return values.help ? 0 : 2
  }
  const command = findCommand(positionals)
  const cwd = io.cwd ?? process.cwd()
  // The configuration is read only by commands that open the database, so a bad variable
  // never stops `openapi` or a usage error.
  if (command.usesDatabase !== false && !io.withDatabase) {
    const config = loadConfig()
    const remote = config.databaseUrl ? null : await runInRunningServer(config.dataDir, argv, cwd)
    if (remote) {
      io.stdout(remote.stdout)
      io.stderr(remote.stderr)
      return remote.code
    }
  }
  const context: CommandContext = {
    args: positionals.slice(command.name.split(' ').length),
    options: values,
    withDatabase: io.withDatabase ?? ((work) => openConfiguredDatabase(loadConfig(), work)),
    out: (line) => io.stdout(`${line}\n`),
    path: (file) => resolve(cwd, file),
  }
  await command.run(context)
  return 0
}

/** Runs one command line; usage errors exit 2, every other failure 1, with one line on stderr. */
export async function runCommandLine(argv: string[], io: CommandLineIo): Promise<number> {
  try {
    return await dispatch(argv, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${usage()}`)
      return 2
    }
    const message = err instanceof ConfigError ? err.message : describeStartupError(err)
    io.stderr(`error: ${message}\n`)
    return 1
  }
}
