/**
 * Open311 datetimes against an independent reference: Intl's own rendering of each instant in
 * each zone. formatW3c builds its text from cached pieces, so every piece is checked here —
 * zones west and east of UTC, half- and quarter-hour offsets, both sides of DST transitions,
 * midnight, and instants before 1970.
 */
import t from 'tap'
import { formatOptionalW3c, formatW3c, parseW3c } from '../../src/open311/datetime.js'

function reference(date: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'longOffset',
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  )
  const offset = parts.timeZoneName === 'GMT' ? '+00:00' : parts.timeZoneName!.slice(3)
  const zone = timeZone === 'UTC' ? 'Z' : offset
  return `${parts.year!.padStart(4, '0')}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${zone}`
}

const ZONES = ['America/Chicago', 'America/St_Johns', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Europe/London', 'UTC']

t.test('formatW3c matches Intl for random instants in every kind of zone', async (t) => {
  let seed = 20261123
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const from = Date.UTC(1960, 0, 1)
  const to = Date.UTC(2040, 0, 1)
  let mismatches = 0
  for (const zone of ZONES) {
    for (let i = 0; i < 2000; i++) {
      const date = new Date(from + Math.floor(random() * (to - from)))
      const expected = reference(date, zone)
      // Request lists pass epoch milliseconds, everything else a Date: both must read alike.
      // Lists' numbers carry PostgreSQL's microseconds as a fraction of a millisecond.
      const epochMs = date.getTime() + 0.999
      if (formatW3c(date, zone) !== expected || formatW3c(epochMs, zone) !== expected) {
        mismatches++
        t.equal(formatW3c(date, zone), expected, `${zone} ${date.toISOString()}`)
        t.equal(formatW3c(epochMs, zone), expected, `${zone} ${date.toISOString()} as epoch milliseconds`)
      }
    }
  }
  t.equal(mismatches, 0, `${ZONES.length * 2000} instants agree, as Dates and as epoch milliseconds`)
})

t.test('formatOptionalW3c: null and undefined are absent; the instant 0 is 1970, not absent', async (t) => {
  t.equal(formatOptionalW3c(null, 'UTC'), null)
  t.equal(formatOptionalW3c(undefined, 'America/Chicago'), null)
  t.equal(formatOptionalW3c(0, 'UTC'), '1970-01-01T00:00:00Z')
  t.equal(formatOptionalW3c(0, 'America/Chicago'), '1969-12-31T18:00:00-06:00')
  t.equal(formatOptionalW3c(new Date(0), 'UTC'), '1970-01-01T00:00:00Z')
})

t.test('formatW3c across DST transitions, midnight and fractions of a second', async (t) => {
  const cases: [string, string, string][] = [
    ['2026-03-08T07:59:59.999Z', 'America/Chicago', '2026-03-08T01:59:59-06:00'],
    ['2026-03-08T08:00:00.000Z', 'America/Chicago', '2026-03-08T03:00:00-05:00'],
    ['2026-11-01T06:59:59Z', 'America/Chicago', '2026-11-01T01:59:59-05:00'],
    ['2026-11-01T07:00:00Z', 'America/Chicago', '2026-11-01T01:00:00-06:00'],
    ['2026-04-04T15:00:00Z', 'Australia/Lord_Howe', '2026-04-05T01:30:00+10:30'],
    ['2026-06-30T18:29:59.500Z', 'Asia/Kolkata', '2026-06-30T23:59:59+05:30'],
    ['2026-06-30T18:30:00Z', 'Asia/Kolkata', '2026-07-01T00:00:00+05:30'],
    ['1969-12-31T23:59:59.900Z', 'UTC', '1969-12-31T23:59:59Z'],
    ['1965-01-01T12:00:00Z', 'America/St_Johns', '1965-01-01T08:30:00-03:30'],
  ]
  for (const [instant, zone, expected] of cases) {
    t.equal(formatW3c(new Date(instant), zone), expected, `${instant} in ${zone}`)
    t.equal(formatW3c(new Date(instant), zone), reference(new Date(instant), zone), 'as Intl renders it')
  }
})

t.test('parseW3c reads what formatW3c writes, to the second', async (t) => {
  for (const zone of ZONES) {
    for (const instant of ['2026-03-08T07:59:59Z', '2026-11-01T06:30:00Z', '1999-12-31T23:59:59Z', '2031-07-15T12:00:00Z']) {
      const date = new Date(instant)
      t.equal(parseW3c(formatW3c(date, zone), 'America/Chicago')?.toISOString(), date.toISOString(), `${instant} via ${zone}`)
    }
  }
})
