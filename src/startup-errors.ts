/** Turns the errors a start-up or CLI run can hit into one line an operator can act on. */
export function describeStartupError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeStartupError(err.errors[0])
  const e = err as { code?: string; message?: string; address?: string; port?: number }
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN' || e?.code === 'ETIMEDOUT') {
    const where = e.address ? ` at ${e.address}${e.port ? `:${e.port}` : ''}` : ''
    return `cannot reach the database${where} (${e.code}); check DATABASE_URL`
  }
  if (e?.code === '28P01' || e?.code === '28000') return `the database refused the credentials in DATABASE_URL (${e.message})`
  if (e?.code === '3D000') return `the database named in DATABASE_URL does not exist (${e.message})`
  if (e?.code === 'EADDRINUSE') {
    return `port ${e.port} on ${e.address} is already in use (another open311-server?); stop what holds it, or set PORT to a free port`
  }
  if (e?.code === 'EACCES' && e.port !== undefined) return `not allowed to listen on port ${e.port} (ports below 1024 need privileges); set PORT`
  return e?.message ?? String(err)
}
