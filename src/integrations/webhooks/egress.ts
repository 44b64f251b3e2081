/**
 * Outbound URL safety (SSRF): department URLs may not reach loopback, private, link-local,
 * CGNAT, multicast or metadata addresses unless an allowlist in config permits them. The
 * check runs at registration and again at connect time on the address actually dialled, so a
 * DNS answer that changes between the two (rebinding) is caught too.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP } from 'node:net'
import { Agent, buildConnector } from 'undici'

const DENIED = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  DENIED.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  // IPv4-mapped addresses (::ffff:a.b.c.d) need no entry: BlockList checks them against the
  // IPv4 rules above. Translation prefixes could reach private IPv4 space, so they are denied.
  ['64:ff9b::', 96],
  ['2002::', 16],
  ['2001:db8::', 32],
] as const) {
  DENIED.addSubnet(net, prefix, 'ipv6')
}

export interface EgressPolicy {
  /** CIDRs that may be reached even though they are private (on-premises department systems). */
  allowlist: BlockList
  /** Whether plain http:// URLs are allowed (tests, internal networks); https is always allowed. */
  allowHttp: boolean
  /** Ports a URL may name (its scheme's default counts); null allows any. */
  allowedPorts?: number[] | null
}

export function parseAllowlist(cidrs: string[]): BlockList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address, prefixText] = cidr.split('/')
    const family = isIP(address ?? '')
    if (!family) throw new Error(`not an IP network: ${cidr}`)
    const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText)
    list.addSubnet(address!, prefix, family === 4 ? 'ipv4' : 'ipv6')
  }
  return list
}

export class UnsafeDestinationError extends Error {
  override name = 'UnsafeDestinationError'
}

export function assertAddressAllowed(address: string, policy: EgressPolicy) {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
  if (policy.allowlist.check(address, family)) return
  if (DENIED.check(address, family)) {
    throw new UnsafeDestinationError(`${address} is a private, loopback, link-local or reserved address`)
  }
}

/** Checks scheme, credentials and every address the host resolves to. */
export async function assertSafeUrl(url: string, policy: EgressPolicy): Promise<void> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UnsafeDestinationError('not a URL')
  }
  if (parsed.protocol !== 'https:' && !(policy.allowHttp && parsed.protocol === 'http:')) {
    throw new UnsafeDestinationError(`scheme ${parsed.protocol} is not allowed${policy.allowHttp ? '' : ' (use https)'}`)
  }
  if (parsed.username || parsed.password) throw new UnsafeDestinationError('credentials in URLs are not allowed')
  const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80))
  if (policy.allowedPorts && !policy.allowedPorts.includes(port)) {
    throw new UnsafeDestinationError(`port ${port} is not allowed (allowed: ${policy.allowedPorts.join(', ')}; see OUTBOUND_ALLOWED_PORTS)`)
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '')
  const addresses = isIP(host)
    ? [host]
    : await new Promise<string[]>((resolve, reject) =>
        dnsLookup(host, { all: true }, (err, found: LookupAddress[]) =>
          err ? reject(new UnsafeDestinationError(`cannot resolve ${host}: ${err.code}`)) : resolve(found.map((a) => a.address)),
        ),
      )
  for (const address of addresses) assertAddressAllowed(address, policy)
}

/**
 * An undici dispatcher that checks the address each socket actually connected to — IP
 * literals included — and drops the connection when it is denied, whatever DNS said earlier.
 */
export function egressAgent(policy: EgressPolicy, timeoutMs: number): Agent {
  const connectSocket = buildConnector({ timeout: timeoutMs })
  return new Agent({
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect(options, callback) {
      connectSocket(options, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('no socket'), null)
        try {
          assertAddressAllowed(socket.remoteAddress ?? '', policy)
        } catch (unsafe) {
          socket.destroy()
          return callback(unsafe as Error, null)
        }
        callback(null, socket)
      })
    },
  })
}
