/**
 * Standard Webhooks v1 (symmetric): `webhook-signature: v1,<base64 HMAC-SHA256>` over
 * `<webhook-id>.<webhook-timestamp>.<raw body>`, secrets serialised as `whsec_<base64>`.
 * Used both to sign what we send to departments and to verify what they send us.
 *
 * Not the `standardwebhooks` package (1.1.1): its verify reads `Date.now()` itself, so a delivery
 * cannot be checked at a given time as the tests' fake clocks need, and it reads the timestamp with
 * `parseInt`, so a current time followed by `.5`, `e3` or any text passes where the spec's integer
 * seconds (and our tests) refuse it; its errors' messages also differ from the ones tests match.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export const SECRET_PREFIX = 'whsec_'
export const SECRET_BYTES = 32
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60

export function generateSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`
}

function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64')
}

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

/** The three headers of a signed delivery; several secrets sign at once during a rotation. */
export function signatureHeaders(secrets: string[], id: string, timestamp: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => sign(s, id, timestamp, body)).join(' '),
  }
}

export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError'
}

/**
 * Verifies a delivery against any of `secrets`: headers present, timestamp within the
 * tolerance in both directions, and one `v1` signature matching in constant time.
 */
export function verify(
  secrets: string[],
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): { id: string; timestamp: number } {
  const header = (name: string) => {
    const value = headers[name]
    return Array.isArray(value) ? value[0] : value
  }
  const id = header('webhook-id')
  const timestampText = header('webhook-timestamp')
  const signatures = header('webhook-signature')
  if (!id || !timestampText || !signatures) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature header')
  if (!/^\d{1,12}$/.test(timestampText)) throw new WebhookVerificationError('invalid webhook-timestamp')
  const timestamp = Number(timestampText)
  if (nowSeconds - timestamp > TIMESTAMP_TOLERANCE_SECONDS) throw new WebhookVerificationError('message timestamp too old')
  if (timestamp - nowSeconds > TIMESTAMP_TOLERANCE_SECONDS) throw new WebhookVerificationError('message timestamp too new')
  const offered = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'))
  for (const secret of secrets) {
    const expected = Buffer.from(sign(secret, id, timestamp, rawBody).slice(3), 'base64')
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) return { id, timestamp }
  }
  throw new WebhookVerificationError('no matching signature')
}
