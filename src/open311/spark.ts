/**
 * Open311's XML <-> JSON convention ("Spark"): JSON is the XML with the root element removed,
 * and every container of repeated children is a JSON array, even with one or zero members.
 * One table names each container's child element; every XML answer is rendered through it,
 * so the element names clients depend on live in exactly one place.
 */
import { XMLBuilder } from 'fast-xml-parser'

export const CONTAINER_CHILDREN: Readonly<Record<string, string>> = {
  services: 'service',
  attributes: 'attribute',
  values: 'value',
  service_requests: 'request',
  service_request_updates: 'request_update',
  errors: 'error',
  endpoints: 'endpoint',
  formats: 'format',
  groups: 'group',
  notes: 'note',
  media_urls: 'media_url',
  labels: 'label',
  possible_duplicates: 'possible_duplicate',
  locales: 'locale',
}

export type Format = 'json' | 'xml'
export const FORMATS: readonly Format[] = ['json', 'xml']

export const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  xml: 'text/xml; charset=utf-8',
}

const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'

const builder = new XMLBuilder({ format: false, suppressEmptyNode: false, processEntities: true })

/** Renders a Spark JSON value as the spec's XML document under `root`. */
export function renderXml(root: string, value: unknown): string {
  return XML_DECLARATION + builder.build({ [root]: toXmlTree(root, value) })
}

function toXmlTree(name: string, value: unknown): unknown {
  if (value === null || value === undefined) return ''
  if (typeof value === 'boolean' || typeof value === 'number') return String(value)
  if (Array.isArray(value)) {
    const child = CONTAINER_CHILDREN[name]
    if (!child) throw new Error(`no XML child element is defined for container <${name}>`)
    return value.length === 0 ? '' : { [child]: value.map((item) => toXmlTree(child, item)) }
  }
  if (typeof value === 'object') {
    const tree: Record<string, unknown> = {}
    for (const [key, field] of Object.entries(value)) {
      if (field !== undefined) tree[key] = toXmlTree(key, field)
    }
    return tree
  }
  return String(value)
}

/** The format a URL asks for, by its suffix; Open311 clients never send Accept headers. */
export function formatOfUrl(url: string): Format {
  const path = url.split('?', 1)[0] ?? ''
  return path.toLowerCase().endsWith('.xml') ? 'xml' : 'json'
}
