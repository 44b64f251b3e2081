/**
 * The language of a GeoReport read that shows catalog text: negotiated from the `locale` query
 * parameter and Accept-Language among the jurisdiction's locales (src/domain/catalog/locales.ts),
 * and said in Content-Language. Where the jurisdiction serves several, the answer varies with
 * Accept-Language, so caches keep one copy per language (Vary); the catalog documents set
 * their Vary themselves (catalog-answers.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Db } from '../db/database.js'
import { negotiateLocale } from '../domain/catalog/locales.js'
import { type Jurisdiction, servedJurisdictions } from '../domain/jurisdictions.js'

/** What each request was answered in, for its error answer should a later step fail. */
const chosen = new WeakMap<FastifyRequest, string>()

/** The served locale for this request; sets Content-Language and adds Accept-Language to Vary. */
export function answerLocale(request: FastifyRequest, reply: FastifyReply, jurisdiction: Jurisdiction): string {
  const query = request.query as { locale?: string } | undefined
  const locale = negotiateLocale({ locale: query?.locale, acceptLanguage: request.headers['accept-language'] }, jurisdiction)
  chosen.set(request, locale)
  reply.header('content-language', locale)
  // A jurisdiction of one language answers alike whatever the header: caches need not split on it.
  if (jurisdiction.locales.length > 1) {
    const vary = reply.getHeader('vary')
    reply.header('vary', vary ? `${String(vary)}, accept-language` : 'accept-language')
  }
  return locale
}

/**
 * The language of a GeoReport error answer: the one the route already chose, else negotiated
 * as a route would (leniently: the refusal may be of the `locale` itself) among the named
 * jurisdiction's languages, or the only jurisdiction's; when neither can be told (the error is
 * that jurisdiction_id is missing or unknown), among every jurisdiction's languages.
 */
/**
 * The jurisdiction a failed request named: in the query (reads), else in the form body (POST
 * requests and servicerequestupdates carry it there), else the key's only one (a city's key
 * may leave it out: key-jurisdictions.ts).
 */
function namedJurisdiction(request: FastifyRequest): string | undefined {
  const first = (value: unknown) => (Array.isArray(value) ? value[0] : value)
  const fromQuery = first((request.query as { jurisdiction_id?: unknown } | undefined)?.jurisdiction_id)
  const fromBody = first((request.body as { jurisdiction_id?: unknown } | undefined)?.jurisdiction_id)
  const named = [fromQuery, fromBody].find((v): v is string => typeof v === 'string' && v !== '')
  if (named) return named
  const own = request.apiKey?.jurisdiction_ids
  return own?.length === 1 ? own[0] : undefined
}

export async function errorLocale(request: FastifyRequest, db: Db): Promise<string> {
  const known = chosen.get(request)
  if (known) return known
  const query = (request.query ?? {}) as { locale?: unknown; jurisdiction_id?: unknown }
  const all = await servedJurisdictions(db)
  const named = all.find((j) => j.id === namedJurisdiction(request)) ?? (all.length === 1 ? all[0] : undefined)
  const served = named ?? { defaultLocale: all[0]?.defaultLocale ?? 'en', locales: [...new Set(all.flatMap((j) => j.locales))] }
  const locale = typeof query.locale === 'string' ? query.locale : undefined
  return negotiateLocale({ locale, acceptLanguage: request.headers['accept-language'] }, served, { lenient: true })
}
