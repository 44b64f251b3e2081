/**
 * When to try a failed delivery again. The schedule is the Standard Webhooks example
 * (immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h): ten attempts over
 * about 75½ hours, so a department system down over a long weekend still gets every event.
 */
export const RETRY_DELAYS_MS = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  14 * 3_600_000,
  20 * 3_600_000,
  24 * 3_600_000,
]
/** The first attempt plus one per retry delay. */
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1
/**
 * No delivery is dead-lettered sooner than this after it was first due, whatever the jitter
 * drew: with every delay drawn 20% short the schedule alone would end after about 60 hours.
 */
export const MIN_RETRY_HORIZON_MS = 72 * 3_600_000
export const JITTER = 0.2
/** Throttling answers (429) and timeouts never retry sooner than this. */
export const MIN_THROTTLED_DELAY_MS = 60_000

/**
 * The delay before attempt `attempts + 1`, after `attempts` failures: the schedule's entry
 * with ±20% jitter; a Retry-After may push it later, but no further than twice the schedule.
 */
export function retryDelayMs(
  attempts: number,
  options: { retryAfterMs?: number | null; throttled?: boolean; random?: () => number; elapsedMs?: number } = {},
): number | null {
  if (attempts >= MAX_ATTEMPTS) {
    const remaining = MIN_RETRY_HORIZON_MS - (options.elapsedMs ?? MIN_RETRY_HORIZON_MS)
    // Attempts used up early (short jitter draws): one more attempt once the horizon is reached.
    return remaining > 0 ? remaining : null
  }
  const scheduled = RETRY_DELAYS_MS[attempts - 1]!
  const jittered = scheduled * (1 - JITTER + 2 * JITTER * (options.random ?? Math.random)())
  let delay = jittered
  if (options.retryAfterMs != null) delay = Math.min(Math.max(options.retryAfterMs, jittered), 2 * jittered)
  if (options.throttled) delay = Math.max(delay, MIN_THROTTLED_DELAY_MS)
  return Math.round(delay)
}

/** Retry-After as seconds or an HTTP date, in milliseconds from `now`; null when absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined, now: Date): number | null {
  const value = Array.isArray(header) ? header[0] : header
  if (!value) return null
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? null : Math.max(0, date - now.getTime())
}
