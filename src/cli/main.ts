#!/usr/bin/env node
/**
 * The operators' CLI: `npm run cli -- <command>` or the package's `open311` bin.
 * Output for people goes to stdout; errors go to stderr with a non-zero exit code.
 */
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config.js'
import { describeStartupError } from '../startup-errors.js'
import { COMMANDS, type CommandContext, UsageError, usage } from './commands.js'

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
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
      },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseCommandLine(argv)
  const commandName = positionals.slice(0, 2).join(' ')
  const command = COMMANDS.find((c) => c.name === commandName) ?? COMMANDS.find((c) => c.name === positionals[0])
  if (values.help || !command) {
    process.stdout.write(usage())
    return values.help ? 0 : 2
  }
  const args = positionals.slice(command.name.split(' ').length)
  const context: CommandContext = {
    args,
    options: values,
    config: () => loadConfig(),
    out: (line) => process.stdout.write(`${line}\n`),
  }
  await command.run(context)
  return 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n\n${usage()}`)
      process.exitCode = 2
      return
    }
    const message = err instanceof ConfigError ? err.message : describeStartupError(err)
    process.stderr.write(`error: ${message}\n`)
    process.exitCode = 1
  },
)
