import type { FastifyRequest } from 'fastify'

/**
 * The request's own URL with some query parameters set, for Link headers. Built from
 * PUBLIC_BASE_URL, never from the Host header (which a client controls).
 */
export function publicUrlWith(request: FastifyRequest, params: Record<string, string>): string {
  const base = request.server.config.publicBaseUrl
  const url = new URL(request.url, `${base}/`)
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
  return `${base}${url.pathname}${url.search}`
}
