/**
 * Text PostgreSQL cannot store, or that arrived broken, is refused before it reaches the
 * database: a NUL (PostgreSQL's text types reject U+0000), an unpaired surrogate (it has no
 * UTF-8 form, so the driver would silently turn it into U+FFFD), and U+FFFD itself — the
 * replacement character is what every decoder on the way in (query strings, form bodies,
 * multipart, JSON) makes of an invalid UTF-8 sequence, so refusing it is how invalid UTF-8 is
 * refused whatever the framing. A genuine report has no use for U+FFFD.
 */

/** One character that may be unsafe: a single test per string on the common, clean path. */
const SUSPECT = /[\u0000\uD800-\uDFFF\uFFFD]/
/** A high surrogate not followed by a low one, or a low one not preceded by a high one (code units: no `u` flag). */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

export type TextProblem = 'NUL' | 'invalid UTF-8' | 'unpaired surrogate'

export function textProblem(text: string): TextProblem | undefined {
  if (!SUSPECT.test(text)) return undefined
  if (text.includes('\u0000')) return 'NUL'
  if (text.includes('\uFFFD')) return 'invalid UTF-8'
  if (UNPAIRED_SURROGATE.test(text)) return 'unpaired surrogate'
  return undefined
}

export interface UnsafeText {
  /** Where it is: a field name (`description`, `attribute[size]`) or a path (`services[3].service_name`). */
  path: string
  problem: TextProblem
}

const DESCRIPTIONS: Record<TextProblem, string> = {
  NUL: 'must not contain NUL characters (U+0000)',
  'invalid UTF-8': 'is not valid UTF-8 (U+FFFD, the replacement character, is refused too)',
  'unpaired surrogate': 'must not contain unpaired surrogates (text must be valid Unicode)',
}

export const unsafeTextRule = (problem: TextProblem): string => DESCRIPTIONS[problem]

export function describeUnsafeText(found: UnsafeText): string {
  return `${found.path || 'value'}: ${unsafeTextRule(found.problem)}`
}

/**
 * The first string (value or object key) in `value` that textProblem refuses. Iterative, so a
 * deeply nested JSON body cannot exhaust the stack.
 */
export function findUnsafeText(value: unknown, root = ''): UnsafeText | undefined {
  return findUnsafeTexts(value, root, 1)[0]
}

/** Up to `limit` of them, in document order (a catalog file reports them all at once). */
export function findUnsafeTexts(value: unknown, root = '', limit = Number.POSITIVE_INFINITY): UnsafeText[] {
  const found: UnsafeText[] = []
  const pending: [unknown, string][] = [[value, root]]
  while (pending.length > 0 && found.length < limit) {
    const [current, path] = pending.pop()!
    if (typeof current === 'string') {
      const problem = textProblem(current)
      if (problem) found.push({ path, problem })
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) pending.push([current[i], `${path}[${i}]`])
    } else if (current !== null && typeof current === 'object' && !Buffer.isBuffer(current)) {
      const keys = Object.keys(current)
      const children: [unknown, string][] = []
      for (const key of keys) {
        const child = path ? `${path}.${key}` : key
        const problem = textProblem(key)
        // A refused key hides its value: the key is what must change.
        if (problem) found.push({ path: child, problem })
        else children.push([(current as Record<string, unknown>)[key], child])
        if (found.length >= limit) break
      }
      for (let i = children.length - 1; i >= 0; i--) pending.push(children[i]!)
    }
  }
  return found
}
