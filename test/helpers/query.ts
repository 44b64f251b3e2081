/** Small helpers for tests that look at database errors, identical on both backends. */

/** The PostgreSQL SQLSTATE of a failed query (e.g. 23505), looking through drizzle's wrapping error. */
export function sqlState(err: unknown): string | undefined {
  for (let e: unknown = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code
  }
  return undefined
}
