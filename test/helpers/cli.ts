/**
 * The CLI run in-process (runCommandLine) against a database the test already holds: a case
 * costs no process and no PGlite start. Output is collected; the exit code is returned.
 */
import { type CommandLineIo, runCommandLine } from '../../src/cli/command-line.js'
import type { AppConfig } from '../../src/config.js'
import type { Database } from '../../src/db/database.js'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** A runner of command lines on `database`; `io` adds to (or replaces) what the CLI is given. */
export function inProcessCli(database: Database, config: AppConfig, io: Partial<CommandLineIo> = {}) {
  return async (...args: string[]): Promise<CliResult> => {
    let stdout = ''
    let stderr = ''
    const code = await runCommandLine(args, {
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
      withDatabase: (work) => work(database, config),
      ...io,
    })
    return { code, stdout, stderr }
  }
}
