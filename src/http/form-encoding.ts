/**
 * application/x-www-form-urlencoded, for query strings and form bodies alike. Repeated keys
 * become arrays, `+` is a space, a key without `=` has the empty value (as fast-querystring,
 * Fastify's default, does). Unlike the default, a percent-encoded sequence that is not UTF-8
 * (`%C0%AE`, `%ED%A0%80`, `%80`) decodes to U+FFFD instead of being kept as the literal
 * `%C0%AE`, so the input check (src/shared/text-safety.ts) refuses it with a 400 naming the
 * field. A `%` not followed by two hex digits stays literal, as before.
 */

export function parseFormEncoded(text: string): Record<string, string | string[]> {
  // Null prototype: a key named __proto__ or constructor is an ordinary field.
  const fields: Record<string, string | string[]> = Object.create(null)
  if (text.length === 0) return fields
  for (const pair of text.split('&')) {
    if (pair.length === 0) continue
    const eq = pair.indexOf('=')
    const key = decodeFormComponent(eq < 0 ? pair : pair.slice(0, eq))
    const value = eq < 0 ? '' : decodeFormComponent(pair.slice(eq + 1))
    const existing = fields[key]
    if (existing === undefined) fields[key] = value
    else if (Array.isArray(existing)) existing.push(value)
    else fields[key] = [existing, value]
  }
  return fields
}

const HEX_PAIR = /^[0-9A-Fa-f]{2}$/

function decodeFormComponent(raw: string): string {
  const text = raw.includes('+') ? raw.replaceAll('+', ' ') : raw
  if (!text.includes('%')) return text
  try {
    return decodeURIComponent(text)
  } catch {
    return decodeLeniently(text)
  }
}

/** %XX as bytes and everything else as its UTF-8 bytes, decoded once: invalid UTF-8 becomes U+FFFD. */
function decodeLeniently(text: string): string {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3)
    if (text[i] === '%' && HEX_PAIR.test(hex)) {
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else if (text.charCodeAt(i) < 0x80) {
      bytes.push(text.charCodeAt(i))
    } else {
      const codePoint = text.codePointAt(i)!
      if (codePoint > 0xffff) i++
      bytes.push(...Buffer.from(String.fromCodePoint(codePoint), 'utf8'))
    }
  }
  return Buffer.from(bytes).toString('utf8')
}
