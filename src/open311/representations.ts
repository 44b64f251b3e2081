/**
 * Domain records → Open311 wire shapes (Spark JSON; XML is rendered from the same values).
 * Ids and codes are strings; booleans are real booleans.
 */
import type { StoredService } from '../domain/catalog/catalog.js'

export interface ServiceListItem {
  service_code: string
  service_name: string
  description: string
  metadata: boolean
  type: string
  keywords: string
  group: string
}

export function toServiceListItem(service: StoredService): ServiceListItem {
  return {
    service_code: service.service_code,
    service_name: service.service_name,
    description: service.description,
    metadata: service.attributes.length > 0,
    type: service.type,
    keywords: service.keywords.join(', '),
    group: service.group,
  }
}

export interface AttributeDefinition {
  variable: boolean
  code: string
  datatype: string
  required: boolean
  datatype_description: string
  order: number
  description: string
  values?: { key: string; name: string }[]
}

/** GET Service Definition: every attribute field always present; `values` only for list types. */
export function toServiceDefinition(service: StoredService): { service_code: string; attributes: AttributeDefinition[] } {
  return {
    service_code: service.service_code,
    attributes: service.attributes.map((a) => ({
      variable: a.variable,
      code: a.code,
      datatype: a.datatype,
      required: a.required,
      datatype_description: a.datatype_description,
      order: a.order!,
      description: a.description,
      // Key and name only: translations stay out even when a caller forgot to localise.
      ...(a.values ? { values: a.values.map((v) => ({ key: v.key, name: v.name })) } : {}),
    })),
  }
}
