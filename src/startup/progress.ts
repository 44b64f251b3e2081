/**
 * Plain lines on stderr while the server starts on the embedded database, for the person who
 * typed `npm start`: opening PGlite + PostGIS takes seconds (a first start much longer), and a
 * terminal that stays silent meanwhile looks hung. They are not log lines (those are JSON on
 * stdout, filtered by LOG_LEVEL): they show at every level, `silent` included.
 */
export interface StartupProgress {
  /** Says what starts, repeats "still …" every `STILL_EVERY_MS` while `work` runs, then says how long it took. */
  step<T>(doing: string, done: string, work: () => Promise<T>): Promise<T>
  line(text: string): void
}

export const PROGRESS_PREFIX = 'open311-server: '
const STILL_EVERY_MS = 5_000

/** Progress written with `write` (stderr); `null` writes nothing (PostgreSQL: its start is quick, and production logs are JSON). */
export function startupProgress(write: ((text: string) => void) | null): StartupProgress {
  const line = (text: string) => write?.(`${PROGRESS_PREFIX}${text}\n`)
  return {
    line,
    async step(doing, done, work) {
      if (!write) return work()
      const started = performance.now()
      const seconds = () => ((performance.now() - started) / 1000).toFixed(1)
      line(`${doing}…`)
      const ticker = setInterval(() => line(`… still ${doing} (${Math.round((performance.now() - started) / 1000)} s)`), STILL_EVERY_MS)
      // The process must be free to exit on a failure while the ticker is armed.
      ticker.unref()
      try {
        const result = await work()
        line(`${done} (${seconds()} s)`)
        return result
      } finally {
        clearInterval(ticker)
      }
    },
  }
}
