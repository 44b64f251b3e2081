import { Ajv } from 'ajv'
import { toFieldPath } from '../../shared/field-path.js'
import { findUnsafeText, unsafeTextRule } from '../../shared/text-safety.js'
import { type Catalog, type CatalogCalendar, catalogSchema, DEFAULT_CALENDAR } from './catalog-schema.js'

export class CatalogError extends Error {
  constructor(
    readonly source: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${source}: ${field} ${detail}`)
    this.name = 'CatalogError'
  }
}

const ajv = new Ajv({ useDefaults: true, allErrors: false })
const validateSchema = ajv.compile<Catalog>(catalogSchema)

/**
 * Validates a parsed catalog (filling defaults in place) and checks what JSON Schema cannot:
 * unique codes and orders, list values only on list datatypes, valid time zone, and no text
 * PostgreSQL cannot store (a file imported by the CLI never passes the HTTP input check).
 * Errors name the source and the offending field as a JSON path, e.g. `services[3].attributes[0].values`.
 */
export function validateCatalog(data: unknown, source: string): Catalog {
  if (!validateSchema(data)) {
    const error = validateSchema.errors?.[0]
    const extra = (error?.params as { additionalProperty?: string } | undefined)?.additionalProperty
    const field = toFieldPath(error?.instancePath ?? '', extra)
    // Say what an enum takes (e.g. `privacy`), so the fix is in the message.
    const allowed = (error?.params as { allowedValues?: unknown[] } | undefined)?.allowedValues
    const detail = extra ? 'is not a known field' : `${error?.message ?? 'is invalid'}${allowed ? ` (${allowed.join(', ')})` : ''}`
    throw new CatalogError(source, field || '(root)', detail)
  }
  const unsafe = findUnsafeText(data)
  if (unsafe) throw new CatalogError(source, unsafe.path || '(root)', unsafeTextRule(unsafe.problem))
  assertTimeZone(data.jurisdiction.time_zone, source)
  if (data.jurisdiction.calendar) assertCalendar(data.jurisdiction.calendar, source)
  const codes = new Set<string>()
  data.services.forEach((service, i) => {
    const at = `services[${i}]`
    if (codes.has(service.service_code)) {
      throw new CatalogError(source, `${at}.service_code`, `"${service.service_code}" appears more than once`)
    }
    codes.add(service.service_code)
    assignAttributeOrder(service.attributes, `${at}.attributes`, source)
    // Display order, so a file listing attributes in another order is still the same catalog.
    service.attributes.sort((a, b) => a.order! - b.order!)
  })
  return data
}

function assignAttributeOrder(attributes: Catalog['services'][number]['attributes'], at: string, source: string) {
  const attributeCodes = new Set<string>()
  const orders = new Set<number>()
  attributes.forEach((attribute, j) => {
    const where = `${at}[${j}]`
    attribute.order ??= j + 1
    if (attributeCodes.has(attribute.code)) throw new CatalogError(source, `${where}.code`, `"${attribute.code}" appears more than once`)
    if (orders.has(attribute.order)) throw new CatalogError(source, `${where}.order`, `${attribute.order} appears more than once`)
    attributeCodes.add(attribute.code)
    orders.add(attribute.order)
    const isList = attribute.datatype === 'singlevaluelist' || attribute.datatype === 'multivaluelist'
    if (isList && !attribute.values) throw new CatalogError(source, `${where}.values`, `is required for datatype ${attribute.datatype}`)
    if (!isList && attribute.values) throw new CatalogError(source, `${where}.values`, `is only allowed for list datatypes`)
    const keys = new Set<string>()
    attribute.values?.forEach((value, k) => {
      if (keys.has(value.key)) throw new CatalogError(source, `${where}.values[${k}].key`, `"${value.key}" appears more than once`)
      keys.add(value.key)
    })
  })
}

/** What the schema cannot say of a calendar: hours that close after they open, dates that exist. */
function assertCalendar(calendar: CatalogCalendar, source: string) {
  const { opens, closes } = { ...DEFAULT_CALENDAR, ...calendar }
  if (closes <= opens) throw new CatalogError(source, 'jurisdiction.calendar.closes', `${closes} is not after opens (${opens})`)
  calendar.holidays?.forEach((day, i) => {
    const parsed = new Date(`${day}T00:00:00Z`)
    if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== day) {
      throw new CatalogError(source, `jurisdiction.calendar.holidays[${i}]`, `"${day}" is not a date`)
    }
  })
}

function assertTimeZone(timeZone: string, source: string) {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone })
  } catch {
    throw new CatalogError(source, 'jurisdiction.time_zone', `"${timeZone}" is not an IANA time zone`)
  }
}
