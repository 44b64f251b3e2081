/**
 * Outbound signatures (promises 13, 17, 18 of docs/webhook-reliability §6): every delivery is
 * checked by a verifier written here from the Standard Webhooks spec — not by the code under
 * test — and the project's own `verify` is held to the reference library's test list.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { departmentSecrets } from '../../src/db/schema.js'
import {
  generateSecret,
  sign,
  signatureHeaders,
  verify,
  WebhookVerificationError,
} from '../../src/integrations/webhooks/standard-webhooks.js'
import { FakeClock, HOUR, MINUTE, setupHarness } from './fixtures.js'

// ---------------------------------------------------------------------------------------------
// An independent verifier, straight from the spec: HMAC-SHA256 keyed with the base64-decoded
// part after `whsec_`, over `<id>.<timestamp>.<raw body bytes>`, base64, `v1,` prefixed,
// space-separated list; a 5-minute tolerance both ways.

const TOLERANCE_SECONDS = 5 * 60

function specKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64')
}

function specSignature(secret: string, id: string, timestamp: number | string, raw: Buffer): Buffer {
  return createHmac('sha256', specKey(secret))
    .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'utf8'), raw]))
    .digest()
}

/** Whether `delivery` carries a valid v1 signature made with `secret` and a fresh timestamp. */
function independentlyValid(secret: string, d: { id: string; timestamp: number | string; signature: string; raw: Buffer }, nowSeconds: number): boolean {
  if (!d.id || !/^\d+$/.test(String(d.timestamp))) return false
  if (Math.abs(nowSeconds - Number(d.timestamp)) > TOLERANCE_SECONDS) return false
  const expected = specSignature(secret, d.id, d.timestamp, d.raw)
  return d.signature.split(' ').some((entry) => {
    const comma = entry.indexOf(',')
    if (comma < 0 || entry.slice(0, comma) !== 'v1') return false
    const offered = Buffer.from(entry.slice(comma + 1), 'base64')
    return offered.length === expected.length && timingSafeEqual(offered, expected)
  })
}

const v1Entries = (header: string) => header.split(' ').filter((s) => s.startsWith('v1,'))

function assertWellFormedSignatureHeader(t: Test, header: string, count: number) {
  const entries = header.split(' ')
  t.equal(entries.length, count, `${count} signature(s) in the header`)
  for (const entry of entries) {
    t.match(entry, /^v1,[A-Za-z0-9+/]{43}=$/, 'v1,<base64 of 32 bytes>')
  }
}

// ---------------------------------------------------------------------------------------------

// One database per test file; subtests share it and run in order. Trace-level logging, so the
// secrets-in-logs check covers everything the app could possibly write.
const h = await setupHarness(t, { logLevel: 'trace' })
const { app, receiver } = h
/** Every secret this file ever sees, for the log and storage checks at the end. */
const allSecrets: string[] = []

const signing = await h.registerDepartment('signing')
allSecrets.push(signing.secret)
await h.route('sidewalk-damage', 'signing')

t.test('every delivery verifies independently; webhook-id is stable across retries, webhook-timestamp fresh per attempt', async (t) => {
  let attempt = 0
  receiver.handle(signing.hookPath, (_d, res) => {
    attempt += 1
    if (attempt <= 2) res.writeHead(503).end('busy')
  })
  const requestId = await h.submit()
  const [row] = await h.outboxOf('signing')
  t.ok(row, 'the request wrote an outbox row')

  const clock = new FakeClock()
  const attemptTimes: number[] = []
  for (let i = 0; i < 3; i++) {
    attemptTimes.push(clock.time)
    t.equal(await h.dispatch({ now: clock.now }), 1, `attempt ${i + 1} claimed the event`)
    const [current] = await h.outboxOf('signing')
    if (current!.state === 'pending') clock.set(current!.nextAttemptAt)
  }
  const deliveries = receiver.deliveries(signing.hookPath)
  t.equal(deliveries.length, 3, 'two failures and a success')
  const [final] = await h.outboxOf('signing')
  t.equal(final!.state, 'delivered')

  t.same(new Set(deliveries.map((d) => d.id)), new Set([row!.eventId]), 'webhook-id is the event id on every attempt')
  t.same(
    deliveries.map((d) => d.timestamp),
    attemptTimes.map((ms) => Math.floor(ms / 1000)),
    'webhook-timestamp is the time of each attempt',
  )
  t.ok(deliveries[1]!.timestamp > deliveries[0]!.timestamp && deliveries[2]!.timestamp > deliveries[1]!.timestamp, 'timestamps strictly increase')
  t.not(deliveries[0]!.signature, deliveries[1]!.signature, 'a fresh timestamp means a fresh signature')
  t.equal(new Set(deliveries.map((d) => d.body)).size, 1, 'the body is the same bytes on every attempt')

  for (const [i, d] of deliveries.entries()) {
    t.equal(d.headers['content-type'], 'application/json', `attempt ${i + 1}: JSON body`)
    assertWellFormedSignatureHeader(t, d.signature, 1)
    t.ok(independentlyValid(signing.secret, d, d.timestamp), `attempt ${i + 1} verifies with the spec's algorithm`)
    t.same(verify([signing.secret], d.headers, d.body, d.timestamp), { id: d.id, timestamp: d.timestamp }, `attempt ${i + 1} passes src verify too`)
    // The verifier is not vacuous: each signed part matters.
    t.notOk(independentlyValid(signing.secret, { ...d, raw: Buffer.from(d.body.replace('"', ' "')) }, d.timestamp), 'changed body fails')
    t.notOk(independentlyValid(signing.secret, { ...d, id: `${d.id}x` }, d.timestamp), 'changed id fails')
    t.notOk(independentlyValid(signing.secret, { ...d, timestamp: d.timestamp + 1 }, d.timestamp + 1), 'changed timestamp fails')
    t.notOk(independentlyValid(generateSecret(), d, d.timestamp), 'another secret fails')
    t.notOk(independentlyValid(signing.secret, d, d.timestamp + TOLERANCE_SECONDS + 1), 'stale by more than 5 minutes fails')
  }
  const body = JSON.parse(deliveries[0]!.body)
  t.match(body, { type: 'work_order.created', version: '1.1', timestamp: String, data: { work_order: { id: /^WO-\d+$/, department: 'signing' }, service_request: { service_request_id: requestId } } })
  t.notOk('reporter' in body.data, 'no reporter contact for a department without receives_contact')
})

t.test('rotation: both secrets sign during the overlap, a verifier holding either accepts; afterwards only the new one signs', async (t) => {
  receiver.handle(signing.hookPath, () => {})
  const before = receiver.deliveries(signing.hookPath).length
  const rotated = await app.inject({
    method: 'POST',
    url: '/admin/v1/departments/signing/rotate-secret',
    headers: h.admin,
    payload: { overlap_hours: 2 },
  })
  t.equal(rotated.statusCode, 200)
  const { signing_secret: newSecret, overlap_hours } = rotated.json()
  allSecrets.push(newSecret)
  t.equal(overlap_hours, 2)
  t.match(newSecret, /^whsec_[A-Za-z0-9+/]+=*$/)
  t.not(newSecret, signing.secret, 'a new secret')
  const rotatedAt = Date.now()

  // Inside the overlap: two signatures, old first or new first — either verifier accepts.
  await h.submit()
  const clock = new FakeClock()
  t.ok(clock.time < rotatedAt + 2 * HOUR, 'the clock is inside the overlap')
  t.equal(await h.dispatch({ now: clock.now }), 1)
  clock.set(rotatedAt + 2 * HOUR - 10 * MINUTE)
  await h.submit()
  t.equal(await h.dispatch({ now: clock.now }), 1)
  const during = receiver.deliveries(signing.hookPath).slice(before)
  t.equal(during.length, 2)
  for (const d of during) {
    assertWellFormedSignatureHeader(t, d.signature, 2)
    t.ok(independentlyValid(signing.secret, d, d.timestamp), 'a receiver still holding the old secret accepts')
    t.ok(independentlyValid(newSecret, d, d.timestamp), 'a receiver already holding the new secret accepts')
    t.notOk(independentlyValid(generateSecret(), d, d.timestamp), 'a receiver with an unrelated secret refuses')
    t.doesNotThrow(() => verify([newSecret], d.headers, d.body, d.timestamp), 'src verify with only the new secret')
    t.doesNotThrow(() => verify([signing.secret], d.headers, d.body, d.timestamp), 'src verify with only the old secret')
  }

  // After the overlap: one signature, by the new secret only.
  clock.set(rotatedAt + 2 * HOUR + 5 * MINUTE)
  await h.submit()
  t.equal(await h.dispatch({ now: clock.now }), 1)
  const after = receiver.deliveries(signing.hookPath).slice(before + 2)
  t.equal(after.length, 1)
  assertWellFormedSignatureHeader(t, after[0]!.signature, 1)
  t.ok(independentlyValid(newSecret, after[0]!, after[0]!.timestamp), 'the new secret verifies')
  t.notOk(independentlyValid(signing.secret, after[0]!, after[0]!.timestamp), 'the old secret no longer signs')

  // Rotating with no overlap (after the first overlap ended): the replaced secret stops signing at once.
  const second = await app.inject({ method: 'POST', url: '/admin/v1/departments/signing/rotate-secret', headers: h.admin, payload: { overlap_hours: 0 } })
  t.equal(second.statusCode, 200)
  const newest = second.json().signing_secret as string
  allSecrets.push(newest)
  clock.set(rotatedAt + 2 * HOUR + 10 * MINUTE)
  await h.submit()
  t.equal(await h.dispatch({ now: clock.now }), 1)
  const last = receiver.deliveries(signing.hookPath).at(-1)!
  t.equal(v1Entries(last.signature).length, 1)
  t.ok(independentlyValid(newest, last, last.timestamp))
  t.notOk(independentlyValid(newSecret, last, last.timestamp), 'overlap 0: the previous secret is gone immediately')
})

t.test('verify: the reference library test list', async (t) => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
  const bare = 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
  const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek'
  const payload = '{"test": 2432232314}'
  const now = Math.floor(Date.now() / 1000)
  const signed = (ts = now, body = payload) => ({
    'webhook-id': id,
    'webhook-timestamp': String(ts),
    'webhook-signature': `v1,${specSignature(secret, id, ts, Buffer.from(body)).toString('base64')}`,
  })
  const refuses = (headers: Record<string, string | undefined>, message: RegExp, label: string, body = payload, at = now) =>
    t.throws(() => verify([secret], headers, body, at), { name: 'WebhookVerificationError', message }, label)

  t.test('sign() matches the reference library known answer and the spec algorithm', async (t) => {
    t.equal(sign(secret, id, 1614265330, payload), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=')
    t.equal(sign(secret, id, 1614265330, payload).slice(3), specSignature(secret, id, 1614265330, Buffer.from(payload)).toString('base64'))
    t.equal(sign(bare, id, 1614265330, payload), sign(secret, id, 1614265330, payload), 'whsec_ prefix optional when signing')
    t.same(signatureHeaders([secret, bare], id, 1614265330, payload), {
      'webhook-id': id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    })
  })

  t.test('missing id, timestamp or signature', async (t) => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const headers: Record<string, string | undefined> = signed()
      delete headers[name]
      refuses(headers, /missing/, `without ${name}`)
      refuses({ ...signed(), [name]: '' }, /missing/, `with an empty ${name}`)
    }
  })

  t.test('invalid timestamp', async (t) => {
    for (const bad of ['hello', '1.5', '-5', '0x10', ' 123', '1e9']) {
      refuses({ ...signed(), 'webhook-timestamp': bad }, /invalid webhook-timestamp/, `timestamp ${JSON.stringify(bad)}`)
    }
  })

  t.test('invalid and partial signatures', async (t) => {
    refuses({ ...signed(), 'webhook-signature': 'v1,dawfeoifkpqwoekfpqoekf' }, /no matching signature/, 'invalid signature')
    refuses({ ...signed(), 'webhook-signature': signed()['webhook-signature'].slice(0, 8) }, /no matching signature/, 'partial signature (first 8 characters)')
    refuses({ ...signed(), 'webhook-signature': 'v1,' }, /no matching signature/, 'empty v1 signature')
    const good = signed()['webhook-signature']
    refuses({ ...signed(), 'webhook-signature': good.slice(0, -4) }, /no matching signature/, 'truncated by a few characters')
    refuses({ ...signed(), 'webhook-signature': good.replace('v1,', 'v2,') }, /no matching signature/, 'the right MAC under another version')
    refuses({ ...signed(), 'webhook-signature': good.replace('v1,', 'v1a,') }, /no matching signature/, 'the right MAC labelled v1a')
    refuses(signed(), /no matching signature/, 'a different body', '{"test": 2432232315}')
    refuses(signed(), /no matching signature/, 're-serialised JSON is not the raw body', JSON.stringify(JSON.parse(payload)))
    t.throws(() => verify([generateSecret()], signed(), payload, now), WebhookVerificationError, 'another secret')
  })

  t.test('valid signature', async (t) => {
    t.same(verify([secret], signed(), payload, now), { id, timestamp: now })
    t.same(verify([secret], signed(), payload), { id, timestamp: now }, 'with the real clock as default')
    t.same(verify([secret], signed(now, ''), '', now), { id, timestamp: now }, 'empty payload')
    t.same(verify([generateSecret(), secret], signed(), payload, now), { id, timestamp: now }, 'any of several secrets')
  })

  t.test('timestamps more than 5 minutes old or in the future fail; within 5 minutes pass', async (t) => {
    refuses(signed(now - TOLERANCE_SECONDS - 1), /too old/, 'older than 5 minutes')
    refuses(signed(now + TOLERANCE_SECONDS + 1), /too new/, 'more than 5 minutes ahead')
    refuses(signed(now - 3600), /too old/, 'an hour old')
    t.doesNotThrow(() => verify([secret], signed(now - TOLERANCE_SECONDS), payload, now), 'exactly 5 minutes old')
    t.doesNotThrow(() => verify([secret], signed(now + TOLERANCE_SECONDS), payload, now), 'exactly 5 minutes ahead')
  })

  t.test('multi-signature header', async (t) => {
    const good = signed()['webhook-signature']
    const sigs = ['v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=', 'v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=', good, 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=']
    t.same(verify([secret], { ...signed(), 'webhook-signature': sigs.join(' ') }, payload, now), { id, timestamp: now })
    refuses({ ...signed(), 'webhook-signature': [sigs[0], sigs[1], sigs[3]].join(' ') }, /no matching signature/, 'only wrong ones')
  })

  t.test('whsec_ prefix optional', async (t) => {
    t.same(verify([bare], signed(), payload, now), { id, timestamp: now }, 'without the prefix')
    t.same(verify([secret], signed(), payload, now), { id, timestamp: now }, 'with the prefix')
  })
})

t.test('secrets: ≥24 random bytes, whsec_ when shown, encrypted at rest, never logged', async (t) => {
  receiver.handle(signing.hookPath, () => {})
  const other = await h.registerDepartment('signing-two')
  allSecrets.push(other.secret)
  t.not(other.secret, signing.secret, 'every department gets its own secret')
  for (const secret of allSecrets) {
    t.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/, 'whsec_<base64>')
    const key = specKey(secret)
    t.ok(key.length >= 24 && key.length <= 64, `24–64 bytes (${key.length})`)
    t.equal(Buffer.from(key).toString('base64'), secret.slice(6), 'canonical base64')
  }
  const generated = Array.from({ length: 50 }, () => generateSecret())
  t.equal(new Set(generated).size, 50, 'generateSecret never repeats')

  // At rest: ciphertext only — neither the whsec_ value nor its key bytes appear.
  const rows = await app.db.select().from(departmentSecrets)
  t.ok(rows.length >= allSecrets.length, 'a row per secret (rotations keep the old ones)')
  const stored = JSON.stringify(rows)
  for (const secret of allSecrets) {
    t.notOk(stored.includes(secret), 'no whsec_ value in department_secrets')
    t.notOk(stored.includes(secret.slice(6)), 'no base64 key in department_secrets')
    t.notOk(stored.includes(specKey(secret).toString('hex')), 'no hex key in department_secrets')
  }
  t.notOk(/whsec_/.test(stored), 'no whsec_ anywhere in the table')
  // Encrypted (reversible with SECRETS_KEY), not hashed: HMAC needs the raw secret.
  const opened = rows.map((r) => app.webhooks.secretBox!.open(r.ciphertext))
  for (const secret of allSecrets) t.ok(opened.includes(secret), 'the secret box opens a stored row to the secret')
  const [one] = await app.db.select().from(departmentSecrets).where(eq(departmentSecrets.departmentId, other.id))
  t.not(app.webhooks.secretBox!.seal(other.secret), one!.ciphertext, 'sealing uses a fresh IV')

  // A delivery for the second department too, so the logs cover create, rotate and deliver.
  await h.route('sidewalk-damage', 'signing-two')
  await h.submit()
  t.equal(await h.dispatch({ now: () => new Date() }), 1)
  t.equal(receiver.deliveries(other.hookPath).length, 1)

  const logs = h.rawLogs()
  t.match(logs, /department registered/, 'registrations were logged')
  t.match(logs, /signing secret rotated/, 'rotations were logged')
  t.ok(logs.includes('/admin/v1/departments/signing/rotate-secret'), 'the rotate requests were logged')
  for (const secret of allSecrets) {
    t.notOk(logs.includes(secret), 'the whsec_ secret is not in the logs')
    t.notOk(logs.includes(secret.slice(6)), 'its base64 key is not in the logs')
  }
  t.notOk(logs.includes('whsec_'), 'nothing whsec_-shaped in the logs')
})
