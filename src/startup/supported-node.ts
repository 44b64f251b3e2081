/**
 * The Node.js versions this server runs on, checked before anything else loads: both entry
 * points (src/server.ts, src/cli/main.ts) import this module first, and ES modules evaluate
 * their imports in order, so an old Node stops here with one clear line instead of a
 * stack trace from deep inside a dependency.
 *
 * Why these versions: content-disposition 3 (through @fastify/static, which serves /docs) and
 * cookie 2 (through light-my-request, which Fastify loads) are ES modules that CommonJS code
 * `require()`s. Node loads ES modules with require() without a flag from 20.19 and 22.12;
 * 21 never did. Both packages declare `node >= 22` (npm warns about that on Node 20: the
 * suite runs on 20.20, so the warning is about their support policy, not what they use).
 * The range is package.json's `engines`; keep the two in step.
 */
export const SUPPORTED_NODE = '^20.19.0 || >=22.12.0'

/** Why `version` (as in process.versions.node) cannot run the server, or null when it can. */
export function unsupportedNodeMessage(version: string): string | null {
  const [major = 0, minor = 0] = version.split('.').map(Number)
  const supported = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23
  if (supported) return null
  return (
    `open311-server needs Node.js 20.19 or later on 20, or 22.12 or later (this is Node.js ${version}): ` +
    'its dependencies load ES modules with require(), which older versions cannot. Install Node.js 22 or 24 (LTS).'
  )
}

const message = unsupportedNodeMessage(process.versions.node)
if (message) {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}
