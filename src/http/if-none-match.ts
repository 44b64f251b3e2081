/**
 * RFC 9110 §13.1.2 If-None-Match: `*`, or a list of entity tags compared weakly (`W/` ignored on
 * both sides) — the catalog documents and the feed pages carry weak tags, because the same
 * document goes out plain, gzip or brotli.
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '')
  const ours = opaque(etag)
  return header.split(',').some((tag) => opaque(tag) === ours)
}
