/**
 * Opaque keyset cursors for the open-data feeds. A cursor carries the last row's position in
 * the feed's fixed order (its change time in microseconds as text, so no precision is lost through
 * a JS number, and the row id), the consistency horizon the harvest started under (so later
 * pages never go past it), and a hash of the filters: a cursor replayed with other filters
 * would silently skip or repeat rows, so it is refused instead.
 */
import { createHash } from 'node:crypto'
import { invalid } from '../errors.js'

export interface CursorPosition {
  /** The last row's change time (the feed's order), microseconds since the epoch, as decimal text. */
  timeMicros: string
  id: number
  /** The horizon (microseconds, decimal text) the first page was served under. */
  horizonMicros: string
}

/** A stable hash of the filters: key order and list order do not matter. */
export function filterHash(filters: Record<string, string | string[] | undefined>): string {
  // An empty list is no filter, and a value given twice is given once.
  const canonical = Object.keys(filters)
    .map((k) => [k, [...new Set([filters[k] ?? []].flat())].sort()] as const)
    .filter(([, values]) => values.length > 0)
    .sort(([a], [b]) => (a < b ? -1 : 1))
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 16)
}

export function encodeCursor(position: CursorPosition, hash: string): string {
  return Buffer.from(JSON.stringify([position.timeMicros, position.id, position.horizonMicros, hash])).toString('base64url')
}

// At most 16 digits (until about the year 2286) without leading zeros: anything the database
// could not hold as a timestamp is refused here, as a 400, not by the database as a 500.
const MICROS = /^(0|[1-9]\d{0,15})$/

/** Decodes a cursor made for these filters; anything else is a 400 (an `invalid` domain error). */
export function decodeCursor(cursor: string, hash: string): CursorPosition {
  let parts: unknown
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid('cursor: not a cursor this server issued')
  }
  if (!Array.isArray(parts) || parts.length !== 4) throw invalid('cursor: not a cursor this server issued')
  const [timeMicros, id, horizonMicros, cursorHash] = parts as unknown[]
  if (
    typeof timeMicros !== 'string' || !MICROS.test(timeMicros) ||
    typeof horizonMicros !== 'string' || !MICROS.test(horizonMicros) ||
    typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1 ||
    typeof cursorHash !== 'string'
  ) {
    throw invalid('cursor: not a cursor this server issued')
  }
  if (cursorHash !== hash) throw invalid('cursor: it was issued for other filters; start again without a cursor')
  return { timeMicros, id, horizonMicros }
}
