#!/usr/bin/env node
/**
 * The operators' CLI: `npm run cli -- <command>` or the package's `open311` bin.
 * Output for people goes to stdout; errors go to stderr with a non-zero exit code.
 */
import '../startup/supported-node.js'
import { runCommandLine } from './command-line.js'

process.exitCode = await runCommandLine(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
})
