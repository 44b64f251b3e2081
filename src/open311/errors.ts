/**
 * Open311 errors: an HTTP status plus a list of {code, description}. Domain modules throw
 * these; the HTTP layer renders them in the requested format.
 */
import { type Format, renderXml } from './spark.js'

export interface Open311ErrorItem {
  code: number | string
  description: string
}

export class Open311Error extends Error {
  readonly errors: Open311ErrorItem[]

  constructor(
    readonly statusCode: number,
    description: string | Open311ErrorItem[],
  ) {
    const errors = typeof description === 'string' ? [{ code: statusCode, description }] : description
    super(errors.map((e) => e.description).join('; '))
    this.name = 'Open311Error'
    this.errors = errors
  }
}

export const badRequest = (description: string) => new Open311Error(400, description)
export const forbidden = (description = 'api_key missing or not valid') => new Open311Error(403, description)
export const notFound = (description: string) => new Open311Error(404, description)

/** The error envelope's body: `<errors><error>…` in XML, a bare list in JSON. */
export function renderErrors(format: Format, errors: Open311ErrorItem[]): string {
  return format === 'xml' ? renderXml('errors', errors) : JSON.stringify(errors)
}
