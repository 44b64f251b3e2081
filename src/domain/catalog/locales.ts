/**
 * Which of a jurisdiction's languages a GeoReport read is answered in. CitySDK's `locale`
 * parameter wins; then the client's Accept-Language (RFC 9110 §12.5.4: q-values, `*`), each
 * range matched as RFC 4647's lookup does (`fr-CA` falls back to `fr`), then to any served tag
 * of the same language (`fr` finds `fr-CA`); otherwise the jurisdiction's default. A language
 * the jurisdiction does not serve is never an error (as CitySDK): it gets the default. Only a
 * `locale` that is not a language tag at all is refused; a malformed Accept-Language range is
 * skipped, as headers are read leniently.
 *
 * Written here rather than taken from a library: @fastify/accept-negotiator (a dependency, used
 * for encodings) matches exact tokens only, and `negotiator` is only a test tool's dependency.
 */
import { invalid } from '../errors.js'

/** BCP 47's shape (RFC 5646 §2.1, loosely): a language of 2–8 letters, then subtags of 1–8 letters or digits. */
export const LOCALE_PATTERN = '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$'
/** RFC 5646 §4.4.1: the longest tag worth keeping. */
export const MAX_LOCALE_LENGTH = 35
const LOCALE = new RegExp(LOCALE_PATTERN)

export function isLocaleTag(value: string): boolean {
  return value.length <= MAX_LOCALE_LENGTH && LOCALE.test(value)
}

/** What a jurisdiction serves: its languages, the default (the catalog's own texts) among them. */
export interface ServedLocales {
  defaultLocale: string
  locales: readonly string[]
}

export interface LocaleRequest {
  /** The `locale` query parameter (CitySDK); empty counts as absent. */
  locale?: string | undefined
  acceptLanguage?: string | undefined
}

/**
 * The served locale to answer in; throws `invalid` for a `locale` parameter that is no language
 * tag — unless `lenient` (an error's own answer, which may be that very refusal), which skips it.
 */
export function negotiateLocale(request: LocaleRequest, served: ServedLocales, options: { lenient?: boolean } = {}): string {
  if (request.locale && !(options.lenient && !isLocaleTag(request.locale))) {
    if (!isLocaleTag(request.locale)) {
      throw invalid(`locale: ${JSON.stringify(request.locale.slice(0, 40))} is not a language tag (BCP 47, such as en, fr or fr-CA)`)
    }
    return bestMatch(request.locale, served.locales, []) ?? served.defaultLocale
  }
  if (request.acceptLanguage) return fromAcceptLanguage(request.acceptLanguage, served) ?? served.defaultLocale
  return served.defaultLocale
}

interface LanguageRange {
  range: string
  q: number
}

const QUALITY = /^q=(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$/i

/** The header's ranges, most wanted first (ties keep the header's order); malformed ones are left out. */
export function parseAcceptLanguage(header: string): LanguageRange[] {
  const ranges: (LanguageRange & { index: number })[] = []
  header.split(',').forEach((part, index) => {
    const [range = '', ...params] = part.split(';').map((p) => p.trim())
    if (range !== '*' && !isLocaleTag(range)) return
    let q = 1
    for (const param of params) {
      const quality = QUALITY.exec(param.replaceAll(' ', ''))
      if (quality) q = Number(quality[1])
      else if (/^q\s*=/i.test(param)) return
    }
    ranges.push({ range, q, index })
  })
  return ranges.sort((a, b) => b.q - a.q || a.index - b.index).map(({ range, q }) => ({ range, q }))
}

function fromAcceptLanguage(header: string, served: ServedLocales): string | undefined {
  const ranges = parseAcceptLanguage(header)
  // `fr;q=0` refuses fr and every fr-… that no more specific range asks for: `fr;q=0, fr-CA`
  // takes fr-CA, never fr, and `*` takes neither.
  const refused = ranges.filter((r) => r.q === 0 && r.range !== '*').map((r) => r.range.toLowerCase())
  for (const { range, q } of ranges) {
    if (q === 0) continue
    if (range === '*') {
      // Anything will do: the default, unless refused.
      return [served.defaultLocale, ...served.locales].find((l) => !isRefused(l, refused))
    }
    const wanted = range.toLowerCase()
    const found = bestMatch(range, served.locales, refused.filter((r) => !isRefused(wanted, [r]) || r === wanted))
    if (found && !(isRefused(found, refused) && !isRefused(found, [wanted]))) return found
  }
  return undefined
}

function isRefused(locale: string, refused: string[]): boolean {
  const tag = locale.toLowerCase()
  return refused.some((r) => tag === r || tag.startsWith(`${r}-`))
}

/** The served tag for one wanted tag: itself, a less specific one (lookup: fr-CA-x → fr-CA → fr), or one of the same language. */
function bestMatch(wanted: string, locales: readonly string[], refused: string[]): string | undefined {
  const candidates = locales.filter((l) => !isRefused(l, refused))
  const lower = candidates.map((l) => l.toLowerCase())
  let tag = wanted.toLowerCase()
  for (;;) {
    const i = lower.indexOf(tag)
    if (i >= 0) return candidates[i]
    const cut = tag.lastIndexOf('-')
    if (cut < 0) break
    tag = tag.slice(0, cut)
  }
  const i = lower.findIndex((l) => l.split('-', 1)[0] === tag)
  return i >= 0 ? candidates[i] : undefined
}
