import { asc, eq, sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { ATTRIBUTE_DATATYPES, jurisdictions, serviceAttributes, services } from '../../src/db/schema.js'
import { importCatalog, loadCatalogServices } from '../../src/domain/catalog/catalog.js'
import { parseCatalogJson, readCatalog } from '../../src/domain/catalog/catalog-json.js'
import { CatalogError, MAX_LISTED_FAULTS, validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import { DomainError } from '../../src/domain/errors.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { sqlState } from '../helpers/query.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

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


const importFixture = (data: unknown) => importCatalog(db, validateCatalog(data, 'test'), {}, SERVER_ACTOR)

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

const DATATYPES = ATTRIBUTE_DATATYPES.join(', ')

/** Each entry: how to break a valid catalog, the one field path the error must name, and what it must say. */
const invalid: { name: string; field: string; detail: RegExp; mutate: (c: RawCatalog) => void }[] = [
  {
    name: 'unknown attribute field',
    field: 'services[0].attributes[1].colour',
    detail: /^is not a known field \(known: code, datatype, description, datatype_description, variable, required, public, order, values, translations\)$/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![1]!, { colour: 'red' }),
  },
  {
    name: 'bad datatype',
    field: 'services[1].attributes[2].datatype',
    detail: new RegExp(`^must be one of ${DATATYPES} \\(got "boolean"\\)$`),
    mutate: (c) => Object.assign(c.services[1]!.attributes![2]!, { datatype: 'boolean' }),
  },
  {
    name: 'duplicate service_code',
    field: 'services[2].service_code',
    detail: /^"pothole" appears more than once \(first at services\[0\]\)$/,
    mutate: (c) => Object.assign(c.services[2]!, { service_code: 'pothole' }),
  },
  {
    name: 'duplicate attribute order',
    field: 'services[0].attributes[1].order',
    detail: /^1 appears more than once \(first at services\[0\]\.attributes\[0\]\)$/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![1]!, { order: 1 }),
  },
  {
    name: 'implicit order colliding with an explicit one',
    field: 'services[1].attributes[1].order',
    detail: /^2 appears more than once \(first at services\[1\]\.attributes\[0\]\): without an order, an attribute's order is its position/,
    mutate: (c) => Object.assign(c.services[1]!.attributes![0]!, { order: 2 }),
  },
  {
    name: 'duplicate attribute code',
    field: 'services[0].attributes[2].code',
    detail: /^"size" appears more than once/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![2]!, { code: 'size' }),
  },
  {
    name: 'list datatype without values',
    field: 'services[1].attributes[0].values',
    detail: /^is required for datatype multivaluelist: a list of \{"key", "name"\} choices$/,
    mutate: (c) => delete c.services[1]!.attributes![0]!.values,
  },
  {
    name: 'values on a string datatype',
    field: 'services[1].attributes[2].values',
    detail: /^is only allowed for list datatypes \(singlevaluelist, multivaluelist\), not string$/,
    mutate: (c) => Object.assign(c.services[1]!.attributes![2]!, { values: [{ key: 'a', name: 'A' }] }),
  },
  {
    name: 'duplicate value key',
    field: 'services[0].attributes[0].values[1].key',
    detail: /^"S" appears more than once \(first at services\[0\]\.attributes\[0\]\.values\[0\]\)$/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![0]!, { values: [{ key: 'S', name: 'a' }, { key: 'S', name: 'b' }] }),
  },
  {
    name: 'bad time zone',
    field: 'jurisdiction.time_zone',
    detail: /^must be an IANA time zone such as America\/Chicago, Europe\/Berlin or UTC \(got "Mars\/Olympus_Mons"\)$/,
    mutate: (c) => Object.assign(c.jurisdiction, { time_zone: 'Mars/Olympus_Mons' }),
  },
  {
    name: 'service_code with a space',
    field: 'services[1].service_code',
    detail: /^must be 1 to 64 letters, digits, "_" or "-" \(clients put it in URLs unescaped\) \(got "graffiti removal"\)$/,
    mutate: (c) => Object.assign(c.services[1]!, { service_code: 'graffiti removal' }),
  },
  {
    name: 'missing service_name',
    field: 'services[2].service_name',
    detail: /^is required$/,
    mutate: (c) => delete (c.services[2] as Partial<RawService>).service_name,
  },
  {
    name: 'unknown privacy',
    field: 'services[1].privacy',
    detail: /^must be one of standard, sensitive \(got "secret"\)$/,
    mutate: (c) => Object.assign(c.services[1]!, { privacy: 'secret' }),
  },
  {
    name: 'privacy as a boolean: one fault, though both type and enum fail',
    field: 'services[0].privacy',
    detail: /^must be one of standard, sensitive \(got true\)$/,
    mutate: (c) => Object.assign(c.services[0]!, { privacy: true }),
  },
  {
    name: 'order of zero',
    field: 'services[0].attributes[0].order',
    detail: /^must be a whole number from 1 to 10000 \(got 0\)$/,
    mutate: (c) => Object.assign(c.services[0]!.attributes![0]!, { order: 0 }),
  },
  {
    name: 'a name too long',
    field: 'services[0].service_name',
    detail: /^must be text of 1 to 200 characters \(got "x{60}…", 201 characters\)$/,
    mutate: (c) => Object.assign(c.services[0]!, { service_name: 'x'.repeat(201) }),
  },
  {
    name: 'a service level with both deadlines',
    field: 'services[0].service_level',
    detail: /^must be an object with exactly one of hours, business_days \(got an object with hours, business_days\)$/,
    mutate: (c) => Object.assign(c.services[0]!, { service_level: { hours: 4, business_days: 1 } }),
  },
  {
    name: 'a working day twice',
    field: 'jurisdiction.calendar.working_days',
    detail: /^must not repeat an item \(got 1 at \[0\] and \[1\]\)$/,
    mutate: (c) => Object.assign(c.jurisdiction, { calendar: { working_days: [1, 1, 2] } }),
  },
  {
    name: 'a holiday that does not exist',
    field: 'jurisdiction.calendar.holidays[1]',
    detail: /^"2026-02-30" is not a date/,
    mutate: (c) => Object.assign(c.jurisdiction, { calendar: { holidays: ['2026-12-25', '2026-02-30'] } }),
  },
  {
    name: 'keywords not a list',
    field: 'services[0].keywords',
    detail: /^must be a list of at most 100 items \(got "road"\)$/,
    mutate: (c) => Object.assign(c.services[0]!, { keywords: 'road' }),
  },
]

t.test('invalid catalogs throw CatalogError naming the field, the bad value and what is allowed, and change nothing', async (t) => {
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
    t.ok(caught instanceof DomainError && caught.kind === 'invalid', `${name}: a DomainError of kind invalid (400 on HTTP)`)
    const error = caught as CatalogError
    t.same(error.faults.map((f) => f.field), [field], `${name}: one fault, at ${field}`)
    t.match(error.faults[0]?.detail, detail, `${name}: says what is wrong: "${error.faults[0]?.detail}"`)
    t.equal(error.message, `test: ${field} ${error.faults[0]?.detail}`, `${name}: the message is source, field and detail`)
  }
  t.same(await snapshot(), before, 'nothing in the database changed')
})

t.test('every fault of a catalog is reported at once, in one error', async (t) => {
  const data = fixture()
  Object.assign(data.jurisdiction, { time_zone: 'Mars/Olympus_Mons' })
  Object.assign(data.services[0]!, { privacy: 'secret', colour: 'red' })
  Object.assign(data.services[0]!.attributes![1]!, { datatype: 'boolean', order: 1 })
  Object.assign(data.services[1]!, { service_code: 'pothole' })
  delete data.services[1]!.attributes![0]!.values
  Object.assign(data.services[2]!, { service_name: 'bad\u0000name' })
  const error = (() => {
    try {
      validateCatalog(data, 'city.json')
    } catch (err) {
      return err as CatalogError
    }
  })()
  t.ok(error instanceof CatalogError)
  t.same(
    error!.faults.map((f) => f.field).sort(),
    [
      'jurisdiction.time_zone',
      'services[0].attributes[1].datatype',
      'services[0].attributes[1].order',
      'services[0].colour',
      'services[0].privacy',
      'services[1].attributes[0].values',
      'services[1].service_code',
      'services[2].service_name',
    ],
    'schema faults, unsafe text and the rules beyond the schema, together',
  )
  t.equal(error!.problems.length, 8, 'one Open311 error item per fault')
  t.ok(error!.problems.every((p) => p.description.startsWith('city.json: ')), 'each names the source')
  t.match(error!.message, /^city\.json: 8 problems\n {2}\S/, 'the message counts them and lists one a line')
  t.equal(error!.message.split('\n').length, 9)
  t.match(error!.message, /\n {2}services\[2\]\.service_name must not contain NUL characters \(U\+0000\)(\n|$)/)
})

t.test('more than a hundred faults: the first hundred and a count of the rest', async (t) => {
  const data = fixture()
  data.services = Array.from({ length: 150 }, (_, i) => ({ service_code: `s${i}`, service_name: 'S', type: 'weekly' }))
  const error = (() => {
    try {
      validateCatalog(data, 'big.json')
    } catch (err) {
      return err as CatalogError
    }
  })()
  t.equal(error?.faults.length, 150, 'all are kept on the error')
  t.equal(error?.problems.length, MAX_LISTED_FAULTS + 1)
  t.equal(error?.problems.at(-1)?.description, 'big.json: … and 50 more problems like these')
  t.match(error?.problems[0]?.description, /^big\.json: services\[0\]\.type must be one of realtime, batch, blackbox \(got "weekly"\)$/)
})

t.test('JSON syntax errors give the line and column', async (t) => {
  const cases: [name: string, text: string, detail: RegExp][] = [
    ['a bare word', '{\n  "jurisdiction": {\n    "id": tru\n  }\n}', /^is not valid JSON: line 3, column 11: this is not JSON .*, found "tru"$/],
    ['a missing comma', '{\n  "jurisdiction": {}\n  "services": []\n}', /^is not valid JSON: line 3, column 3: a "," was expected between the items, found "\\"services\\""$/],
    ['a trailing comma', '{"services": [1, 2,]}', /^is not valid JSON: line 1, column 20: a value was expected, found "\]" \(a comma before a closing bracket is not allowed\)$/],
    ['cut short', '{\n "jurisdiction": {\n', /^is not valid JSON: line 3, column 1: .*found the end of the text$/],
    ['single quotes', "{'a': 1}", /^is not valid JSON: line 1, column 2: this is not JSON/],
    ['a comment', '{\n// the city\n"a": 1}', /^is not valid JSON: line 2, column 1: comments are not allowed in JSON/],
    ['empty', ' \n', /^is empty: expected a catalog \(JSON\)$/],
  ]
  for (const [name, text, detail] of cases) {
    t.throws(() => parseCatalogJson(text, 'city.json'), CatalogError, name)
    try {
      parseCatalogJson(text, 'city.json')
    } catch (err) {
      const error = err as CatalogError
      t.same(error.faults.map((f) => f.field), ['(file)'], `${name}: the file is at fault`)
      t.match(error.faults[0]?.detail, detail, `${name}: ${error.message}`)
      t.ok(error.message.startsWith('city.json: (file) '), `${name}: names the source`)
    }
  }
  t.same(parseCatalogJson('\uFEFF{"a": [1]}', 'bom.json'), { a: [1] }, 'a byte-order mark (Windows editors) is not an error')
  t.same(readCatalog(JSON.stringify(fixture()), 'ok.json').services.map((s) => s.service_code), ['pothole', 'graffiti', 'feedback'])
})

t.test('a catalog adding a jurisdiction beside others: refused unless confirmed, and a confirmed one warns', async (t) => {
  const served = async () => (await db.select({ id: jurisdictions.id }).from(jurisdictions)).map((r) => r.id).sort()
  const before = await served()
  t.ok(before.includes(JURISDICTION), 'the test jurisdiction is served already')
  const other = () => {
    const data = fixture()
    data.jurisdiction.id = 'second.example'
    return validateCatalog(data, 'second.json')
  }
  const refused = await importCatalog(db, other(), { newJurisdiction: { confirmed: false, howToConfirm: 'say yes' } }, SERVER_ACTOR).then(
    () => undefined,
    (err: unknown) => err,
  )
  t.ok(refused instanceof DomainError && refused.kind === 'conflict', 'a conflict (409 on HTTP)')
  const problem = (refused as DomainError).problems[0]
  t.equal(problem?.code, 'new_jurisdiction')
  t.match(problem?.description, /^the catalog adds jurisdiction "second\.example" beside .*catalog\.test\.example.*: once this server serves several jurisdictions, every GeoReport request must name its jurisdiction_id \(one of .*second\.example.*\).*Nothing was imported; to add it, say yes$/)
  t.same(await served(), before, 'nothing was imported')

  const confirmed = await importCatalog(db, other(), { newJurisdiction: { confirmed: true, howToConfirm: 'say yes' } }, SERVER_ACTOR)
  t.same(confirmed.created, ['pothole', 'graffiti', 'feedback'])
  t.match(confirmed.warnings, [/^jurisdiction "second\.example" was added beside .*: once this server serves several jurisdictions, every GeoReport request must name its jurisdiction_id/])
  t.same(await served(), [...before, 'second.example'].sort())

  const again = await importCatalog(db, other(), { newJurisdiction: { confirmed: false, howToConfirm: 'say yes' } }, SERVER_ACTOR)
  t.same(again.unchanged, ['pothole', 'graffiti', 'feedback'], 'an existing jurisdiction needs no confirmation')
  t.notOk('warnings' in again, 'and carries no warning')
})

t.test('an unknown top-level field is named, with the known ones', async (t) => {
  const data = Object.assign(fixture(), { extra: true })
  t.throws(() => validateCatalog(data, 'test'), { name: 'CatalogError', message: /^test: extra is not a known field \(known: jurisdiction, services\)$/ })
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
  const error = await importCatalog(db, catalog, {}, SERVER_ACTOR).then(
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
