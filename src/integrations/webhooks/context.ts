/** What the webhook layer needs from configuration, resolved once per process. */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AppConfig } from '../../config.js'
import type { Agent } from 'undici'
import { assertSafeUrl, type EgressPolicy, egressAgent, parseAllowlist, UnsafeDestinationError } from './egress.js'
import { SecretBox } from './secret-box.js'
import { generateSecret } from './standard-webhooks.js'

export interface WebhookContext {
  /** Null when no key is configured: departments can then not be given secrets. */
  secretBox: SecretBox | null
  egress: EgressPolicy
  /** The only way out to department systems: checks every address it connects to. */
  agent: Agent
  timeoutMs: number
  disableAfterDays: number
  /** Why the egress policy refuses deliveries to `url`, or null when it allows them. */
  refuseWebhookUrl(url: string): Promise<string | null>
  /** A new Standard Webhooks signing secret. */
  newSigningSecret(): string
}

export async function createWebhookContext(config: AppConfig): Promise<WebhookContext> {
  const egress = {
    allowlist: parseAllowlist(config.webhooks.allowlist),
    allowHttp: config.webhooks.allowHttp,
    allowedPorts: config.webhooks.allowedPorts,
  }
  return {
    secretBox: await loadSecretBox(config),
    egress,
    agent: egressAgent(egress, config.webhooks.timeoutMs),
    timeoutMs: config.webhooks.timeoutMs,
    disableAfterDays: config.webhooks.disableAfterDays,
    refuseWebhookUrl: (url) =>
      assertSafeUrl(url, egress).then(
        () => null,
        (err: unknown) => {
          if (err instanceof UnsafeDestinationError) return err.message
          throw err
        },
      ),
    newSigningSecret: generateSecret,
  }
}

/**
 * SECRETS_KEY when set. On the embedded default a key is generated once and kept beside the
 * database (mode 0600), so `npm start` needs no set-up; with DATABASE_URL it must be configured,
 * because several instances must share it.
 */
async function loadSecretBox(config: AppConfig): Promise<SecretBox | null> {
  if (config.secretsKey) return new SecretBox(Buffer.from(config.secretsKey, 'base64'))
  if (config.databaseUrl) return null
  const path = join(config.dataDir, 'secrets.key')
  const existing = await readFile(path, 'utf8').catch(() => null)
  if (existing) return new SecretBox(Buffer.from(existing.trim(), 'base64'))
  await mkdir(config.dataDir, { recursive: true })
  const key = randomBytes(32).toString('base64')
  await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch(async () => undefined)
  return new SecretBox(Buffer.from((await readFile(path, 'utf8')).trim(), 'base64'))
}
