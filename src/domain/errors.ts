/**
 * What domain code throws when it refuses: a kind of refusal, never an HTTP status. The HTTP
 * layer maps kinds to statuses (src/http/plugins/errors.ts); the CLI and workers read the
 * descriptions. Each description names the field or the thing at fault.
 */
export type DomainErrorKind = 'invalid' | 'forbidden' | 'not_found' | 'conflict' | 'unavailable'

export interface DomainProblem {
  description: string
  /** A code of its own for this problem (e.g. `open_work_order`); absent, the kind speaks for it. */
  code?: string
}

export class DomainError extends Error {
  readonly problems: DomainProblem[]

  constructor(
    readonly kind: DomainErrorKind,
    problems: string | DomainProblem[],
  ) {
    const list = typeof problems === 'string' ? [{ description: problems }] : problems
    super(list.map((p) => p.description).join('; '))
    this.name = 'DomainError'
    this.problems = list
  }
}

/** The input breaks a rule (a field's format, a range, a combination). */
export const invalid = (description: string | DomainProblem[]) => new DomainError('invalid', description)
/** The caller may not do this (another department's work order, no valid key). */
export const forbidden = (description: string) => new DomainError('forbidden', description)
export const notFound = (description: string) => new DomainError('not_found', description)
/** The thing exists but its state refuses the change (already closed, open work orders). */
export const conflict = (description: string | DomainProblem[]) => new DomainError('conflict', description)
/** Not now: something this depends on is behind or away (a lagging replica); the caller may retry. */
export const unavailable = (description: string) => new DomainError('unavailable', description)
