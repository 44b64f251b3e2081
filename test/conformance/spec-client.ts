/**
 * A small Open311 GeoReport v2 client written from the public specification only
 * (wiki.open311.org/GeoReport_v2, restated in /work/shared/open311/spec-digest.md).
 *
 * It knows nothing about the server under test besides its base URL: every resource is
 * `{base}{resource}.{format}`, POST bodies are `application/x-www-form-urlencoded`, XML is
 * parsed generically and normalised to the Spark JSON shape so the same checks run on both
 * formats. Repeated containers are forced to arrays the way FixMyStreet's XML::Simple set-up
 * does (service, attribute, value, request, error, request_update, endpoint, format).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { request } from 'undici'

export type Format = 'xml' | 'json'
export type Rec = Record<string, unknown>

/** The element names FixMyStreet (and we) force to arrays. */
export const FORCED_ARRAYS = ['service', 'attribute', 'value', 'request', 'error', 'request_update', 'endpoint', 'format']

export const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false, // keep text as text, like XML::Simple
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => FORCED_ARRAYS.includes(name),
})

export interface Answer {
  method: string
  url: string
  status: number
  contentType: string
  text: string
  /** JSON: the parsed document; XML: the parsed tree (root element kept as the only key). */
  doc: unknown
  /** Set when the body could not be parsed in the requested format. */
  parseError?: string
}

export type Query = Record<string, string>
export type Form = [string, string][]

export class SpecClient {
  /** `base` is the GeoReport endpoint URL; it must end with `/` (FixMyStreet concatenates). */
  constructor(
    readonly base: string,
    readonly format: Format,
  ) {
    if (!base.endsWith('/')) this.base = `${base}/`
  }

  url(resource: string, query?: Query): string {
    const qs = query && Object.keys(query).length > 0 ? `?${new URLSearchParams(query).toString()}` : ''
    return `${this.base}${resource}.${this.format}${qs}`
  }

  async get(resource: string, query?: Query): Promise<Answer> {
    return this.send('GET', this.url(resource, query))
  }

  async post(resource: string, form: Form): Promise<Answer> {
    const body = new URLSearchParams()
    for (const [k, v] of form) body.append(k, v)
    return this.send('POST', this.url(resource), body.toString())
  }

  private async send(method: 'GET' | 'POST', url: string, body?: string): Promise<Answer> {
    const res = await request(url, {
      method,
      ...(body === undefined
        ? {}
        : { body, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } }),
    })
    const text = await res.body.text()
    const ct = res.headers['content-type']
    const answer: Answer = {
      method,
      url,
      status: res.statusCode,
      contentType: Array.isArray(ct) ? ct.join(', ') : (ct ?? ''),
      text,
      doc: undefined,
    }
    try {
      if (this.format === 'json') answer.doc = JSON.parse(text)
      else {
        const valid = XMLValidator.validate(text)
        if (valid !== true) throw new Error(`not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`)
        answer.doc = xmlParser.parse(text)
      }
    } catch (err) {
      answer.parseError = (err as Error).message ?? String(err)
    }
    return answer
  }
}

/** `<root><child/>…</root>` (XML) or a bare array (JSON) → the list of records. */
export function listOf(a: Answer, format: Format, root: string, child: string): Rec[] | undefined {
  if (format === 'json') return Array.isArray(a.doc) ? (a.doc as Rec[]) : undefined
  const tree = a.doc as Rec | undefined
  if (!tree || typeof tree !== 'object' || !(root in tree)) return undefined
  const container = tree[root]
  if (container === '' || container === undefined || container === null) return []
  if (typeof container !== 'object') return undefined
  const items = (container as Rec)[child]
  if (items === undefined) return []
  return Array.isArray(items) ? (items as Rec[]) : undefined
}

/** A non-list root (`service_definition`, `discovery`) → its record. */
export function objectOf(a: Answer, format: Format, root: string): Rec | undefined {
  if (format === 'json') return a.doc && typeof a.doc === 'object' && !Array.isArray(a.doc) ? (a.doc as Rec) : undefined
  const tree = a.doc as Rec | undefined
  const v = tree?.[root]
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : undefined
}

/** A nested container inside a record: JSON array, or XML `<container><child/>…</container>`. */
export function nestedList(rec: Rec, format: Format, container: string, child: string): unknown[] | undefined {
  const v = rec[container]
  if (format === 'json') return Array.isArray(v) ? v : undefined
  if (v === '' || v === undefined || v === null) return []
  if (typeof v !== 'object' || Array.isArray(v)) return undefined
  const items = (v as Rec)[child]
  if (items === undefined) return []
  return Array.isArray(items) ? items : undefined
}

/** A boolean as the client sees it: JSON `true`/`false`, XML text `true`/`false` (case-insensitive like FMS). */
export function bool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true'
  return undefined
}

/** A value as text (XML keeps text; JSON may carry numbers). Empty / null → ''. */
export function text(v: unknown): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return ''
}

/** A W3C datetime, second precision, UTC `Z` — the form FixMyStreet and `three` send. */
export function w3Utc(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Output rule: `YYYY-MM-DDThh:mm:ss` + `Z` or `±hh:mm`, nothing else. */
export const OUTPUT_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/

/** Every (path, key, value) in a parsed document. */
export function* walk(node: unknown, path = '$'): Generator<[string, string, unknown]> {
  if (Array.isArray(node)) {
    for (const [i, v] of node.entries()) yield* walk(v, `${path}[${i}]`)
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node as Rec)) {
      yield [`${path}.${k}`, k, v]
      yield* walk(v, `${path}.${k}`)
    }
  }
}
