/**
 * Conditional GETs of feed pages. A page's validator comes from its rows' ids and versions
 * (planRequestFeed), so it is known before the body is read and a 304 costs one index scan.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { FEED_MEDIA } from '../../../domain/open-data/feeds.js'
import type { FeedFormat } from '../../../domain/open-data/request-feed.js'

export const FEED_CONTENT_TYPES: Record<FeedFormat, string> = {
  csv: `${FEED_MEDIA.csv.mediaType}; charset=utf-8; header=present`,
  json: `${FEED_MEDIA.json.mediaType}; charset=utf-8`,
  geojson: `${FEED_MEDIA.geojson.mediaType}; charset=utf-8`,
}

export function setPageValidators(reply: FastifyReply, tag: string, lastModifiedMicros: string | null) {
  // Weak: the same rows may go out gzip, brotli or plain.
  reply.header('etag', `W/"${tag}"`)
  reply.header('cache-control', 'no-cache')
  if (lastModifiedMicros !== null) reply.header('last-modified', new Date(Number(BigInt(lastModifiedMicros) / 1000n)).toUTCString())
}

/** RFC 9110 §13.2.2: If-None-Match decides when present; If-Modified-Since only without it. */
export function isNotModified(request: FastifyRequest, reply: FastifyReply): boolean {
  const etag = reply.getHeader('etag') as string
  const ifNoneMatch = request.headers['if-none-match']
  if (ifNoneMatch !== undefined) {
    const opaque = (tag: string) => tag.trim().replace(/^W\//, '')
    return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => opaque(tag) === opaque(etag))
  }
  const ifModifiedSince = request.headers['if-modified-since']
  const lastModified = reply.getHeader('last-modified') as string | undefined
  if (ifModifiedSince === undefined || lastModified === undefined) return false
  const since = Date.parse(ifModifiedSince)
  return Number.isFinite(since) && Date.parse(lastModified) <= since
}
