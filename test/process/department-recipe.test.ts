/**
 * The department guide's local-test recipe, run as written (scripts/try-department-integration.sh):
 * a real server on the embedded database, a real receiver, a signed delivery and a signed
 * callback. It runs the same way on both CI passes: the recipe is for a newcomer's machine,
 * which has no DATABASE_URL.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createEmbeddedDataDir } from '../helpers/database.js'
import { childEnv, pickPort, ROOT } from '../helpers/process.js'
import { prepareEmbeddedTemplate } from '../helpers/template.js'

// Two embedded processes (the CLI, then the server) on a loaded machine.
t.setTimeout(480_000)

t.test('scripts/try-department-integration.sh succeeds from an empty machine state', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'open311-recipe-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  // Pre-loaded from the migrated template (no demo, no keys), so the run skips PostGIS set-up.
  // On the PostgreSQL pass the run's set-up made no embedded template: make (or reuse) it here.
  await prepareEmbeddedTemplate()
  await createEmbeddedDataDir(join(tmp, 'data'))
  const env = childEnv({ DATA_DIR: join(tmp, 'data'), PORT: String(await pickPort()), RECEIVER_PORT: String(await pickPort()) })
  const child = spawn('bash', ['scripts/try-department-integration.sh'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c))
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c))
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  t.equal(code, 0, `the recipe exits 0; its output:\n${output}`)
  t.match(output, /work order WO-\d+; webhook-signature v1,/, 'the department received a signed work_order.created')
  t.match(output, /"applied":true/, 'the signed callback was applied')
  t.match(output, /"status_notes":"Crew on site"/, 'and the public status shows its note')
  t.match(output, /department integration: OK/)
})
