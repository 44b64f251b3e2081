/**
 * GET /open-data/v1/data.json and /datapackage.json: valid against the standards' own JSON
 * Schemas (DCAT-US 1.1; the Frictionless Tabular Data Package profile), made from the feed
 * registry and REQUEST_FIELDS, every link answering with what it announces, `modified` following
 * the data, the OPEN_DATA_* settings and their fallbacks, and refusals in the Open311 envelope.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { parse as parseCsv } from 'csv-parse/sync'
import { Ajv } from 'ajv'
import Ajv04Module from 'ajv-draft-04'
import formatsModule from 'ajv-formats'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { forgetJurisdictions } from '../../src/domain/jurisdictions.js'
import { tableSchemaField } from '../../src/domain/open-data/catalog.js'
import { FEED_MEDIA, FEEDS } from '../../src/domain/open-data/feeds.js'
import { LIST_SEPARATOR } from '../../src/domain/open-data/feed-fields.js'
import { REQUEST_FIELDS } from '../../src/domain/open-data/request-fields.js'
import { buildTestApp } from '../helpers/app.js'
import { DEMO_JURISDICTION, demoFixtures, insertFixtures } from '../open311/fixtures.js'

const BASE = 'http://open311.test'
const addFormats = formatsModule.default

const dcatSchema = JSON.parse(await readFile(new URL('./schemas/dcat-us-1.1-catalog.json', import.meta.url), 'utf8'))
// Not unicode: the official hasEmail pattern escapes characters (`\_`) that u-mode regexps refuse.
const validateDcat = addFormats(new Ajv({ allErrors: true, strict: false, unicodeRegExp: false })).compile(dcatSchema)
// The official profile, as the datapackage package ships it (draft-04; see schemas/README.md).
const tabularProfile = createRequire(import.meta.url)('datapackage/lib/profiles/tabular-data-package.json')
const validateDataPackage = addFormats(new Ajv04Module.default({ allErrors: true, strict: false })).compile(tabularProfile)

interface Distribution {
  downloadURL: string
  mediaType: string
  format: string
  describedBy: string
}
interface Dataset {
  identifier: string
  modified: string
  temporal?: string
  spatial?: string
  publisher: { name: string }
  contactPoint: { fn: string; hasEmail: string }
  license: string
  accrualPeriodicity: string
  distribution: Distribution[]
}
interface TableField {
  name: string
  type: string
  description: string
  format?: string
}
interface Resource {
  name: string
  path: string
  dialect: Record<string, unknown>
  schema: { fields: TableField[]; primaryKey: string | string[] }
}

const { app } = await buildTestApp(t)
const db = app.db
await loadDemoCatalog(db)
const fixtures = await insertFixtures(db, demoFixtures(new Date('2026-06-01T15:00:00Z')))

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers })
/** A URL the catalogs announce (absolute, under PUBLIC_BASE_URL, like the Link headers), asked of this app. */
const local = (url: string) => {
  if (!url.startsWith(`${BASE}/open-data/v1/`)) throw new Error(`${url} is not under PUBLIC_BASE_URL's /open-data/v1/`)
  return url.slice(BASE.length)
}
const dataJson = async (query = '') => {
  const res = await get(`/open-data/v1/data.json${query}`)
  if (res.statusCode !== 200) throw new Error(`data.json: ${res.statusCode} ${res.body}`)
  return res.json() as { dataset: Dataset[] }
}
const requestsDataset = async (query = '') => (await dataJson(query)).dataset.find((d) => d.identifier === `${DEMO_JURISDICTION}/requests`)!
const newestInFeed = async () => {
  const rows = (await get('/open-data/v1/requests.json')).json() as { updated_datetime: string }[]
  return rows.at(-1)!.updated_datetime
}

t.test('data.json: a DCAT-US 1.1 catalog, valid against its JSON Schema, one dataset per feed', async (t) => {
  const res = await get('/open-data/v1/data.json', { origin: 'https://portal.example' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['cache-control'], 'public, max-age=300')
  t.equal(res.headers['access-control-allow-origin'], '*', 'CORS: a portal\'s browser may read it')
  const catalog = res.json()
  t.ok(validateDcat(catalog), `valid DCAT-US 1.1: ${JSON.stringify(validateDcat.errors)}`)
  t.has(catalog, {
    '@context': 'https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld',
    '@id': `${BASE}/open-data/v1/data.json`,
    '@type': 'dcat:Catalog',
    conformsTo: 'https://project-open-data.cio.gov/v1.1/schema',
    describedBy: 'https://project-open-data.cio.gov/v1.1/schema/catalog.json',
  })
  t.same(
    catalog.dataset.map((d: Dataset) => d.identifier),
    FEEDS.map((f) => `${DEMO_JURISDICTION}/${f.name}`),
    'one dataset per registered feed, in order',
  )
  const dataset = catalog.dataset[0] as Dataset
  t.has(dataset, {
    '@type': 'dcat:Dataset',
    accessLevel: 'public',
    // Defaults: the licence, the jurisdiction's name, the address in its contact text.
    license: 'https://opendatacommons.org/licenses/pddl/1-0/',
    publisher: { '@type': 'org:Organization', name: 'City of Riverton (demo)' },
    contactPoint: { '@type': 'vcard:Contact', fn: 'City of Riverton (demo)', hasEmail: 'mailto:open311@riverton.example' },
    accrualPeriodicity: 'R/PT1H',
  })
  t.notOk('spatial' in dataset, 'no boundary, no spatial')
})

t.test('every distribution answers 200 with its mediaType, and its data dictionary too', async (t) => {
  const catalog = await dataJson()
  for (const [i, dataset] of catalog.dataset.entries()) {
    const feed = FEEDS[i]!
    t.same(
      dataset.distribution.map((d) => [d.format, d.mediaType]),
      feed.formats.map((f) => [FEED_MEDIA[f].format, FEED_MEDIA[f].mediaType]),
      `${feed.name}: one distribution per format`,
    )
    for (const distribution of dataset.distribution) {
      const res = await get(local(distribution.downloadURL))
      t.equal(res.statusCode, 200, distribution.downloadURL)
      t.equal(String(res.headers['content-type']).split(';')[0], distribution.mediaType, `${distribution.downloadURL} is ${distribution.mediaType}`)
      t.equal(distribution.describedBy, `${BASE}/open-data/v1/datapackage.json`)
    }
  }
  const dictionary = await get(local(catalog.dataset[0]!.distribution[0]!.describedBy))
  t.equal(dictionary.statusCode, 200, 'the data dictionary answers')
})

t.test('modified: the newest updated_datetime in the feed, and it moves when a request changes', async (t) => {
  const before = await requestsDataset()
  t.equal(before.modified, await newestInFeed(), 'the newest change a harvester can download, to the microsecond')
  const oldest = [...fixtures.values()].filter((f) => f.isPublic).sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime())[0]!
  t.equal(before.temporal, `${oldest.requestedAt.toISOString().replace('Z', '000Z')}/${before.modified}`, 'temporal: first request to last change')

  await db.execute(sql`update service_requests set status_notes = 'Crew on site' where id = ${fixtures.get('f1')!.id}`)
  const after = await requestsDataset()
  t.ok(after.modified > before.modified, `moved on: ${before.modified} → ${after.modified}`)
  t.equal(after.modified, await newestInFeed(), 'to the change just made')
  t.ok(validateDcat(await dataJson()), 'still valid')
})

t.test('datapackage.json: a Tabular Data Package, valid against the official profile, its schema REQUEST_FIELDS', async (t) => {
  const res = await get('/open-data/v1/datapackage.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['cache-control'], 'public, max-age=300')
  const pkg = res.json()
  t.ok(validateDataPackage(pkg), `valid Tabular Data Package: ${JSON.stringify(validateDataPackage.errors)}`)
  t.has(pkg, { profile: 'tabular-data-package', licenses: [{ path: 'https://opendatacommons.org/licenses/pddl/1-0/' }] })
  const csvFeeds = FEEDS.filter((f) => f.formats.includes('csv'))
  t.same(pkg.resources.map((r: Resource) => r.name), csvFeeds.map((f) => f.name), 'one resource per CSV feed')

  for (const feed of csvFeeds) {
    const described = pkg.resources.find((r: Resource) => r.name === feed.name) as Resource
    t.same(described.schema.fields.map((f) => f.name), feed.fields.map((f) => f.name), `${feed.name}: the columns of its CSV, in order`)
    const primaryKey = feed.primaryKey.length === 0 ? undefined : feed.primaryKey.length === 1 ? feed.primaryKey[0] : [...feed.primaryKey]
    t.same(described.schema.primaryKey, primaryKey, `${feed.name}: its primary key, if it has one`)
    const [header] = parseCsv((await get(local(described.path))).body.replace(/^\uFEFF/, ''), { to_line: 1 }) as string[][]
    t.same(header, feed.fields.map((f) => f.name), `${feed.name}: its CSV's header is the described columns`)
  }
  const resource = pkg.resources.find((r: Resource) => r.name === 'requests') as Resource
  t.has(resource, {
    profile: 'tabular-data-resource',
    path: `${BASE}/open-data/v1/requests.csv`,
    format: 'csv',
    mediatype: 'text/csv',
    encoding: 'utf-8',
    dialect: { lineTerminator: '\r\n', header: true, quoteChar: '"', doubleQuote: true, delimiter: ',' },
  })
  t.equal(resource.schema.primaryKey, 'service_request_id')
  const types = { string: 'string', number: 'number', datetime: 'datetime', boolean: 'boolean', list: 'string', object: 'object' } as const
  t.same(
    resource.schema.fields.map((f) => [f.name, f.type]),
    REQUEST_FIELDS.map((f) => [f.name, types[f.type]]),
    'every column, in order, with its Table Schema type',
  )
  for (const [i, field] of REQUEST_FIELDS.entries()) {
    const described = resource.schema.fields[i]!
    t.ok(described.description.startsWith(field.description), `${field.name}: its description`)
    if (field.type === 'list') t.ok(described.description.includes(`"${LIST_SEPARATOR}"`), `${field.name}: says how items are separated`)
    if (field.type === 'datetime') t.equal(described.format, '%Y-%m-%dT%H:%M:%S.%fZ')
  }

  const csv = await get(local(resource.path))
  t.equal(csv.statusCode, 200)
  t.match(csv.headers['content-type'], /^text\/csv/)
  const [header] = parseCsv(csv.body, { to_line: 1 }) as string[][]
  t.same(header, resource.schema.fields.map((f) => f.name), 'the CSV\'s header is the schema\'s fields')
  const datetimes = resource.schema.fields.filter((f) => f.type === 'datetime').map((f) => f.name)
  const records = parseCsv(csv.body, { columns: true }) as Record<string, string>[]
  for (const record of records) {
    for (const name of datetimes) {
      if (record[name] !== '') t.match(record[name], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, `${name} as its format says`)
    }
  }
})

t.test('a list column whose description does not say how items are separated gets it said', async (t) => {
  const described = tableSchemaField({ name: 'tags', type: 'list', description: 'Tags.' })
  t.same(described, { name: 'tags', type: 'string', description: `Tags. Items separated by "${LIST_SEPARATOR}".` })
})

t.test('OPEN_DATA_* settings replace the defaults; a feed without rows is modified at the catalog\'s time', async (t) => {
  const openData = loadConfig({
    OPEN_DATA_LICENSE: 'https://creativecommons.org/licenses/by/4.0/',
    OPEN_DATA_PUBLISHER: 'Riverton Department of Innovation',
    OPEN_DATA_CONTACT_EMAIL: 'opendata@riverton.example',
  }).openData
  const { app: configured } = await buildTestApp(t, { openData })
  await loadDemoCatalog(configured.db)
  const before = new Date()
  const catalog = (await configured.inject({ url: '/open-data/v1/data.json' })).json()
  const after = new Date()
  t.ok(validateDcat(catalog), `valid: ${JSON.stringify(validateDcat.errors)}`)
  const dataset = catalog.dataset[0] as Dataset
  t.has(dataset, {
    license: 'https://creativecommons.org/licenses/by/4.0/',
    publisher: { name: 'Riverton Department of Innovation' },
    contactPoint: { fn: 'Riverton Department of Innovation', hasEmail: 'mailto:opendata@riverton.example' },
  })
  const modified = new Date(dataset.modified)
  t.ok(modified >= before && modified <= after, `no requests: the catalog's time (${dataset.modified})`)
  t.notOk('temporal' in dataset, 'no requests, no temporal')
  const pkg = (await configured.inject({ url: '/open-data/v1/datapackage.json' })).json()
  t.ok(validateDataPackage(pkg), `valid: ${JSON.stringify(validateDataPackage.errors)}`)
  t.same(pkg.licenses, [{ path: 'https://creativecommons.org/licenses/by/4.0/' }])
  t.same(pkg.contributors, [{ title: 'Riverton Department of Innovation', email: 'opendata@riverton.example', role: 'publisher' }])
})

// Last: a second jurisdiction makes jurisdiction_id required everywhere.
t.test('several jurisdictions: jurisdiction_id is required, kept in every URL; no contact email is a 404', async (t) => {
  await db.execute(sql`insert into jurisdictions (id, name, time_zone, contact) values ('other.example', 'Other Town', 'UTC', 'call the town hall')`)
  forgetJurisdictions(db)
  for (const file of ['data.json', 'datapackage.json']) {
    const res = await get(`/open-data/v1/${file}`)
    t.equal(res.statusCode, 400, `${file} without jurisdiction_id`)
    t.match(res.json(), [{ code: 400, description: /jurisdiction_id is required/ }], 'in the Open311 envelope')
    const unknown = await get(`/open-data/v1/${file}?jurisdiction_id=nowhere.example`)
    t.equal(unknown.statusCode, 404)
    const missing = await get(`/open-data/v1/${file}?jurisdiction_id=other.example`)
    t.equal(missing.statusCode, 404, `${file}: no address to publish as contactPoint`)
    t.match(missing.json(), [{ code: 404, description: /OPEN_DATA_CONTACT_EMAIL/ }])
  }

  await db.execute(sql`update jurisdictions set contact = 'Town hall: clerk@other.example.', boundary = ST_Multi(ST_GeomFromText('POLYGON((-1.5 50, 1.25 50, 1.25 51.75, -1.5 51.75, -1.5 50))', 4326))::geography
                       where id = 'other.example'`)
  forgetJurisdictions(db)
  const other = await dataJson('?jurisdiction_id=other.example')
  t.ok(validateDcat(other), `valid: ${JSON.stringify(validateDcat.errors)}`)
  const dataset = other.dataset[0]!
  t.has(dataset, {
    identifier: 'other.example/requests',
    contactPoint: { hasEmail: 'mailto:clerk@other.example' },
    publisher: { name: 'Other Town' },
    spatial: '-1.5,50,1.25,51.75',
  })
  for (const distribution of dataset.distribution) {
    t.match(distribution.downloadURL, /\?jurisdiction_id=other\.example$/, 'the jurisdiction stays in the link')
    t.equal((await get(local(distribution.downloadURL))).statusCode, 200)
  }
  const demo = await requestsDataset(`?jurisdiction_id=${DEMO_JURISDICTION}`)
  t.equal(demo.modified, (((await get(`/open-data/v1/requests.json?jurisdiction_id=${DEMO_JURISDICTION}`)).json()) as { updated_datetime: string }[]).at(-1)!.updated_datetime, 'each jurisdiction its own extent')
  const pkg = (await get('/open-data/v1/datapackage.json?jurisdiction_id=other.example')).json()
  t.ok(validateDataPackage(pkg), `valid: ${JSON.stringify(validateDataPackage.errors)}`)
  t.equal(pkg.resources[0].path, `${BASE}/open-data/v1/requests.csv?jurisdiction_id=other.example`)
})
