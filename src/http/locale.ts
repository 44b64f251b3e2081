/**
 * The language of a GeoReport read that shows catalog text: negotiated from the `locale` query
 * parameter and Accept-Language among the jurisdiction's locales (src/domain/catalog/locales.ts),
 * and said in Content-Language. The answer varies with Accept-Language, so caches keep one copy
 * per language (Vary); the catalog documents set their Vary themselves (catalog-answers.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { negotiateLocale } from '../domain/catalog/locales.js'
import type { Jurisdiction } from '../domain/jurisdictions.js'

/** The served locale for this request; sets Content-Language and adds Accept-Language to Vary. */
export function answerLocale(request: FastifyRequest, reply: FastifyReply, jurisdiction: Jurisdiction): string {
  const query = request.query as { locale?: string } | undefined
  const locale = negotiateLocale({ locale: query?.locale, acceptLanguage: request.headers['accept-language'] }, jurisdiction)
  reply.header('content-language', locale)
  const vary = reply.getHeader('vary')
  reply.header('vary', vary ? `${String(vary)}, accept-language` : 'accept-language')
  return locale
}
