/**
 * Conditional GETs of feed pages. A page's validator comes from its rows' ids and versions
 * (planFeed), so it is known before the body is read and a 304 costs one index scan. Its
 * Last-Modified is the horizon it was read under: a row that leaves a page (it changed, and
 * moved on in the order) changes the page without changing any row on it, so no row's time
 * could say when the page last changed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { FEED_MEDIA } from '../../../domain/open-data/feeds.js'
import type { FeedFormat } from '../../../domain/open-data/keyset-feed.js'
import { matchesIfNoneMatch } from '../../if-none-match.js'

export const FEED_CONTENT_TYPES: Record<FeedFormat, string> = {
  csv: `${FEED_MEDIA.csv.mediaType}; charset=utf-8; header=present`,
  json: `${FEED_MEDIA.json.mediaType}; charset=utf-8`,
  geojson: `${FEED_MEDIA.geojson.mediaType}; charset=utf-8`,
}

export function setPageValidators(reply: FastifyReply, tag: string, horizonMicros: string) {
  // Weak: the same rows may go out gzip, brotli or plain.
  reply.header('etag', `W/"${tag}"`)
  reply.header('cache-control', 'no-cache')
  reply.header('last-modified', new Date(Number(BigInt(horizonMicros) / 1000n)).toUTCString())
}

/** RFC 9110 §13.2.2: If-None-Match decides when present; If-Modified-Since only without it. */
export function isNotModified(request: FastifyRequest, reply: FastifyReply, horizonMicros: string): boolean {
  const etag = reply.getHeader('etag') as string
  const ifNoneMatch = request.headers['if-none-match']
  if (ifNoneMatch !== undefined) return matchesIfNoneMatch(ifNoneMatch, etag)
  // Last-Modified is the horizon cut to the second: a copy made under it may lack changes made
  // later in that same second, so only a time at or past the horizon itself proves it current.
  const ifModifiedSince = request.headers['if-modified-since']
  if (ifModifiedSince === undefined) return false
  const since = Date.parse(ifModifiedSince)
  return Number.isFinite(since) && BigInt(since) * 1000n >= BigInt(horizonMicros)
}
