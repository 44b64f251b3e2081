import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Paging } from '../../../domain/requests/search-params.js'
import { publicUrlWith } from '../../public-url.js'

/**
 * Paging metadata travels in headers (6Aika style) so the body stays exactly spec-shaped.
 */
export function setPagingHeaders(request: FastifyRequest, reply: FastifyReply, paging: Paging, hasMore: boolean) {
  reply.header('x-page', String(paging.page))
  reply.header('x-page-size', String(paging.pageSize))
  const pageUrl = (page: number) => publicUrlWith(request, { page: String(page), page_size: String(paging.pageSize) })
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
