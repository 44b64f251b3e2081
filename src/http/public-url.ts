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

/** The public URL of `path` (a path on this server) with these query parameters. */
export function publicUrl(request: FastifyRequest, path: string, params: Record<string, string> = {}): string {
  const query = new URLSearchParams(params).toString()
  return `${request.server.config.publicBaseUrl}${path}${query ? `?${query}` : ''}`
}
