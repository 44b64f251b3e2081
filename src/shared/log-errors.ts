/**
 * Errors as log fields, without the data they may carry. The rule is structural, not a list of
 * field names: drizzle's query error holds the statement and every parameter (reporters'
 * email, name, phone); a PostgreSQL error's message, detail, hint and context quote values
 * (`Key (email)=(…) already exists`, a trigger's RAISE text); and pino's standard serializer
 * copies every enumerable property. So:
 * - a database error keeps its SQLSTATE, severity, routine and the names of the schema,
 *   table, column, constraint and type involved — never its text;
 * - drizzle's wrapper is replaced by the driver error it wraps (its own text is the SQL);
 * - any other error keeps its type, message, code, HTTP status and stack, and its cause goes
 *   through the same rules.
 */
import { DrizzleQueryError } from 'drizzle-orm/errors'

export interface LoggedError {
  type: string
  message?: string
  code?: string
  statusCode?: number
  severity?: string
  routine?: string
  schema?: string
  table?: string
  column?: string
  constraint?: string
  dataType?: string
  stack?: string
  cause?: LoggedError
}

const SQLSTATE = /^[0-9A-Z]{5}$/

/** Both drivers' server errors carry a five-character SQLSTATE beside a severity. */
function isDatabaseError(err: Error): boolean {
  const { code, severity } = err as { code?: unknown; severity?: unknown }
  return typeof code === 'string' && SQLSTATE.test(code) && typeof severity === 'string'
}


/** Stack frames only: the first line of a stack repeats the message. */
function framesOf(err: Error): string | undefined {
  return err.stack
    ?.split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .join('\n')
}

export function serializeError(value: unknown, depth = 0): LoggedError {
  if (!(value instanceof Error)) return { type: typeof value, message: typeof value === 'string' ? value : 'non-error value thrown' }
  // drizzle's wrapper: its message is the statement and its parameters; what it wraps explains the failure.
  if (value instanceof DrizzleQueryError) {
    const inner: LoggedError = value.cause instanceof Error ? serializeError(value.cause, depth + 1) : { type: 'DatabaseError' }
    return { ...inner, stack: inner.stack ?? framesOf(value) }
  }
  // Before anything else: PGlite's error also carries the statement and parameters as properties.
  if (isDatabaseError(value)) {
    const e = value as Error & Record<string, unknown>
    const logged: LoggedError = { type: value.constructor?.name || 'DatabaseError', code: e.code as string }
    for (const key of ['severity', 'routine', 'schema', 'table', 'column', 'constraint', 'dataType'] as const) {
      if (typeof e[key] === 'string') logged[key] = e[key] as string
    }
    const frames = framesOf(value)
    if (frames) logged.stack = frames
    return logged
  }
  const { code, statusCode } = value as { code?: unknown; statusCode?: unknown }
  const logged: LoggedError = { type: value.constructor?.name || value.name, message: value.message }
  if (typeof code === 'string') logged.code = code
  if (typeof statusCode === 'number') logged.statusCode = statusCode
  if (value.stack) logged.stack = value.stack
  if (value.cause !== undefined && depth < 5) logged.cause = serializeError(value.cause, depth + 1)
  return logged
}
