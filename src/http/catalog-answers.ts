/**
 * The catalog's answers — service list, service definitions, discovery — change only when the
 * catalog does, and they are the most requested documents of a 311 API. Each instance renders
 * each one once per jurisdiction, catalog version, locale and format, with its ETag and its gzip and
 * brotli encodings, and then serves the stored bytes. The version is the jurisdiction's
 * `catalog_changed_at`, which every request reads (at most a second old, see
 * domain/jurisdictions.ts), so a change made through any instance retires the old bytes everywhere.
 *
 * Because the bytes are final, the routes that use this skip the per-request compression hooks
 * (see CATALOG_ROUTE_OPTIONS) and answer If-None-Match themselves: compressing once at the best
 * level is both cheaper and smaller than compressing every answer at a fast one. One render runs
 * per document and version, whatever the number of requests waiting for it, and compresses on
 * libuv's thread pool, not on the event loop.
 *
 * Kept fast path: against rendering, tagging and compressing each answer per request (brotli 4
 * / gzip default, as @fastify/compress and @fastify/etag would), services.json ran at 4.26× with
 * `Accept-Encoding: gzip, deflate, br` (17,595 vs 4,134 req/s) and 1.17× without (14,758 vs
 * 12,581): `npm run bench:compare -- --baseline f179b3b --rows 20000 --duration 6 --rounds 3
 * --deliveries 1000`, 32 connections, session 11 (docs/benchmarks.md). Invariant: a stored
 * rendering is served only while its version is the jurisdiction's `catalog_changed_at`.
 */
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { brotliCompress, constants as zlib, gzip } from 'node:zlib'
import { negotiate } from '@fastify/accept-negotiator'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { cachePerDatabase } from '../db/caches.js'
import { matchesIfNoneMatch } from './if-none-match.js'
import type { Db } from '../db/database.js'
import type { Jurisdiction } from '../domain/jurisdictions.js'
import { CONTENT_TYPES, type Format, renderXml } from '../open311/spark.js'

/** Route options for catalog routes: their answers arrive encoded, so no compress hooks run. */
export const CATALOG_ROUTE_OPTIONS = { compress: false, decompress: false } as const

/** Below this size an encoding saves less than its header costs (the same threshold as @fastify/compress). */
const COMPRESSION_THRESHOLD = 1024

type Encoding = 'br' | 'gzip'
const ENCODINGS: ('br' | 'gzip' | 'identity')[] = ['br', 'gzip', 'identity']

interface RenderedAnswer {
  version: number
  contentType: string
  etag: string
  body: Buffer
  /** Absent for bodies under the threshold. */
  encoded?: Record<Encoding, Buffer>
}

/** A render under way (`ready`) or done (`value` set as well). */
interface Entry {
  version: number
  ready: Promise<RenderedAnswer>
  value?: RenderedAnswer
}

type Documents = Map<string, Partial<Record<Format, Entry>>>
/** Per database: jurisdiction id → locale → document → format → entry (nested, so no key string is built per request). */
const rendered = cachePerDatabase<Map<string, Documents>>()
const brotli = promisify(brotliCompress)
const gzipped = promisify(gzip)

export interface CatalogAnswer {
  db: Db
  jurisdiction: Jurisdiction
  /** Names the document within the jurisdiction, e.g. `services` or `services/pothole`. */
  document: string
  /** The negotiated locale (src/http/locale.ts): each language's bytes and ETag are its own. */
  locale: string
  format: Format
  /** The XML root element. */
  root: string
  /** Builds the Spark value; may throw (404) — errors are never stored. */
  build: () => unknown | Promise<unknown>
}

/**
 * Sends the stored rendering (304 when the client holds it), rendering it first when the catalog
 * has moved on. Synchronous when the rendering is at hand: no promise for the common case.
 */
export function sendCatalogAnswer(request: FastifyRequest, reply: FastifyReply, answer: CatalogAnswer): Promise<void> | undefined {
  const entry = storedEntry(reply, answer)
  if (entry.value) return sendRendered(request, reply, entry.value, answer.jurisdiction)
  return entry.ready.then((value) => sendRendered(request, reply, value, answer.jurisdiction))
}

function storedEntry(reply: FastifyReply, answer: CatalogAnswer): Entry {
  const version = answer.jurisdiction.catalogChangedAt.getTime()
  const formats = formatsOf(answer)
  const entry = formats[answer.format]
  // A request holding an older jurisdiction snapshot is served the newer document: it is the truth.
  if (entry && entry.version >= version) return entry
  const started: Entry = { version, ready: render(reply, answer, version) }
  formats[answer.format] = started
  started.ready.then(
    (value) => (started.value = value),
    () => forgetFailedRender(answer, formats, started),
  )
  return started
}

/** The stored renderings of one document in one locale, by format (made on first use). */
function formatsOf(answer: CatalogAnswer): Partial<Record<Format, Entry>> {
  const byJurisdiction = rendered.of(answer.db)
  let byLocale = byJurisdiction.get(answer.jurisdiction.id)
  if (!byLocale) byJurisdiction.set(answer.jurisdiction.id, (byLocale = new Map()))
  let documents = byLocale.get(answer.locale)
  if (!documents) byLocale.set(answer.locale, (documents = new Map()))
  let formats = documents.get(answer.document)
  if (!formats) documents.set(answer.document, (formats = {}))
  return formats
}

/** Errors (an unknown service code) are never stored, nor is the document's slot they made. */
function forgetFailedRender(answer: CatalogAnswer, formats: Partial<Record<Format, Entry>>, failed: Entry) {
  if (formats[answer.format] === failed) delete formats[answer.format]
  const documents = rendered.of(answer.db).get(answer.jurisdiction.id)?.get(answer.locale)
  if (Object.keys(formats).length === 0 && documents?.get(answer.document) === formats) documents.delete(answer.document)
}

function sendRendered(request: FastifyRequest, reply: FastifyReply, value: RenderedAnswer, jurisdiction: Jurisdiction): undefined {
  // Content-Language was set with the locale (src/http/locale.ts); with several languages, the answer varies with both headers.
  reply.type(value.contentType).header('etag', value.etag).header('vary', varyOf(jurisdiction))
  if (matchesIfNoneMatch(request.headers['if-none-match'], value.etag)) {
    reply.code(304).send()
    return
  }
  const encoding = value.encoded && acceptedEncoding(request.headers['accept-encoding'])
  if (encoding) reply.header('content-encoding', encoding).send(value.encoded![encoding])
  else reply.send(value.body)
}

/** How many documents this instance keeps for `db` (a test checks that failed renders leave none behind). */
export function storedCatalogDocuments(db: Db): number {
  let count = 0
  for (const byLocale of rendered.of(db).values()) for (const documents of byLocale.values()) count += documents.size
  return count
}

async function render(reply: FastifyReply, answer: CatalogAnswer, version: number): Promise<RenderedAnswer> {
  const value = await answer.build()
  // JSON goes through the route's response schema, exactly as an unrendered answer would.
  const text = answer.format === 'xml' ? renderXml(answer.root, value) : (reply.serializeInput(value as Record<string, unknown>, '200') as string)
  const body = Buffer.from(text)
  const result: RenderedAnswer = { version, contentType: CONTENT_TYPES[answer.format], etag: weakEtag(answer.locale, body), body }
  if (body.length >= COMPRESSION_THRESHOLD) {
    // The best levels: a document is compressed once per catalog change and sent for months.
    // Measured for a 450-service list (146 KB of JSON): brotli 11 takes ~120 ms of a pool
    // thread for 20 KB (quality 9: 12 ms, 6% larger), gzip 9 ~4 ms for 22 KB.
    const [br, gz] = await Promise.all([
      brotli(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY } }),
      gzipped(body, { level: zlib.Z_BEST_COMPRESSION }),
    ])
    result.encoded = { br, gzip: gz }
  }
  return result
}

const REFUSED = /;\s*q=0(?:\.0{0,3})?\s*$/

/** The client's preferred encoding of ours, or null for identity. */
function acceptedEncoding(header: string | undefined): Encoding | null {
  if (!header) return null
  // `x-gzip` is gzip's old alias (RFC 9110 §8.4.1.3); @fastify/compress reads it the same way.
  const normalized = header.toLowerCase().replaceAll('x-gzip', 'gzip')
  // The negotiator reads `*` as our first encoding even when the header refuses that one
  // (`br;q=0, *`), so refused codings are taken off the offer first.
  const refused = normalized.split(',').filter((part) => REFUSED.test(part)).map((part) => part.split(';', 1)[0]!.trim())
  const chosen = negotiate(normalized, refused.length ? ENCODINGS.filter((e) => !refused.includes(e)) : ENCODINGS)
  return chosen === 'br' || chosen === 'gzip' ? chosen : null
}

/**
 * The tag of a rendering, its locale included: two languages' documents can be the same bytes
 * (discovery has no translated text) yet differ in Content-Language, and a cache revalidating
 * one language's copy must not be told that another's is current.
 */
function weakEtag(locale: string, body: Buffer): string {
  return `W/"${createHash('sha1').update(locale).update('\0').update(body).digest('base64')}"`
}

/** A jurisdiction of one language answers the same whatever the Accept-Language: caches need not split on it. */
const varyOf = (jurisdiction: Jurisdiction) => (jurisdiction.locales.length > 1 ? 'accept-encoding, accept-language' : 'accept-encoding')
