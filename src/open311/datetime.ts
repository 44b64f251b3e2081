/**
 * Open311 datetimes. Output: W3C / ISO 8601 at second precision with an explicit offset, in the
 * jurisdiction's time zone (FixMyStreet shifted updates by an hour when a council emitted local
 * time labelled UTC). Input: lenient — fractions, `Z`, `±hh:mm`, `±hhmm`, a space for `T`, and
 * plain dates; a value without a zone is read in the jurisdiction's time zone.
 */

const formatters = new Map<string, Intl.DateTimeFormat>()

function partsIn(timeZone: string, date: Date): Record<string, number> {
  let formatter = formatters.get(timeZone)
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
    formatters.set(timeZone, formatter)
  }
  const parts: Record<string, number> = {}
  for (const part of formatter.formatToParts(date)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value)
  }
  return parts
}

/** Minutes east of UTC that `timeZone` is at instant `date`. */
function offsetMinutes(timeZone: string, date: Date): number {
  const p = partsIn(timeZone, date)
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!)
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60_000)
}

const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, '0')

/**
 * Offsets only change at transitions, which fall on quarter hours: caching the offset per zone
 * and quarter hour turns a thousand-row answer's Intl calls into a handful.
 *
 * Kept fast path (this cache and the cached pieces below): the radius search ran at 1.20× an
 * Intl offset and six Date getters per datetime (3,275 vs 2,619 req/s, median of 7 per-round
 * ratios: `npm run bench:compare -- --baseline fb2c4c2 --rows 20000 --duration 5 --rounds 7
 * --only radius`, fb2c4c2 = formatW3c without caches, 32 connections, session 11;
 * docs/benchmarks.md). Invariant: a zone's offset is constant within a quarter hour (every IANA
 * transition falls on one), and each cache is bounded (cleared past 50,000 entries).
 */
const QUARTER_HOUR_MS = 900_000
const offsetCaches = new Map<string, Map<number, number>>()

function cachedOffsetMinutes(timeZone: string, epochMs: number): number {
  let offsets = offsetCaches.get(timeZone)
  if (!offsets) offsetCaches.set(timeZone, (offsets = new Map()))
  const quarter = Math.floor(epochMs / QUARTER_HOUR_MS)
  let offset = offsets.get(quarter)
  if (offset === undefined) {
    if (offsets.size > 50_000) offsets.clear()
    offset = offsetMinutes(timeZone, new Date(epochMs))
    offsets.set(quarter, offset)
  }
  return offset
}

/**
 * Request lists format three datetimes per row: the text is put together from cached pieces
 * (the local date, the zone suffix, two-digit numbers) instead of six Date getters and padding.
 */
const DAY_MS = 86_400_000
const TWO_DIGITS = Array.from({ length: 60 }, (_, n) => pad(n))
const datePrefixes = new Map<number, string>()
const zoneSuffixes = new Map<number, string>()

function datePrefix(localDay: number): string {
  let prefix = datePrefixes.get(localDay)
  if (prefix === undefined) {
    if (datePrefixes.size > 50_000) datePrefixes.clear()
    const d = new Date(localDay * DAY_MS)
    prefix = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T`
    datePrefixes.set(localDay, prefix)
  }
  return prefix
}

function zoneSuffix(offset: number): string {
  let suffix = zoneSuffixes.get(offset)
  if (suffix === undefined) {
    suffix = `${offset < 0 ? '-' : '+'}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`
    zoneSuffixes.set(offset, suffix)
  }
  return suffix
}

/** An instant as a Date or as epoch milliseconds (how request lists read them, with no Date per row). */
export type Instant = Date | number

export function formatW3c(instant: Instant, timeZone: string): string {
  const epochMs = typeof instant === 'number' ? instant : instant.getTime()
  const offset = cachedOffsetMinutes(timeZone, epochMs)
  const localSeconds = Math.floor(epochMs / 1000) + offset * 60
  const localDay = Math.floor(localSeconds / 86_400)
  const secondOfDay = localSeconds - localDay * 86_400
  const zone = timeZone === 'UTC' || timeZone === 'Etc/UTC' ? 'Z' : zoneSuffix(offset)
  return (
    datePrefix(localDay) +
    TWO_DIGITS[Math.floor(secondOfDay / 3600)] +
    ':' +
    TWO_DIGITS[Math.floor(secondOfDay / 60) % 60] +
    ':' +
    TWO_DIGITS[secondOfDay % 60] +
    zone
  )
}

export const formatOptionalW3c = (instant: Instant | null | undefined, timeZone: string): string | null =>
  instant === null || instant === undefined ? null : formatW3c(instant, timeZone)

const INPUT_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

/**
 * How finely a W3C datetime was given, in milliseconds: 1000 for `…T10:00:05Z` (FixMyStreet and
 * most back offices send seconds), 1 for milliseconds or finer, 60 000 without seconds, a day
 * for a date alone. Times are compared at the precision their sender gave: 10:00:05 is not
 * older than 10:00:05.300. Assumes `text` parses (see parseW3c).
 */
export function precisionOfW3c(text: string): number {
  const m = INPUT_PATTERN.exec(text.trim())
  const [, , , , hours, , seconds, fraction] = m ?? []
  if (hours === undefined) return 86_400_000
  if (seconds === undefined) return 60_000
  if (fraction === undefined) return 1_000
  return fraction.length >= 3 ? 1 : 10 ** (3 - fraction.length)
}

/** Parses a lenient W3C datetime; returns null when the text is not one. */
export function parseW3c(text: string, timeZone: string): Date | null {
  const parsed = parseW3cParts(text, timeZone, true)
  return parsed && new Date(parsed.epochMs)
}

/**
 * A W3C datetime as microseconds since the epoch, in decimal text: the open-data feeds' times
 * carry microseconds, and a harvester's `updated_after` must come back exactly (a JS Date would
 * round it to milliseconds). Digits beyond microseconds are dropped.
 */
export function parseW3cMicros(text: string, timeZone: string): string | null {
  const parsed = parseW3cParts(text, timeZone, false)
  if (!parsed) return null
  return (BigInt(parsed.epochMs) * 1000n + BigInt(parsed.fraction.padEnd(6, '0').slice(0, 6))).toString()
}

/** The instant in whole-second milliseconds (or rounded to the millisecond) and the fraction's digits. */
function parseW3cParts(text: string, timeZone: string, roundToMs: boolean): { epochMs: number; fraction: string } | null {
  const m = INPUT_PATTERN.exec(text.trim())
  if (!m) return null
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '0', zone] = m
  const fields = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)] as const
  if (fields[1] < 1 || fields[1] > 12 || fields[2] < 1 || fields[2] > 31 || fields[3] > 23 || fields[4] > 59 || fields[5] > 60) {
    return null
  }
  const ms = roundToMs ? Math.round(Number(`0.${fraction}`) * 1000) : 0
  const wallClockAsUtc = Date.UTC(fields[0], fields[1] - 1, fields[2], fields[3], fields[4], fields[5], ms)
  const check = new Date(wallClockAsUtc)
  if (check.getUTCDate() !== fields[2]) return null // 2024-02-31 and the like
  if (zone) {
    if (zone === 'Z' || zone === 'z') return { epochMs: wallClockAsUtc, fraction }
    const sign = zone.startsWith('-') ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    const offset = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'))
    return { epochMs: wallClockAsUtc - offset * 60_000, fraction }
  }
  // No zone: the wall-clock time in the jurisdiction. Two passes settle DST transitions.
  let guess = wallClockAsUtc - offsetMinutes(timeZone, new Date(wallClockAsUtc)) * 60_000
  guess = wallClockAsUtc - offsetMinutes(timeZone, new Date(guess)) * 60_000
  return { epochMs: guess, fraction }
}
