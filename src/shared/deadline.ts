/**
 * `work`, or a rejection once `ms` have passed, whichever comes first (the work itself goes on).
 * The rejection is an ETIMEDOUT error, which the outage tracker (src/db/outages.ts) checks with a
 * ping: a database that answers was only slow and logs nothing; one that does not is an outage,
 * logged once.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`${what} timed out`), { code: 'ETIMEDOUT' })), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}
