import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Paging } from '../../../domain/requests/search-params.js'

/**
 * Paging metadata travels in headers (6Aika style) so the body stays exactly spec-shaped.
 * URLs are built from PUBLIC_BASE_URL, never from the Host header.
 */
export function setPagingHeaders(request: FastifyRequest, reply: FastifyReply, paging: Paging, hasMore: boolean) {
  reply.header('x-page', String(paging.page))
  reply.header('x-page-size', String(paging.pageSize))
  const pageUrl = (page: number) => {
    const url = new URL(request.url, `${request.server.config.publicBaseUrl}/`)
    url.searchParams.set('page', String(page))
    url.searchParams.set('page_size', String(paging.pageSize))
    return `${request.server.config.publicBaseUrl}${url.pathname}${url.search}`
  }
  const links: string[] = []
  if (hasMore) {
    reply.header('x-next-page-url', pageUrl(paging.page + 1))
    links.push(`<${pageUrl(paging.page + 1)}>; rel="next"`)
  }
  if (paging.page > 1) {
    reply.header('x-previous-page-url', pageUrl(paging.page - 1))
    links.push(`<${pageUrl(paging.page - 1)}>; rel="prev"`)
  }
  if (links.length > 0) reply.header('link', links.join(', '))
}
