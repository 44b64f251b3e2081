/**
 * Ajv's errors as catalog faults an operator can act on: the field as a path, the bad value,
 * and what is allowed, spelled out from the field's own schema (its enum, type, range, length,
 * or the description of its pattern), so the fix is in the message. One fault per field: a
 * value that breaks two keywords (a boolean where an enum's string goes) is one mistake.
 */
import type { ErrorObject } from 'ajv'
import { toFieldPath } from '../../shared/field-path.js'
import type { CatalogFault } from './validate-catalog.js'

/** The keywords of catalog-schema.ts that a fault reads. */
interface FieldSchema {
  type?: string
  enum?: readonly unknown[]
  pattern?: string
  description?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  minProperties?: number
  maxProperties?: number
  properties?: Record<string, unknown>
}

/** From ajv errors produced with `allErrors` and `verbose` (each carries its data and parent schema). */
export function schemaFaults(errors: readonly ErrorObject[]): CatalogFault[] {
  const byField = new Map<string, CatalogFault>()
  for (const error of errors) {
    const fault = faultOf(error)
    if (!byField.has(fault.field)) byField.set(fault.field, fault)
  }
  return [...byField.values()]
}

function faultOf(error: ErrorObject): CatalogFault {
  const params = error.params as { missingProperty?: string; additionalProperty?: string }
  const schema = (error.parentSchema ?? {}) as FieldSchema
  if (error.keyword === 'required') return { field: toFieldPath(error.instancePath, params.missingProperty), detail: 'is required' }
  if (error.keyword === 'uniqueItems') {
    const { i, j } = error.params as { i: number; j: number }
    const items = error.data as unknown[]
    const [first, second] = [Math.min(i, j), Math.max(i, j)]
    return { field: toFieldPath(error.instancePath) || '(root)', detail: `must not repeat an item (got ${shown(items[first])} at [${first}] and [${second}])` }
  }
  if (error.keyword === 'additionalProperties') {
    const known = Object.keys(schema.properties ?? {}).join(', ')
    return { field: toFieldPath(error.instancePath, params.additionalProperty), detail: `is not a known field (known: ${known})` }
  }
  return { field: toFieldPath(error.instancePath) || '(root)', detail: `must be ${expectation(schema)} (got ${shown(error.data)})` }
}

/** What the field's schema accepts, as words. */
function expectation(schema: FieldSchema): string {
  if (schema.enum) return `one of ${schema.enum.join(', ')}`
  switch (schema.type) {
    case 'string':
      if (schema.pattern) return schema.description ?? `text matching ${schema.pattern}`
      return `text${bounds(schema.minLength, schema.maxLength, 'characters')}`
    case 'integer':
      return `a whole number${bounds(schema.minimum, schema.maximum)}`
    case 'number':
      return `a number${bounds(schema.minimum, schema.maximum)}`
    case 'boolean':
      return 'true or false'
    case 'array':
      return `a list${bounds(schema.minItems, schema.maxItems, 'items')}`
    case 'object':
      // A choice of fields, e.g. a service level: `hours` or `business_days`.
      if (schema.minProperties === 1 && schema.maxProperties === 1 && schema.properties) return `an object with exactly one of ${Object.keys(schema.properties).join(', ')}`
      return 'an object'
    default:
      return 'valid'
  }
}

/** ` of 1 to 200 characters`, ` of at most 100 items`, ` from 1 to 10000`; a length or count of 0 goes without saying. */
function bounds(min: number | undefined, max: number | undefined, unit?: string): string {
  const low = unit && min === 0 ? undefined : min
  if (low !== undefined && max !== undefined) return unit ? ` of ${low} to ${max} ${unit}` : ` from ${low} to ${max}`
  const range = max !== undefined ? `at most ${max}` : low !== undefined ? `at least ${low}` : ''
  if (!range) return ''
  return unit ? ` of ${range} ${unit}` : ` ${range}`
}

const SHOWN_CHARACTERS = 60

/** The bad value, short: a long string is cut (its length said), a list or object only named. */
function shown(value: unknown): string {
  if (typeof value === 'string') {
    if (value.length <= SHOWN_CHARACTERS) return JSON.stringify(value)
    return `${JSON.stringify(value.slice(0, SHOWN_CHARACTERS)).slice(0, -1)}…", ${value.length} characters`
  }
  if (Array.isArray(value)) return `a list of ${value.length} ${value.length === 1 ? 'item' : 'items'}`
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value)
    return keys.length ? `an object with ${keys.join(', ')}` : 'an empty object'
  }
  return String(value)
}
