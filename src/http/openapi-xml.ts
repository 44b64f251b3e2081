/**
 * The XML side of the GeoReport operations in the OpenAPI document. Route schemas describe the
 * JSON (they serialise it too); every XML answer is rendered from the same value by
 * src/open311/spark.ts. So each JSON example is rendered through that renderer and listed as
 * `text/xml` beside it: the example shows the element names the server really sends, and no
 * markup has to live in descriptions, where Swagger UI would swallow it.
 */
import { renderXml } from '../open311/spark.js'

declare module 'fastify' {
  interface FastifySchema {
    /** A GeoReport answer's XML root element (`sendOpen311`'s `root`); errors are always `errors`. */
    'x-xml-root'?: string
  }
}

type JsonSchema = { $ref?: string; type?: unknown; items?: JsonSchema; examples?: unknown[] }
interface Media {
  schema?: JsonSchema
  example?: unknown
}
interface Operation {
  'x-xml-root'?: string
  responses?: Record<string, { content?: Record<string, Media> }>
}
interface Document {
  paths?: Record<string, Record<string, Operation>>
  components?: { schemas?: Record<string, JsonSchema> }
}

const XML_MEDIA_TYPE = 'text/xml'
const SCHEMA_REF = '#/components/schemas/'

/** Adds a `text/xml` example next to each JSON answer of the operations that name an XML root. */
export function addXmlVariants<T>(document: T): T {
  const doc = document as Document
  for (const pathItem of Object.values(doc.paths ?? {})) {
    for (const operation of Object.values(pathItem)) {
      const root = operation['x-xml-root']
      if (root === undefined) continue
      delete operation['x-xml-root']
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const json = response.content?.['application/json']
        if (!json) continue
        const example = json.example ?? exampleOf(json.schema, doc)
        if (example === undefined) continue
        json.example = example
        response.content![XML_MEDIA_TYPE] = {
          schema: { type: 'string' },
          example: renderXml(Number(status) >= 400 ? 'errors' : root, example),
        }
      }
    }
  }
  return document
}

/** A schema's first example; a list's is a list of its items' example. */
function exampleOf(schema: JsonSchema | undefined, doc: Document): unknown {
  if (!schema) return undefined
  if (schema.$ref?.startsWith(SCHEMA_REF)) return exampleOf(doc.components?.schemas?.[schema.$ref.slice(SCHEMA_REF.length)], doc)
  if (schema.examples?.length) return schema.examples[0]
  if (schema.type === 'array') {
    const item = exampleOf(schema.items, doc)
    return item === undefined ? undefined : [item]
  }
  return undefined
}
