/**
 * A dispatcher in its own process, for delivery.test.ts's "concurrent workers" test on
 * PostgreSQL: opens the database at DATABASE_URL, says `ready`, waits for `go` on stdin (so
 * every worker starts at the same moment), then runs deliverDue until a round claims nothing,
 * and prints `{"claimed":…,"rounds":…}`.
 */
import { createInterface } from 'node:readline'
import { openDatabase } from '../../src/db/database.js'
import { deliverDue } from '../../src/workers/department-deliveries.js'
import { egressAgent, parseAllowlist } from '../../src/integrations/webhooks/egress.js'
import { SecretBox } from '../../src/integrations/webhooks/secret-box.js'

const env = (name: string) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}

const quiet = { warn: () => {}, info: () => {}, error: (...args: unknown[]) => console.error(...args) }
const database = await openDatabase({ databaseUrl: env('DATABASE_URL'), logger: quiet, poolSize: 2 })
const agent = egressAgent({ allowlist: parseAllowlist(['127.0.0.1/32']), allowHttp: true }, 10_000)
const secretBox = new SecretBox(Buffer.from(env('SECRETS_KEY'), 'base64'))
const workerId = env('WORKER_ID')
const batchSize = Number(env('BATCH_SIZE'))

const lines = createInterface({ input: process.stdin })
process.stdout.write('ready\n')
await new Promise<void>((resolve) => lines.on('line', (line) => line.trim() === 'go' && resolve()))
lines.close()

let claimed = 0
let rounds = 0
for (;;) {
  const n = await deliverDue({ db: database.db, secretBox, agent, workerId, timeoutMs: 10_000, disableAfterDays: 5, batchSize })
  if (n === 0) break
  claimed += n
  rounds += 1
}
process.stdout.write(`${JSON.stringify({ workerId, claimed, rounds })}\n`)
await agent.close()
await database.close()
