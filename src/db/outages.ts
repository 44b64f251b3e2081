/**
 * Telling an outage from a bug. While the database cannot be reached (PostgreSQL restarting,
 * the network down, every connection slot taken), requests are answered 503 with
 * Retry-After, not 500, and the logs carry one warning when the outage starts and one when it
 * ends — not an error with a stack trace per request. A probe (a trivial query at once, then
 * once a second, started by the first failure) tells an outage from one lost connection and
 * notices the end, so recovery is logged even without traffic.
 * Per instance on purpose: each instance has its own connections and its own view of them.
 */
import type { DatabaseLogger } from './database.js'

/** SQLSTATEs that say the server cannot take the statement now, not that the statement is wrong. */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend, a fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '53300', // too_many_connections
])
/** Class 08: connection exceptions. */
const CONNECTION_EXCEPTION_CLASS = '08'

const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

/** node-postgres reports a lost or unobtainable connection by message only. */
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect$/,
  /is not queryable$/,
]

interface ErrorLike {
  code?: unknown
  message?: unknown
  cause?: unknown
}

/**
 * Whether `err` (or what it wraps: drizzle wraps the driver's error as its cause) means the
 * database is unreachable. An error that already carries an HTTP status is the client's (a
 * client hanging up mid-upload is an ECONNRESET too), never the database's.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err && typeof err === 'object' && typeof (err as { statusCode?: unknown }).statusCode === 'number') return false
  let current: unknown = err
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const { code, message, cause } = current as ErrorLike
    if (typeof code === 'string') {
      if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code)) return true
      if (code.length === 5 && code.startsWith(CONNECTION_EXCEPTION_CLASS)) return true
    }
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))) return true
    // AggregateError (a host with several addresses, all refused).
    const errors = (current as { errors?: unknown }).errors
    if (Array.isArray(errors) && errors.length > 0 && errors.every(isDatabaseUnavailable)) return true
    current = cause
  }
  return false
}

/** The SQLSTATE or errno of an unavailability, for the one warning line (never a message: it may quote data). */
function reasonOf(err: unknown): string {
  let current: unknown = err
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const { code, cause } = current as ErrorLike
    if (typeof code === 'string') return code
    current = cause
  }
  return 'connection lost'
}

export interface DatabaseOutages {
  /**
   * True when `err` means the database is unreachable (answer 503). The first such failure is
   * checked with a ping at once: a lost connection the pool has already replaced (one session
   * terminated) is no outage and logs nothing; a failing ping starts one, logged once.
   */
  noteFailure(err: unknown): boolean
  stop(): void
}

export function trackOutages(options: { logger: DatabaseLogger; ping: () => Promise<void>; probeIntervalMs?: number }): DatabaseOutages {
  /** When the outage began; undefined while the database answers. */
  let since: number | undefined
  let reason = ''
  let probe: NodeJS.Timeout | undefined
  let probing = false
  let stopped = false

  const runProbe = async () => {
    if (probing || stopped) return
    probing = true
    try {
      await options.ping()
      if (since !== undefined) options.logger.warn({ outageMs: Date.now() - since }, 'database reachable again')
      since = undefined
      clearInterval(probe)
      probe = undefined
    } catch {
      if (since === undefined && !stopped) {
        since = Date.now()
        options.logger.warn({ reason }, 'database unreachable: answering 503 until it is back')
      }
      // The interval tries again.
    } finally {
      probing = false
    }
  }

  return {
    noteFailure(err) {
      if (!isDatabaseUnavailable(err)) return false
      if (probe === undefined && !stopped) {
        reason = reasonOf(err)
        probe = setInterval(() => void runProbe(), options.probeIntervalMs ?? 1_000)
        probe.unref()
        void runProbe()
      }
      return true
    },
    stop() {
      stopped = true
      clearInterval(probe)
      probe = undefined
    },
  }
}

/**
 * A logger whose warn and error lines about an outage (their `err` is one) are left to the
 * tracker, which logs the outage once; every other line passes unchanged. For the background
 * paths that would otherwise log each failed poll, flush or lost connection of an outage.
 */
export function quietDuringOutages(logger: DatabaseLogger, outages: () => DatabaseOutages): DatabaseLogger {
  const unlessOutage =
    (write: DatabaseLogger['warn']): DatabaseLogger['warn'] =>
    (...args: Parameters<DatabaseLogger['warn']>) => {
      const err = (args[0] as { err?: unknown } | undefined)?.err
      if (err !== undefined && outages().noteFailure(err)) return
      write(...args)
    }
  return {
    info: logger.info.bind(logger),
    warn: unlessOutage(logger.warn.bind(logger)),
    error: unlessOutage(logger.error.bind(logger)),
  }
}
