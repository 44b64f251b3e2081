import { Ajv } from 'ajv'
import { ATTRIBUTE_DATATYPES } from '../../db/schema.js'
import { findUnsafeTexts, unsafeTextRule } from '../../shared/text-safety.js'
import { DomainError } from '../errors.js'
import { type Catalog, catalogSchema, DEFAULT_CALENDAR } from './catalog-schema.js'
import { schemaFaults } from './schema-faults.js'

/** One thing wrong in a catalog: where (a JSON path, `(root)` or `(file)`) and what, with the bad value and what is allowed. */
export interface CatalogFault {
  field: string
  detail: string
}

/** More than this many are summed up in one last line: the first hundred are enough to start fixing. */
export const MAX_LISTED_FAULTS = 100

/**
 * A catalog refused, with every fault found at once (so one round of fixes is enough), each
 * naming the source (a file, `request body`) and the field. On HTTP each fault is one item of
 * the Open311 error list; the CLI prints the message, one fault a line.
 */
export class CatalogError extends DomainError {
  constructor(
    readonly source: string,
    readonly faults: CatalogFault[],
  ) {
    const lines = faultLines(faults)
    super(
      'invalid',
      lines.map((line) => ({ description: `${source}: ${line}` })),
    )
    this.name = 'CatalogError'
    if (lines.length > 1) this.message = `${source}: ${faults.length} problems\n${lines.map((line) => `  ${line}`).join('\n')}`
  }
}

function faultLines(faults: CatalogFault[]): string[] {
  const lines = faults.slice(0, MAX_LISTED_FAULTS).map((f) => `${f.field} ${f.detail}`)
  const more = faults.length - lines.length
  if (more > 0) lines.push(`… and ${more} more problems like these`)
  return lines
}

// allErrors: every fault in one answer. Only operators send catalogs (admin key or shell), and
// the body limit bounds the work, so the denial-of-service concern of allErrors on public input
// does not apply. verbose: the faults quote the bad value and the field's schema.
const ajv = new Ajv({ useDefaults: true, allErrors: true, verbose: true })
const validateSchema = ajv.compile<Catalog>(catalogSchema)

/**
 * Validates a parsed catalog (filling defaults in place) and checks what JSON Schema cannot:
 * unique codes and orders, list values only on list datatypes, valid time zone, and no text
 * PostgreSQL cannot store (a file imported by the CLI never passes the HTTP input check).
 * Throws one CatalogError listing every fault, each named by a JSON path such as
 * `services[3].attributes[0].values`.
 */
export function validateCatalog(data: unknown, source: string): Catalog {
  const valid = validateSchema(data)
  const faults = [
    ...(valid ? [] : schemaFaults(validateSchema.errors ?? [])),
    ...findUnsafeTexts(data).map((u) => ({ field: u.path || '(root)', detail: unsafeTextRule(u.problem) })),
    ...ruleFaults(data),
  ]
  if (faults.length > 0) throw new CatalogError(source, faults)
  const catalog = data as Catalog
  catalog.jurisdiction.locales ??= [catalog.jurisdiction.default_locale!]
  for (const service of catalog.services) {
    // `{"policy": "off"}` says what absence says: stored alike, so re-importing it is no change.
    if (service.duplicates?.policy === 'off' && service.duplicates.radius_m === undefined && service.duplicates.window_days === undefined) delete service.duplicates
    service.attributes.forEach((attribute, j) => (attribute.order ??= j + 1))
    // Display order, so a file listing attributes in another order is still the same catalog.
    service.attributes.sort((a, b) => a.order! - b.order!)
  }
  return catalog
}

type Fields = Record<string, unknown>
const isFields = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * The rules beyond the schema. They run on invalid documents too (so a file's faults all come
 * out at once) and so read every value warily: a field of the wrong type is the schema's fault,
 * reported there, and skipped here.
 */
function ruleFaults(data: unknown): CatalogFault[] {
  const faults: CatalogFault[] = []
  if (!isFields(data)) return faults
  const jurisdiction = isFields(data.jurisdiction) ? data.jurisdiction : {}
  const timeZone = jurisdiction.time_zone
  if (typeof timeZone === 'string' && timeZone !== '' && !isTimeZone(timeZone)) {
    faults.push({ field: 'jurisdiction.time_zone', detail: `must be an IANA time zone such as America/Chicago, Europe/Berlin or UTC (got ${JSON.stringify(timeZone)})` })
  }
  if (isFields(jurisdiction.calendar)) faults.push(...calendarFaults(jurisdiction.calendar))
  const languages = languagesOf(jurisdiction)
  faults.push(...languages.faults)
  const firstWithCode = new Map<unknown, number>()
  const services = Array.isArray(data.services) ? data.services : []
  services.forEach((service: unknown, i) => {
    if (!isFields(service)) return
    const at = `services[${i}]`
    faults.push(...repeated(firstWithCode, service.service_code, i, `${at}.service_code`, (first) => `services[${first}]`))
    faults.push(...translationFaults(service.translations, at, languages))
    if (Array.isArray(service.attributes)) {
      faults.push(...attributeFaults(service.attributes, `${at}.attributes`))
      service.attributes.forEach((attribute: unknown, j) => {
        if (!isFields(attribute)) return
        faults.push(...translationFaults(attribute.translations, `${at}.attributes[${j}]`, languages))
        if (Array.isArray(attribute.values)) {
          attribute.values.forEach((value: unknown, k) => isFields(value) && faults.push(...translationFaults(value.translations, `${at}.attributes[${j}].values[${k}]`, languages)))
        }
      })
    }
    if (isFields(service.duplicates)) faults.push(...duplicateFaults(service.duplicates, `${at}.duplicates`))
  })
  return faults
}

function attributeFaults(attributes: unknown[], at: string): CatalogFault[] {
  const faults: CatalogFault[] = []
  const firstWithCode = new Map<unknown, number>()
  const firstWithOrder = new Map<unknown, number>()
  attributes.forEach((attribute, j) => {
    if (!isFields(attribute)) return
    const where = `${at}[${j}]`
    faults.push(...repeated(firstWithCode, attribute.code, j, `${where}.code`, (first) => `${at}[${first}]`))
    // Without an order, an attribute's position is its order: it may collide with an explicit one.
    const order = attribute.order ?? j + 1
    for (const fault of repeated(firstWithOrder, typeof order === 'number' ? order : undefined, j, `${where}.order`, (first) => `${at}[${first}]`)) {
      faults.push(attribute.order === undefined ? { ...fault, detail: `${fault.detail}: without an order, an attribute's order is its position; give it one` } : fault)
    }
    const datatype = attribute.datatype
    if (typeof datatype !== 'string' || !(ATTRIBUTE_DATATYPES as readonly string[]).includes(datatype)) return
    const isList = datatype === 'singlevaluelist' || datatype === 'multivaluelist'
    if (isList && attribute.values === undefined) {
      faults.push({ field: `${where}.values`, detail: `is required for datatype ${datatype}: a list of {"key", "name"} choices` })
    }
    if (!isList && attribute.values !== undefined) {
      faults.push({ field: `${where}.values`, detail: `is only allowed for list datatypes (singlevaluelist, multivaluelist), not ${datatype}` })
    }
    if (Array.isArray(attribute.values)) {
      const firstWithKey = new Map<unknown, number>()
      attribute.values.forEach((value: unknown, k) => {
        if (isFields(value)) faults.push(...repeated(firstWithKey, value.key, k, `${where}.values[${k}].key`, (first) => `${where}.values[${first}]`))
      })
    }
  })
  return faults
}

interface Languages {
  defaultLocale: string
  /** The locales a translation may name: the served ones but the default. */
  others: string[]
  faults: CatalogFault[]
}

/** The jurisdiction's languages (`locales` absent: the default alone), and a fault when the default is not among them. */
function languagesOf(jurisdiction: Fields): Languages {
  const defaultLocale = typeof jurisdiction.default_locale === 'string' ? jurisdiction.default_locale : 'en'
  const locales = Array.isArray(jurisdiction.locales) ? jurisdiction.locales.filter((l): l is string => typeof l === 'string') : [defaultLocale]
  const faults: CatalogFault[] = []
  if (Array.isArray(jurisdiction.locales) && !locales.includes(defaultLocale)) {
    faults.push({ field: 'jurisdiction.default_locale', detail: `must be one of jurisdiction.locales: ${locales.join(', ')} (got ${JSON.stringify(defaultLocale)})` })
  }
  return { defaultLocale, others: locales.filter((l) => l !== defaultLocale), faults }
}

/** Each translation names one of the jurisdiction's other languages (the default's texts are the fields themselves). */
function translationFaults(translations: unknown, at: string, languages: Languages): CatalogFault[] {
  if (!isFields(translations)) return []
  return Object.keys(translations)
    .filter((locale) => !languages.others.includes(locale))
    .map((locale) => ({
      field: `${at}.translations.${locale}`,
      detail:
        locale === languages.defaultLocale
          ? `is the default language (jurisdiction.default_locale): its texts are the fields themselves, not a translation`
          : languages.others.length === 0
            ? `names a language the jurisdiction does not serve: jurisdiction.locales is only ${languages.defaultLocale} (got ${JSON.stringify(locale)})`
            : `must be one of jurisdiction.locales other than the default ${languages.defaultLocale}: ${languages.others.join(', ')} (got ${JSON.stringify(locale)})`,
    }))
}

/** A policy that searches needs where and how far back: radius_m and window_days (their bounds are the schema's). */
function duplicateFaults(duplicates: Fields, at: string): CatalogFault[] {
  const policy = duplicates.policy
  if (typeof policy !== 'string' || policy === 'off') return []
  return (['radius_m', 'window_days'] as const)
    .filter((field) => duplicates[field] === undefined)
    .map((field) => ({ field: `${at}.${field}`, detail: `is required when the policy is ${policy}` }))
}

const CLOCK_TIME = /^([01][0-9]|2[0-3]):[0-5][0-9]$/
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/

/** What the schema cannot say of a calendar: hours that close after they open, dates that exist. */
function calendarFaults(calendar: Fields): CatalogFault[] {
  const faults: CatalogFault[] = []
  const { opens, closes } = { ...DEFAULT_CALENDAR, ...calendar }
  // Badly formed times are the schema's faults; HH:MM compares as text.
  if (typeof opens === 'string' && typeof closes === 'string' && CLOCK_TIME.test(opens) && CLOCK_TIME.test(closes) && closes <= opens) {
    faults.push({ field: 'jurisdiction.calendar.closes', detail: `${closes} is not after opens (${opens})` })
  }
  if (Array.isArray(calendar.holidays)) {
    calendar.holidays.forEach((day: unknown, i) => {
      if (typeof day !== 'string' || !DATE.test(day)) return
      const parsed = new Date(`${day}T00:00:00Z`)
      if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== day) {
        faults.push({ field: `jurisdiction.calendar.holidays[${i}]`, detail: `"${day}" is not a date (YYYY-MM-DD, a day that exists)` })
      }
    })
  }
  return faults
}

/** A fault when `value` (a string or number) was seen before in this list; records it otherwise. */
function repeated(seen: Map<unknown, number>, value: unknown, index: number, field: string, firstAt: (first: number) => string): CatalogFault[] {
  if (typeof value !== 'string' && typeof value !== 'number') return []
  const first = seen.get(value)
  if (first === undefined) {
    seen.set(value, index)
    return []
  }
  return [{ field, detail: `${JSON.stringify(value)} appears more than once (first at ${firstAt(first)})` }]
}

function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone })
    return true
  } catch {
    return false
  }
}
