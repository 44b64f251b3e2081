/**
 * POST Service Request input: the flat form fields a client sent → a validated submission,
 * checked against the service definition. Every problem is collected and reported together,
 * each naming its field; nothing is written unless all of it is valid.
 */
import type { StoredService } from '../catalog/catalog.js'
import type { CatalogAttribute } from '../catalog/catalog-schema.js'
import { parseW3c } from '../../open311/datetime.js'
import { type DomainProblem, invalid } from '../errors.js'

/** Form fields as parsed from urlencoded or multipart bodies: repeated keys become arrays. */
export type FormFields = Record<string, string | string[] | undefined>

export interface Reporter {
  email?: string
  firstName?: string
  lastName?: string
  phone?: string
  deviceId?: string
  accountId?: string
}

export interface Submission {
  serviceCode: string
  lat?: number
  long?: number
  addressString?: string
  addressId?: string
  zipcode?: string
  description?: string
  mediaUrls: string[]
  attributes: Record<string, string | string[]>
  reporter: Reporter
}

export const DESCRIPTION_MAX = 4000
const SHORT_TEXT_MAX = 1000

/** `attribute[code]`, `attribute[code][]`: the two encodings real clients use. */
export const ATTRIBUTE_KEY = /^attribute\[([^\]]+)\](\[\])?$/

const values = (field: string | string[] | undefined): string[] =>
  (Array.isArray(field) ? field : field === undefined ? [] : [field]).map((v) => v.trim()).filter((v) => v !== '')

/** The single value of a field; empty counts as absent (Open311 §1.5). */
export function single(fields: FormFields, name: string, errors: DomainProblem[]): string | undefined {
  const list = values(fields[name])
  if (list.length > 1) errors.push({ description: `${name}: only one value is allowed` })
  return list[0]
}

/** Collects `attribute[...]` answers from the form, merging every encoding of one code. */
export function attributeAnswers(fields: FormFields): Map<string, string[]> {
  const answers = new Map<string, string[]>()
  for (const [key, field] of Object.entries(fields)) {
    const match = ATTRIBUTE_KEY.exec(key)
    if (!match) continue
    const code = match[1]!
    answers.set(code, [...(answers.get(code) ?? []), ...values(field)])
  }
  return answers
}

export function validateSubmission(fields: FormFields, service: StoredService, timeZone: string): Submission {
  const errors: DomainProblem[] = []
  const fail = (field: string, problem: string) => errors.push({ description: `${field}: ${problem}` })

  const latText = single(fields, 'lat', errors)
  const longText = single(fields, 'long', errors)
  const addressString = single(fields, 'address_string', errors)
  const addressId = single(fields, 'address_id', errors)
  let lat: number | undefined
  let long: number | undefined
  if ((latText === undefined) !== (longText === undefined)) {
    fail(latText === undefined ? 'lat' : 'long', 'lat and long must be sent together')
  } else if (latText !== undefined && longText !== undefined) {
    lat = parseCoordinate(latText, -90, 90, 'lat', fail)
    long = parseCoordinate(longText, -180, 180, 'long', fail)
  }
  if (latText === undefined && !addressString && !addressId) {
    errors.push({ description: 'location: one of lat and long, address_string or address_id is required' })
  }

  const description = single(fields, 'description', errors)
  if (description && description.length > DESCRIPTION_MAX) fail('description', `must be at most ${DESCRIPTION_MAX} characters`)

  const mediaUrls = values(fields.media_url)
  for (const url of mediaUrls) {
    if (!isHttpUrl(url)) fail('media_url', 'must be an http or https URL')
  }

  const reporter: Reporter = {}
  const email = single(fields, 'email', errors)
  if (email !== undefined) {
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || email.length > 320) fail('email', 'is not an email address')
    reporter.email = email
  }
  for (const [name, key] of [
    ['first_name', 'firstName'],
    ['last_name', 'lastName'],
    ['phone', 'phone'],
    ['device_id', 'deviceId'],
    ['account_id', 'accountId'],
  ] as const) {
    const value = single(fields, name, errors)
    if (value === undefined) continue
    if (value.length > 200) fail(name, 'must be at most 200 characters')
    reporter[key] = value
  }

  const zipcode = single(fields, 'zipcode', errors)
  const attributes = validateAttributes(attributeAnswers(fields), service.attributes, timeZone, fail)

  if (errors.length > 0) throw invalid(errors)
  return {
    serviceCode: service.service_code,
    ...(lat !== undefined && long !== undefined ? { lat, long } : {}),
    ...(addressString ? { addressString: addressString.slice(0, SHORT_TEXT_MAX) } : {}),
    ...(addressId ? { addressId } : {}),
    ...(zipcode ? { zipcode } : {}),
    ...(description ? { description } : {}),
    mediaUrls,
    attributes,
    reporter,
  }
}

function parseCoordinate(text: string, min: number, max: number, field: string, fail: (f: string, p: string) => void) {
  const value = /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isFinite(value)) fail(field, 'must be a decimal number of degrees')
  else if (value < min || value > max) fail(field, `must be between ${min} and ${max}`)
  return value
}

export function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text)
    return (url.protocol === 'http:' || url.protocol === 'https:') && text.length <= 2000
  } catch {
    return false
  }
}

function validateAttributes(
  answers: Map<string, string[]>,
  definitions: CatalogAttribute[],
  timeZone: string,
  fail: (field: string, problem: string) => void,
): Record<string, string | string[]> {
  const accepted: Record<string, string | string[]> = {}
  // Answers to unknown or informational (variable=false) attributes are ignored, as
  // open311-adapter does: clients such as FixMyStreet send extra fields.
  for (const definition of definitions) {
    if (!definition.variable) continue
    const field = `attribute[${definition.code}]`
    const given = answers.get(definition.code) ?? []
    if (given.length === 0) {
      if (definition.required) fail(field, 'is required')
      continue
    }
    if (definition.datatype === 'multivaluelist') {
      const keys = new Set(definition.values?.map((v) => v.key))
      const unknown = given.filter((v) => !keys.has(v))
      if (unknown.length > 0) fail(field, `${unknown.map((v) => `"${v}"`).join(', ')} is not one of the listed keys`)
      accepted[definition.code] = [...new Set(given)]
      continue
    }
    if (given.length > 1) {
      fail(field, 'takes a single value')
      continue
    }
    const value = given[0]!
    const problem = checkSingleValue(definition, value, timeZone)
    if (problem) fail(field, problem)
    else accepted[definition.code] = value
  }
  return accepted
}

function checkSingleValue(definition: CatalogAttribute, value: string, timeZone: string): string | null {
  switch (definition.datatype) {
    case 'number':
      return /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(value) && Number.isFinite(Number(value)) ? null : 'must be a number'
    case 'datetime':
      return parseW3c(value, timeZone) ? null : 'must be an ISO 8601 datetime'
    case 'singlevaluelist':
      return definition.values?.some((v) => v.key === value) ? null : `"${value}" is not one of the listed keys`
    case 'string':
      return value.length <= SHORT_TEXT_MAX ? null : `must be at most ${SHORT_TEXT_MAX} characters`
    case 'text':
      return value.length <= DESCRIPTION_MAX ? null : `must be at most ${DESCRIPTION_MAX} characters`
    default:
      return null
  }
}
