/**
 * Localisation (issue 16): the demo city's English and French catalog, golden-tested in JSON
 * and XML; how a locale is negotiated (CitySDK's `locale`, Accept-Language with q-values,
 * `fr-CA` → `fr`, `*`, unknown → default), Content-Language and Vary, one ETag and one set of
 * compressed bytes per locale; catalog validation of translations; template translations through
 * the admin API; request lists and notes in the chosen language.
 *
 * UPDATE_GOLDEN=1 rewrites the golden files from the server's answers (then read the diff).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'
import { importCatalog, loadCatalogServices } from '../../src/domain/catalog/catalog.js'
import { negotiateLocale, parseAcceptLanguage } from '../../src/domain/catalog/locales.js'
import { CatalogError, validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import demoCatalog from '../../src/domain/demo/demo-catalog.json' with { type: 'json' }
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { translateErrorDescription } from '../../src/open311/error-messages.js'
import { buildTestApp } from '../helpers/app.js'

const GOLDEN = new URL('./golden/', import.meta.url)
const xml = new XMLParser({ parseTagValue: false, isArray: (name) => ['locale', 'error'].includes(name) })

const { app } = await buildTestApp(t)
await loadDemoCatalog(app.db)
const client = await createApiKey(app.db, { name: 'client', scopes: ['requests:write'] }, SERVER_ACTOR)
const admin = await createApiKey(app.db, { name: 'operator', scopes: ['admin'] }, SERVER_ACTOR)
const asAdmin = { authorization: `Bearer ${admin.key}` }

const get = (path: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: `/open311/v2/${path}`, headers })

t.test('golden: the demo catalog in English and French, JSON and XML', async (t) => {
  for (const document of ['services', 'services/pothole']) {
    for (const format of ['json', 'xml']) {
      for (const locale of ['en', 'fr']) {
        const res = await get(`${document}.${format}?locale=${locale}`)
        t.equal(res.statusCode, 200)
        t.equal(res.headers['content-language'], locale, `${document}.${format} in ${locale}: Content-Language`)
        const golden = new URL(`${document.replace('/', '-')}.${locale}.${format}`, GOLDEN)
        if (process.env.UPDATE_GOLDEN) await writeFile(golden, res.body)
        t.equal(res.body, await readFile(golden, 'utf8'), `${document}.${format} in ${locale} as in test/open311/golden/`)
      }
    }
  }
  const fr = (await get('services/pothole.json?locale=fr')).json() as { attributes: { description: string; values?: { key: string; name: string }[] }[] }
  t.equal(fr.attributes[0]!.description, 'Quelle est la largeur approximative du nid-de-poule ?')
  t.same(Object.keys(fr.attributes[0]!.values![0]!), ['key', 'name'], 'values carry no translations on the wire')
})

t.test('a field a translation leaves out falls back to the default language', async (t) => {
  const catalog = structuredClone(demoCatalog) as unknown as { services: { service_code: string; translations?: Record<string, Record<string, unknown>> }[] }
  const pothole = catalog.services.find((s) => s.service_code === 'pothole')!
  pothole.translations = { fr: { service_name: 'Nid-de-poule' } }
  await importCatalog(app.db, validateCatalog(catalog, 'test'), {}, SERVER_ACTOR)
  const item = ((await get('services.json?locale=fr')).json() as Record<string, string>[]).find((s) => s.service_code === 'pothole')!
  t.equal(item.service_name, 'Nid-de-poule')
  t.equal(item.description, 'Report a hole or depression in the road surface of a city street or alley.', 'description: the English text')
  t.equal(item.group, 'Streets & Sidewalks')
  t.equal(item.keywords, 'pothole, road damage, street hole, pavement')
  await loadDemoCatalog(app.db)
  t.equal(((await get('services.json?locale=fr')).json() as Record<string, string>[]).find((s) => s.service_code === 'pothole')!.group, 'Rues et trottoirs')
})

t.test('negotiation: locale beats Accept-Language; q-values, fr-CA → fr, *, unknown → the default', async (t) => {
  const cases: [string, Record<string, string>, string][] = [
    ['', {}, 'en'],
    ['', { 'accept-language': 'fr' }, 'fr'],
    ['', { 'accept-language': 'fr-CA' }, 'fr'],
    ['', { 'accept-language': 'FR-ca,en;q=0.5' }, 'fr'],
    ['', { 'accept-language': 'de-DE, fr;q=0.5, en;q=0.4' }, 'fr'],
    ['', { 'accept-language': 'fr;q=0.3, en;q=0.8' }, 'en'],
    ['', { 'accept-language': 'de, es' }, 'en'],
    ['', { 'accept-language': '*' }, 'en'],
    ['', { 'accept-language': 'en;q=0, *' }, 'fr'],
    ['', { 'accept-language': 'not a tag!, fr;q=0.9' }, 'fr'],
    ['', { 'accept-language': 'fr;q=2, en;q=0.1' }, 'en'],
    ['?locale=fr', { 'accept-language': 'en' }, 'fr'],
    ['?locale=en', { 'accept-language': 'fr' }, 'en'],
    ['?locale=fr-CA', {}, 'fr'],
    ['?locale=FR', {}, 'fr'],
    ['?locale=de', { 'accept-language': 'fr' }, 'en'],
    ['?locale=', { 'accept-language': 'fr' }, 'fr'],
  ]
  for (const [query, headers, expected] of cases) {
    const res = await get(`services.json${query}`, headers)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-language'], expected, `${query || '(no locale)'} ${JSON.stringify(headers)} → ${expected}`)
    t.match(res.headers.vary, /accept-language/, 'Vary: Accept-Language')
    t.match(res.headers.vary, /accept-encoding/, 'and Accept-Encoding')
  }
  t.same(parseAcceptLanguage('da, en-gb;q=0.8, en;q=0.7, *;q=0.1'), [
    { range: 'da', q: 1 },
    { range: 'en-gb', q: 0.8 },
    { range: 'en', q: 0.7 },
    { range: '*', q: 0.1 },
  ])
  const served = { defaultLocale: 'fr-CA', locales: ['fr-CA', 'en'] }
  t.equal(negotiateLocale({ acceptLanguage: 'fr' }, served), 'fr-CA', 'fr finds the served fr-CA')
  t.equal(negotiateLocale({ acceptLanguage: 'fr-BE' }, served), 'fr-CA', 'fr-BE finds another French')
  t.equal(negotiateLocale({ acceptLanguage: 'en-US' }, served), 'en')
  t.equal(negotiateLocale({ acceptLanguage: 'fr;q=0, en-US;q=0.2' }, served), 'en')
  const canadian = { defaultLocale: 'en', locales: ['en', 'fr', 'fr-CA'] }
  t.equal(negotiateLocale({ acceptLanguage: 'fr;q=0, fr-CA' }, canadian), 'fr-CA', 'a more specific range beats a refusal of its language')
  t.equal(negotiateLocale({ acceptLanguage: 'fr;q=0, fr-CA' }, { defaultLocale: 'en', locales: ['en', 'fr'] }), 'en', 'but never brings back the refused fr')
  t.equal(negotiateLocale({ acceptLanguage: 'fr-CA;q=0, fr' }, canadian), 'fr')
})

t.test('a malformed locale is a 400 in the Open311 envelope, JSON and XML', async (t) => {
  for (const value of ['fr_CA', 'x', 'fr-', '12', 'a'.repeat(40)]) {
    const res = await get(`services.json?locale=${encodeURIComponent(value)}`)
    t.equal(res.statusCode, 400, value)
    t.match(res.json(), [{ code: 400, description: /^locale: ".*" is not a language tag \(BCP 47, such as en, fr or fr-CA\)$/ }])
  }
  const res = await get('services/pothole.xml?locale=fr_CA')
  t.equal(res.statusCode, 400)
  t.match(xml.parse(res.body).errors.error, [{ code: '400', description: /locale/ }])
})

t.test('each locale has its own ETag, compressed bytes and 304', async (t) => {
  const en = await get('services.json', { 'accept-language': 'en' })
  const fr = await get('services.json', { 'accept-language': 'fr' })
  t.not(en.headers.etag, fr.headers.etag, 'the ETags differ')
  t.not(en.body, fr.body)
  t.equal((await get('services.json', { 'accept-language': 'fr', 'if-none-match': String(fr.headers.etag) })).statusCode, 304)
  const stale = await get('services.json', { 'accept-language': 'fr', 'if-none-match': String(en.headers.etag) })
  t.equal(stale.statusCode, 200, "English's ETag does not match the French answer")
  t.equal(stale.headers['content-language'], 'fr')
  const notModified = await get('services.json?locale=en', { 'if-none-match': String(en.headers.etag) })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.headers['content-language'], 'en', 'a 304 says its language too')
  const br = await get('services.json', { 'accept-language': 'fr', 'accept-encoding': 'br' })
  t.equal(br.headers['content-encoding'], 'br')
  t.equal(brotliDecompressSync(br.rawPayload).toString(), fr.body, 'brotli: the French bytes')
  const gz = await get('services/pothole.xml?locale=fr', { 'accept-encoding': 'gzip' })
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.equal(gunzipSync(gz.rawPayload).toString(), await readFile(new URL('services-pothole.fr.xml', GOLDEN), 'utf8'))
})

t.test('discovery lists the locales and the default, JSON and XML', async (t) => {
  const res = await get('discovery.json', { 'accept-language': 'fr' })
  t.match(res.json(), { default_locale: 'en', locales: ['en', 'fr'] })
  t.equal(res.headers['content-language'], 'fr')
  t.match(res.headers.vary, /accept-language/)
  const inXml = await get('discovery.xml')
  t.match(inXml.body, /<default_locale>en<\/default_locale><locales><locale>en<\/locale><locale>fr<\/locale><\/locales>/)
  t.same(xml.parse(inXml.body).discovery.locales, { locale: ['en', 'fr'] })
  t.equal(inXml.headers['content-language'], 'en')
  // Discovery has no translated text: the same bytes in both languages, yet each its own tag,
  // so a cache revalidating the English copy is never told the French one is current.
  const [en, fr] = [await get('discovery.json'), await get('discovery.json', { 'accept-language': 'fr' })]
  t.equal(en.body, fr.body)
  t.not(en.headers.etag, fr.headers.etag, 'each language its own ETag')
  t.equal((await get('discovery.json', { 'accept-language': 'fr', 'if-none-match': String(en.headers.etag) })).statusCode, 200, 'the English tag does not revalidate the French answer')
})

t.test('catalog validation: translations name one of the jurisdiction\'s other locales', async (t) => {
  const faultsOf = (catalog: unknown) => {
    try {
      validateCatalog(catalog, 'catalog.json')
    } catch (err) {
      if (err instanceof CatalogError) return err.faults.map((f) => `${f.field} ${f.detail}`)
      throw err
    }
    return []
  }
  const jurisdiction = { id: 'l10n.example', name: 'L10n', time_zone: 'UTC' }
  const service = (translations: unknown, attributeTranslations: unknown = {}, valueTranslations: unknown = {}) => ({
    service_code: 's',
    service_name: 'S',
    translations,
    attributes: [
      { code: 'a', datatype: 'singlevaluelist', description: 'A', translations: attributeTranslations, values: [{ key: 'k', name: 'K', translations: valueTranslations }] },
    ],
  })
  t.same(faultsOf({ jurisdiction: { ...jurisdiction, locales: ['en', 'fr'] }, services: [service({ de: { service_name: 'Dienst' } }, { de: { description: 'B' } }, { es: { name: 'k' } })] }), [
    'services[0].translations.de must be one of jurisdiction.locales other than the default en: fr (got "de")',
    'services[0].attributes[0].translations.de must be one of jurisdiction.locales other than the default en: fr (got "de")',
    'services[0].attributes[0].values[0].translations.es must be one of jurisdiction.locales other than the default en: fr (got "es")',
  ])
  t.same(faultsOf({ jurisdiction, services: [{ service_code: 's', service_name: 'S', translations: { fr: { service_name: 'S' } } }] }), [
    'services[0].translations.fr names a language the jurisdiction does not serve: jurisdiction.locales is only en (got "fr")',
  ])
  t.same(faultsOf({ jurisdiction: { ...jurisdiction, locales: ['en', 'fr'] }, services: [{ service_code: 's', service_name: 'S', translations: { en: { service_name: 'S' } } }] }), [
    'services[0].translations.en is the default language (jurisdiction.default_locale): its texts are the fields themselves, not a translation',
  ])
  t.same(faultsOf({ jurisdiction: { ...jurisdiction, default_locale: 'fr', locales: ['en', 'de'] }, services: [] }), [
    'jurisdiction.default_locale must be one of jurisdiction.locales: en, de (got "fr")',
  ])
  t.same(faultsOf({ jurisdiction: { ...jurisdiction, locales: ['en', 'fr_CA'] }, services: [] }), [
    'jurisdiction.locales[1] must be a BCP 47 language tag such as en, fr or fr-CA (got "fr_CA")',
  ])
  t.same(faultsOf({ jurisdiction: { ...jurisdiction, locales: ['en', 'fr'] }, services: [service({ fr: { service_name: 'S', colour: 'x' } })] }), [
    'services[0].translations.fr.colour is not a known field (known: service_name, description, group, keywords)',
  ])
  const filled = validateCatalog({ jurisdiction: { ...jurisdiction, default_locale: 'fr' }, services: [] }, 'catalog.json')
  t.same([filled.jurisdiction.default_locale, filled.jurisdiction.locales], ['fr', ['fr']], 'locales default to the default locale alone')
})

t.test('translations are stored as the file spells them: the export round-trips, a re-import changes nothing', async (t) => {
  const res = await app.inject({ url: '/admin/v1/services', headers: asAdmin })
  t.equal(res.statusCode, 200)
  const exported = res.json() as { service_code: string; translations?: unknown; attributes: { translations?: unknown; values?: unknown }[] }[]
  const byCode = new Map(exported.map((s) => [s.service_code, s]))
  for (const service of demoCatalog.services) {
    const stored = byCode.get(service.service_code)!
    t.same(stored.translations, service.translations, `${service.service_code}: translations`)
    t.same(
      stored.attributes.map((a) => [a.translations, a.values]),
      (service.attributes ?? []).map((a) => [a.translations, (a as { values?: unknown }).values]),
      `${service.service_code}: attribute and value translations`,
    )
  }
  const again = await loadDemoCatalog(app.db)
  t.same([again.created, again.updated], [[], []], 'the same file again: no change')
  const stored = await loadCatalogServices(app.db, 'demo.open311.city', { includeInactive: true })
  const reimport = await importCatalog(
    app.db,
    validateCatalog({ jurisdiction: demoCatalog.jurisdiction, services: stored.map(({ id: _id, jurisdiction_id: _j, ...s }) => s) }, 'export'),
    {},
    SERVER_ACTOR,
  )
  t.same(reimport.updated, [], 'the export imported back: no change')
})

t.test('a change of the languages served alone is a catalog change: discovery and ETags move at once', async (t) => {
  const before = await get('discovery.json')
  const withGerman = structuredClone(demoCatalog)
  withGerman.jurisdiction.locales = ['en', 'fr', 'de']
  const summary = await importCatalog(app.db, validateCatalog(withGerman, 'test'), {}, SERVER_ACTOR)
  t.same(summary.updated, [], 'no service changed')
  const after = await get('discovery.json')
  t.match(after.json(), { locales: ['en', 'fr', 'de'] })
  t.not(after.headers.etag, before.headers.etag)
  t.equal((await get('services.json', { 'accept-language': 'de' })).headers['content-language'], 'de', 'a served language without translations yet: each field falls back to the default text')
  await loadDemoCatalog(app.db)
  t.match((await get('discovery.json')).json(), { locales: ['en', 'fr'] })
})

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString()

t.test('requests and their notes in the chosen locale; templates with translations through the admin API', async (t) => {
  const posted = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ api_key: client.key, service_code: 'pothole', lat: '41.8781', long: '-87.6298', 'attribute[size]': 'SMALL' }),
  })
  t.equal(posted.statusCode, 200, posted.body)
  const id = (posted.json() as { service_request_id: string }[])[0]!.service_request_id

  const put = (code: string, body: Record<string, unknown>) => app.inject({ method: 'PUT', url: `/admin/v1/templates/${code}`, headers: asAdmin, payload: body })
  const saved = await put('received', {
    public_text: 'Request {service_request_id} ({service_name}) is with our crews.',
    translations: { fr: { text: 'La demande {service_request_id} ({service_name}) est entre les mains de nos équipes.' } },
  })
  t.equal(saved.statusCode, 200, saved.body)
  t.match(saved.json(), { code: 'received', translations: { fr: { text: /^La demande/ } } })
  const listed = (await app.inject({ url: '/admin/v1/templates', headers: asAdmin })).json() as { code: string; translations: unknown }[]
  t.same(listed.find((l) => l.code === 'received')!.translations, { fr: { text: 'La demande {service_request_id} ({service_name}) est entre les mains de nos équipes.' } })
  const refusals: [Record<string, unknown>, RegExp][] = [
    [{ public_text: 'x', translations: { de: { text: 'y' } } }, /^translations\.de: must be one of the jurisdiction's locales other than the default en \(fr; got "de"\)$/],
    [{ public_text: 'x', translations: { fr: { text: 'Bonjour {name}' } } }, /^translations\.fr\.text: unknown placeholder \{name\}/],
    [{ public_text: 'x', translations: { fr: {} } }, /text/],
  ]
  for (const [body, pattern] of refusals) {
    const refused = await put('bad', body)
    t.equal(refused.statusCode, 400, JSON.stringify(body))
    t.match(refused.json(), [{ code: 400, description: pattern }])
  }

  const noted = await app.inject({ method: 'POST', url: `/admin/v1/requests/${id}/notes`, headers: asAdmin, payload: { template: 'received' } })
  t.equal(noted.statusCode, 200, noted.body)

  type Note = { description: string }
  type Listed = { service_name: string; notes: Note[]; attributes: { name: string; labels: string[] }[] }
  const inFrench = (await get(`requests/${id}.json?extensions=true&locale=fr`)).json() as Listed[]
  t.equal(inFrench[0]!.service_name, 'Nid-de-poule')
  t.same(inFrench[0]!.attributes[0], { code: 'size', name: 'Quelle est la largeur approximative du nid-de-poule ?', values: ['SMALL'], labels: ["Plus petit qu'une assiette (moins de 30 cm)"] })
  t.equal(inFrench[0]!.notes.at(-1)!.description, `La demande ${id} (Nid-de-poule) est entre les mains de nos équipes.`, "the template's French, with the French service name")
  const inEnglish = (await get(`requests/${id}.json?extensions=true`)).json() as Listed[]
  t.equal(inEnglish[0]!.service_name, 'Pothole')
  t.equal(inEnglish[0]!.notes.at(-1)!.description, `Request ${id} (Pothole) is with our crews.`, 'the public note: the default text, as before')
  const list = await get(`requests.json?service_request_id=${id}`, { 'accept-language': 'fr-CA,fr;q=0.9' })
  t.equal(list.headers['content-language'], 'fr')
  t.match(list.headers.vary, /accept-language/)
  t.equal((list.json() as Listed[])[0]!.service_name, 'Nid-de-poule', 'requests.json: service_name in French')
  const listXml = await get(`requests.xml?service_request_id=${id}&locale=fr`)
  t.match(listXml.body, /<service_name>Nid-de-poule<\/service_name>/)
  const updates = await get('servicerequestupdates.json?locale=fr')
  t.equal(updates.headers['content-language'], 'fr')
  t.match((updates.json() as Note[]).at(-1)!.description, /^La demande/)
})

t.test("error descriptions in the request's language: French when asked, English by default", async (t) => {
  const french = { 'accept-language': 'fr' }
  const unknownService = await get('services/nope.json?locale=fr')
  t.equal(unknownService.statusCode, 404)
  t.same(unknownService.json(), [{ code: 404, description: 'le service_code "nope" n\'existe pas' }])
  t.equal(unknownService.headers['content-language'], 'fr')
  const inXml = await get('services/nope.xml', french)
  t.same(xml.parse(inXml.body).errors.error, [{ code: '404', description: 'le service_code "nope" n\'existe pas' }], 'XML alike')
  const english = await get('services/nope.json')
  t.same(english.json(), [{ code: 404, description: 'service_code "nope" does not exist' }])
  t.equal(english.headers['content-language'], 'en')

  const cases: [string, Record<string, string>, number, string][] = [
    ['requests.json?start_date=yesterday', french, 400, 'start_date : doit être une date et heure W3C, par exemple 2026-01-31T13:00:00Z'],
    ['requests.json?lat=41.8&long=-87.6', french, 400, 'lat, long, radius : les trois sont nécessaires pour une recherche par rayon'],
    ['requests.json?status=pending', french, 400, 'status : "pending" n\'est ni open ni closed'],
    ['requests/999999.json?locale=fr-CA', {}, 404, 'le service_request_id "999999" n\'existe pas'],
    ['tokens/nope.json', french, 404, 'le jeton "nope" n\'existe pas'],
    ['services.json?jurisdiction_id=elsewhere.example', french, 404, 'le jurisdiction_id "elsewhere.example" n\'est pas servi ici ; servis : demo.open311.city'],
    ['services.json?locale=fr_CA', french, 400, 'locale : "fr_CA" n\'est pas une étiquette de langue (BCP 47, par exemple en, fr ou fr-CA)'],
    ['services.json?locale=fr_CA', {}, 400, 'locale: "fr_CA" is not a language tag (BCP 47, such as en, fr or fr-CA)'],
    ['nothing.json', french, 404, 'aucune ressource à GET /open311/v2/nothing.json'],
    ['services', french, 404, 'aucune ressource à GET /open311/v2/services ; les URL GeoReport se terminent par leur format : /open311/v2/services.json ou /open311/v2/services.xml'],
    ['services.csv', french, 404, 'format inconnu : utilisez .json ou .xml'],
  ]
  for (const [path, headers, status, description] of cases) {
    const res = await get(path, headers)
    t.equal(res.statusCode, status, path)
    t.same(res.json(), [{ code: status, description }], `${path} ${JSON.stringify(headers)}`)
    t.match(res.headers.vary, /accept-language/)
  }

  const post = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/open311/v2/requests.json', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: form(fields) })
  const noKey = await post({ service_code: 'pothole', lat: '41.8781', long: '-87.6298' }, french)
  t.equal(noKey.statusCode, 403)
  t.same(noKey.json(), [{ code: 403, description: 'api_key absente ou non valide' }])
  const invalid = await post({ api_key: client.key, service_code: 'pothole', lat: '91', long: '-87.6298', email: 'nobody' }, french)
  t.equal(invalid.statusCode, 400)
  t.same(
    (invalid.json() as { description: string }[]).map((e) => e.description),
    ['lat : doit être compris entre -90 et 90', 'email : n\'est pas une adresse électronique', 'attribute[size] : est obligatoire'],
    'every problem of the form, each in French',
  )
  t.equal(invalid.headers['content-language'], 'fr')
  const unknownCode = await post({ api_key: client.key, service_code: 'nope', lat: '41.8781', long: '-87.6298' }, french)
  t.same(unknownCode.json(), [{ code: 404, description: 'le service_code "nope" n\'existe pas' }])

  const method = await app.inject({ method: 'DELETE', url: '/open311/v2/requests.json', headers: french })
  t.equal(method.statusCode, 405)
  t.same(method.json(), [{ code: 405, description: 'DELETE n\'est pas permis ici ; utilisez GET ou POST' }])

  // What the table does not know stays English, and then no Content-Language claims otherwise.
  const unsupported = await app.inject({ method: 'POST', url: '/open311/v2/requests.json', headers: { 'content-type': 'text/csv', ...french }, payload: 'a,b' })
  t.equal(unsupported.statusCode, 415)
  t.equal(unsupported.headers['content-language'], undefined)
  t.notMatch((unsupported.json() as { description: string }[])[0]!.description, /[éè]/)
  const admin404 = await app.inject({ url: '/admin/v1/nothing', headers: { ...asAdmin, ...french } })
  t.notMatch(admin404.body, /aucune/, 'the admin API stays English')
})

t.test('the message table: rate limits, durations, and what it does not know', async (t) => {
  t.equal(
    translateErrorDescription('rate limit exceeded: at most 10 POSTs per minute; retry in 30 seconds', 'fr'),
    'limite dépassée : au plus 10 POST par minute ; réessayez dans 30 s',
  )
  t.equal(translateErrorDescription('request body is too large', 'fr-CA'), 'le corps de la requête est trop volumineux', 'fr-CA reads the French table')
  t.equal(translateErrorDescription('service_code "x" does not exist', 'en-GB'), 'service_code "x" does not exist', 'English is the text itself')
  t.equal(translateErrorDescription('something new went wrong', 'fr'), undefined)
  t.equal(translateErrorDescription('service_code "x" does not exist', 'de'), undefined, 'no table for German')
})
