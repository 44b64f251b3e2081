/**
 * The catalog's answers — service list, service definitions, discovery — change only when the
 * catalog does, and they are the most requested documents of a 311 API. Each instance renders
 * each one once per jurisdiction, catalog version and format, with its ETag, and then serves
 * the stored bytes. The version is the jurisdiction's `catalog_changed_at`, which every request
 * reads (at most a second old, see domain/jurisdictions.ts), so a change made through any
 * instance retires the old bytes everywhere.
 */
import { createHash } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import { cachePerDatabase, type Db } from '../db/database.js'
import type { Jurisdiction } from '../domain/jurisdictions.js'
import { CONTENT_TYPES, type Format, renderXml } from '../open311/spark.js'

interface RenderedAnswer {
  version: number
  body: Buffer
  etag: string
}

const rendered = cachePerDatabase<RenderedAnswer>()

export interface CatalogAnswer {
  db: Db
  jurisdiction: Jurisdiction
  /** Names the document within the jurisdiction, e.g. `services` or `services/pothole`. */
  document: string
  format: Format
  /** The XML root element. */
  root: string
  /** Builds the Spark value; may throw (404) — errors are never stored. */
  build: () => unknown | Promise<unknown>
}

/** Sends the stored rendering, rendering it first when the catalog has moved on. */
export async function sendCatalogAnswer(reply: FastifyReply, answer: CatalogAnswer) {
  const version = answer.jurisdiction.catalogChangedAt.getTime()
  const key = `${answer.jurisdiction.id}\n${answer.document}\n${answer.format}`
  const entries = rendered.of(answer.db)
  let entry = entries.get(key)
  if (entry?.version !== version) {
    const value = await answer.build()
    // JSON goes through the route's response schema, exactly as an unrendered answer would.
    const text = answer.format === 'xml' ? renderXml(answer.root, value) : (reply.serializeInput(value as Record<string, unknown>, '200') as string)
    const body = Buffer.from(text)
    entry = { version, body, etag: weakEtag(body) }
    entries.set(key, entry)
  }
  // With the ETag set here, @fastify/etag neither hashes the body again nor misses a 304.
  return reply.type(CONTENT_TYPES[answer.format]).header('etag', entry.etag).send(entry.body)
}

/** The same tag @fastify/etag would compute (weak: gzip, brotli and identity share it). */
function weakEtag(body: Buffer): string {
  return `W/"${createHash('sha1').update(body).digest('base64')}"`
}
