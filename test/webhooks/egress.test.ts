/**
 * Outbound URL safety (promises 19 and 20 of docs/webhook-reliability §6): department URLs
 * may not point at loopback, private, link-local, CGNAT, multicast or metadata addresses
 * unless allowlisted; only https (http where configured); no credentials; and the egress
 * agent re-checks the address it actually connects to, so a name that resolves somewhere
 * forbidden is refused even when it was never checked (DNS rebinding).
 *
 * No name here needs a DNS server: only IP literals and `localhost` (resolved from
 * /etc/hosts). All traffic goes to 127.0.0.1.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { Agent, request } from 'undici'
import { departments } from '../../src/db/schema.js'
import {
  assertAddressAllowed,
  assertSafeUrl,
  type EgressPolicy,
  egressAgent,
  parseAllowlist,
  UnsafeDestinationError,
} from '../../src/integrations/webhooks/egress.js'
import { FakeClock, setupHarness } from './fixtures.js'

const strict = (allowHttp = true, allowlist: string[] = []): EgressPolicy => ({ allowlist: parseAllowlist(allowlist), allowHttp })

/** A live local server that counts every request reaching it. */
async function countingServer(t: { teardown(fn: () => unknown): void }) {
  let hits = 0
  const server = createServer((_req, res) => {
    hits += 1
    res.end('reached')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { port: (server.address() as AddressInfo).port, hits: () => hits }
}

t.test('assertSafeUrl refuses private, loopback, link-local, CGNAT, multicast, reserved and metadata destinations', async (t) => {
  const refused: [string, string][] = [
    ['http://127.0.0.1/hook', 'loopback'],
    ['http://127.1/hook', 'loopback, short form'],
    ['http://2130706433/hook', 'loopback as a decimal number'],
    ['http://0x7f.0.0.1/hook', 'loopback in hex'],
    ['http://127.255.255.254:8443/', 'anywhere in 127/8'],
    ['http://10.0.0.1/hook', 'RFC 1918 10/8'],
    ['http://10.255.255.255/', 'RFC 1918 10/8, top'],
    ['http://172.16.0.1/hook', 'RFC 1918 172.16/12'],
    ['http://172.31.255.254/', 'RFC 1918 172.16/12, top'],
    ['http://192.168.1.1/hook', 'RFC 1918 192.168/16'],
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata (link-local)'],
    ['http://169.254.0.1/', 'link-local'],
    ['http://100.64.0.1/hook', 'CGNAT 100.64/10'],
    ['http://100.127.255.254/', 'CGNAT, top'],
    ['http://0.0.0.0/hook', '0.0.0.0'],
    ['http://0.1.2.3/', '0/8'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://239.255.255.250/', 'multicast (SSDP)'],
    ['http://255.255.255.255/', 'broadcast'],
    ['http://[::1]/hook', 'IPv6 loopback'],
    ['http://[::]/hook', 'IPv6 unspecified'],
    ['http://[fc00::1]/hook', 'IPv6 unique-local fc00::/7'],
    ['http://[fd12:3456:789a::1]/', 'IPv6 unique-local fd00::/8'],
    ['http://[fe80::1]/hook', 'IPv6 link-local'],
    ['http://[febf::1]/', 'IPv6 link-local, top of fe80::/10'],
    ['http://[ff02::1]/', 'IPv6 multicast'],
    ['http://[::ffff:127.0.0.1]/', 'IPv4-mapped loopback'],
    ['http://[::ffff:169.254.169.254]/', 'IPv4-mapped metadata'],
    ['http://localhost/hook', 'a hostname resolving to loopback'],
    ['http://LocalHost:8080/hook', 'the same, mixed case with a port'],
  ]
  for (const [url, why] of refused) {
    await t.rejects(assertSafeUrl(url, strict()), { name: 'UnsafeDestinationError', message: /private, loopback, link-local or reserved/ }, `${why}: ${url}`)
  }
  for (const url of ['https://127.0.0.1/', 'https://[::1]:8443/', 'https://169.254.169.254/']) {
    await t.rejects(assertSafeUrl(url, strict(false)), UnsafeDestinationError, `https does not make ${url} safe`)
  }
})

t.test('assertSafeUrl: schemes, credentials, malformed URLs', async (t) => {
  const cases: [string, EgressPolicy, RegExp, string][] = [
    ['ftp://93.184.215.14/hook', strict(), /scheme ftp: is not allowed/, 'ftp://'],
    ['file:///etc/passwd', strict(), /scheme file:/, 'file://'],
    ['gopher://93.184.215.14:70/', strict(), /scheme gopher:/, 'gopher://'],
    ['ws://93.184.215.14/', strict(), /scheme ws:/, 'ws://'],
    ['http://93.184.215.14/hook', strict(false), /scheme http: is not allowed \(use https\)/, 'http:// when allowHttp is false'],
    ['https://user:secret@93.184.215.14/hook', strict(), /credentials/, 'user and password in the URL'],
    ['https://token@93.184.215.14/hook', strict(), /credentials/, 'a user name alone'],
    ['https://:secret@93.184.215.14/hook', strict(), /credentials/, 'a password alone'],
    ['not a url', strict(), /not a URL/, 'not a URL'],
    ['', strict(), /not a URL/, 'empty'],
  ]
  for (const [url, policy, message, why] of cases) {
    await t.rejects(assertSafeUrl(url, policy), { name: 'UnsafeDestinationError', message }, why)
  }
  // Credentials are refused even for an allowlisted destination.
  await t.rejects(assertSafeUrl('http://user:pw@127.0.0.1:9/', strict(true, ['127.0.0.1/32'])), /credentials/)
})

t.test('assertSafeUrl accepts public and allowlisted destinations', async (t) => {
  const accepted: [string, EgressPolicy, string][] = [
    ['https://[2606:4700:4700::1111]/hook', strict(false), 'public IPv6 over https'],
    ['https://[2606:4700:4700::1111]:8443/hook?x=1', strict(false), 'with a port and query'],
    ['http://[2606:4700:4700::1111]/hook', strict(true), 'http when allowHttp'],
    ['https://10.20.3.4/hook', strict(false, ['10.20.0.0/16']), 'an allowlisted on-premises network'],
    ['http://127.0.0.1:8080/hook', strict(true, ['127.0.0.1/32']), 'allowlisted loopback (the test configuration)'],
    ['http://localhost:8080/hook', strict(true, ['127.0.0.1/32']), 'a name resolving into the allowlist'],
    ['https://[fd00:1::5]/hook', strict(false, ['fd00:1::/32']), 'an allowlisted IPv6 ULA network'],
    ['https://169.254.169.254/', strict(false, ['169.254.169.254']), 'a single allowlisted address (no prefix)'],
  ]
  for (const [url, policy, why] of accepted) {
    await t.resolves(assertSafeUrl(url, policy), why)
  }
  // The allowlist opens exactly its networks.
  await t.rejects(assertSafeUrl('https://10.21.0.1/hook', strict(false, ['10.20.0.0/16'])), UnsafeDestinationError, 'a neighbouring network stays closed')
  await t.rejects(assertSafeUrl('http://127.0.0.2/hook', strict(true, ['127.0.0.1/32'])), UnsafeDestinationError, 'only the allowlisted loopback address')
  await t.rejects(assertSafeUrl('https://169.254.169.253/', strict(false, ['169.254.169.254'])), UnsafeDestinationError)
  t.throws(() => parseAllowlist(['example.com/24']), /not an IP network/, 'the allowlist takes networks only')
  t.doesNotThrow(() => assertAddressAllowed('2606:4700:4700::1111', strict()))
  t.throws(() => assertAddressAllowed('10.1.2.3', strict()), UnsafeDestinationError)
})

t.test('public IPv4 addresses are allowed (IPv4-mapped IPv6 is checked against the IPv4 rules)', async (t) => {
  // node:net BlockList checks an IPv4 address against IPv6 rules as its IPv4-mapped form
  // (::ffff:a.b.c.d), so DENIED's `::ffff:0:0/96` entry denies the whole IPv4 Internet. It is
  // also unnecessary: BlockList already checks ::ffff:a.b.c.d against the IPv4 rules.
  for (const address of ['93.184.215.14', '8.8.8.8', '1.1.1.1', '151.101.1.69']) {
    t.doesNotThrow(() => assertAddressAllowed(address, strict()), `connect-time check lets public ${address} through`)
    await t.resolves(assertSafeUrl(`https://${address}/hook`, strict(false)), `https://${address}/hook is accepted`)
  }
  await t.resolves(assertSafeUrl('http://93.184.215.14:8080/hook', strict(true)), 'http to a public IPv4 when allowHttp')
})

// ---------------------------------------------------------------------------------------------
// Through the app: the test configuration allowlists 127.0.0.1/32 and allows http.

const h = await setupHarness(t)
const { app } = h

t.test('registering or changing a department with an unsafe webhook_url → 400 naming webhook_url', async (t) => {
  const unsafe = [
    'http://10.0.0.5/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://172.16.8.8/',
    'http://192.168.0.10/',
    'http://100.64.1.1/',
    'http://0.0.0.0:8080/',
    'http://[::1]/hook',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://127.0.0.2/hook',
    'ftp://127.0.0.1/hook',
    'http://user:pw@127.0.0.1:9/hook',
  ]
  for (const [i, url] of unsafe.entries()) {
    const res = await app.inject({
      method: 'POST',
      url: '/admin/v1/departments',
      headers: h.admin,
      payload: { code: `unsafe-${i}`, name: 'Unsafe', webhook_url: url },
    })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), [{ code: 400, description: /^webhook_url: / }], `the error names webhook_url (${url})`)
  }
  const listed = (await app.inject({ url: '/admin/v1/departments', headers: h.admin })).json() as { code: string }[]
  t.notOk(listed.some((d) => d.code.startsWith('unsafe-')), 'none was created')

  const ok = await h.registerDepartment('safe')
  t.ok(ok.secret, 'an allowlisted URL registers')
  for (const url of ['http://10.0.0.5/hook', 'http://[::1]/', 'http://169.254.169.254/']) {
    const res = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/safe', headers: h.admin, payload: { webhook_url: url } })
    t.equal(res.statusCode, 400)
    t.match(res.json(), [{ description: /^webhook_url: / }])
  }
  t.equal((await h.departmentRow('safe')).webhookUrl, h.receiver.url(ok.hookPath), 'the URL is unchanged')
  await h.retire('safe')
})

t.test('through the admin API, a department whose endpoint has a public IPv4 address can be registered', async (t) => {
  // Only an IP literal: assertSafeUrl resolves nothing and connects nowhere.
  const res = await app.inject({
    method: 'POST',
    url: '/admin/v1/departments',
    headers: h.admin,
    payload: { code: 'public-v4', name: 'Public IPv4', webhook_url: 'https://93.184.215.14/hook' },
  })
  t.equal(res.statusCode, 201, `registered (got ${res.statusCode} ${res.body.slice(0, 200)})`)
  if (res.statusCode === 201) await h.retire('public-v4')
})

t.test('the egress agent refuses at connect time a name that resolves to a denied address, even if never checked', async (t) => {
  const server = await countingServer(t)
  const url = `http://localhost:${server.port}/`

  // Control: without the egress policy the URL does reach the server.
  const plain = new Agent()
  t.teardown(() => plain.close())
  const reached = await request(url, { dispatcher: plain })
  t.equal(reached.statusCode, 200)
  t.equal(await reached.body.text(), 'reached')
  t.equal(server.hits(), 1)

  const guarded = egressAgent(strict(true, []), 2_000)
  t.teardown(() => guarded.close())
  await t.rejects(request(url, { dispatcher: guarded, method: 'POST', body: '{}' }), { name: 'UnsafeDestinationError', message: /127\.0\.0\.1/ }, 'localhost → 127.0.0.1 refused')
  await t.rejects(request(`http://127.0.0.1:${server.port}/`, { dispatcher: guarded }), UnsafeDestinationError, 'an IP literal is checked too')
  t.equal(server.hits(), 1, 'the server saw no request through the guarded agent')

  // The same agent with the address allowlisted connects.
  const allowed = egressAgent(strict(true, ['127.0.0.1/32']), 2_000)
  t.teardown(() => allowed.close())
  const res = await request(url, { dispatcher: allowed })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(server.hits(), 2)
})

t.test('a delivery to a URL that now resolves somewhere forbidden fails at connect and is retried, never sent', async (t) => {
  const dept = await h.registerDepartment('rebind')
  await h.route('sidewalk-damage', 'rebind')
  // As if DNS had answered with a public address at registration: the stored URL was never
  // checked against what it resolves to now (localhost → 127.0.0.1).
  await app.db.update(departments).set({ webhookUrl: `http://localhost:${h.receiver.port}${dept.hookPath}` }).where(eq(departments.code, 'rebind'))
  await h.submit()
  const agent = egressAgent(strict(true, []), 2_000)
  t.teardown(() => agent.close())
  const clock = new FakeClock()
  t.equal(await h.dispatch({ agent, now: clock.now }), 1)
  const [row] = await h.outboxOf('rebind')
  t.match(row, { state: 'pending', attempts: 1, lastStatus: null, lastError: /private, loopback, link-local or reserved/ })
  t.equal(h.receiver.hits(dept.hookPath), 0, 'the receiver saw nothing')

  // With the app's own agent (127.0.0.1 allowlisted) the same row goes out on its retry.
  clock.set(row!.nextAttemptAt)
  t.equal(await h.dispatch({ now: clock.now }), 1)
  t.equal(h.receiver.hits(dept.hookPath), 1)
  t.match((await h.outboxOf('rebind'))[0], { state: 'delivered', attempts: 2 })
  await h.retire('rebind')
})

t.test('only allowlisted ports (OUTBOUND_ALLOWED_PORTS, default 443)', async (t) => {
  // IP literals only: nothing is resolved and nothing is contacted.
  const policy = { allowlist: parseAllowlist([]), allowHttp: false, allowedPorts: [443] }
  await t.resolves(assertSafeUrl('https://93.184.215.14/hook', policy), 'the default https port')
  await t.resolves(assertSafeUrl('https://93.184.215.14:443/hook', policy), 'an explicit 443')
  await t.rejects(assertSafeUrl('https://93.184.215.14:8080/hook', policy), /port 8080 is not allowed/)
  await t.rejects(assertSafeUrl('https://93.184.215.14:22/', policy), /port 22 is not allowed/)
  await t.resolves(assertSafeUrl('https://93.184.215.14:8080/hook', { ...policy, allowedPorts: null }), 'any port when unrestricted')
})
