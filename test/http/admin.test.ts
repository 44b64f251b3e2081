import { XMLParser } from 'fast-xml-parser'
import t from 'tap'
import { createApiKey, revokeApiKey } from '../../src/domain/api-keys/api-keys.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR, systemActor } from '../../src/domain/audit/audit.js'

// One database per test file; subtests share it and run in order.
const { app, rawLogs } = await buildTestApp(t)
const admin = await createApiKey(app.db, { name: 'operator', scopes: ['admin'] }, SERVER_ACTOR)
const writer = await createApiKey(app.db, { name: 'client app', scopes: ['requests:write'] }, SERVER_ACTOR)
const revokedAdmin = await createApiKey(app.db, { name: 'former operator', scopes: ['admin'] }, SERVER_ACTOR)
await revokeApiKey(app.db, revokedAdmin.id, systemActor('test'))

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const asAdmin = bearer(admin.key)
const RAW_KEY = /o311_[a-z0-9]{12}_[A-Za-z0-9_-]{43}/g

const catalog = () => ({
  jurisdiction: { id: 'admin.test.example', name: 'Admin Test City', time_zone: 'America/New_York' },
  services: [
    {
      service_code: 'pothole',
      service_name: 'Pothole',
      attributes: [
        {
          code: 'size',
          datatype: 'singlevaluelist',
          description: 'How big?',
          values: [
            { key: 'S', name: 'Small' },
            { key: 'L', name: 'Large' },
          ],
        },
        { code: 'depth_cm', datatype: 'number', description: 'Depth' },
      ],
    },
    { service_code: 'retired', service_name: 'Retired service', active: false },
  ],
})

async function adminServices() {
  const res = await app.inject({ url: '/admin/v1/services', headers: asAdmin })
  return { statusCode: res.statusCode, body: res.body }
}

t.test('without a valid admin key every admin route answers 403 in the Open311 error list', async (t) => {
  const credentials: [string, Record<string, string>][] = [
    ['no Authorization', {}],
    ['a non-admin key', bearer(writer.key)],
    ['a revoked admin key', bearer(revokedAdmin.key)],
    ['a forged secret for the admin key id', bearer(`o311_${admin.key_id}_${'A'.repeat(43)}`)],
    ['the admin key without "Bearer"', { authorization: admin.key }],
    ['Basic auth', { authorization: `Basic ${Buffer.from(`x:${admin.key}`).toString('base64')}` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ]
  const routes = [
    { method: 'GET' as const, url: '/admin/v1/services' },
    { method: 'GET' as const, url: '/admin/v1/keys' },
    { method: 'POST' as const, url: '/admin/v1/keys', payload: { name: 'sneaky', scopes: ['admin'] } },
    { method: 'DELETE' as const, url: `/admin/v1/keys/${admin.id}` },
    { method: 'PUT' as const, url: '/admin/v1/catalog', payload: catalog() },
  ]
  for (const [label, headers] of credentials) {
    for (const route of routes) {
      const res = await app.inject({ ...route, headers })
      t.equal(res.statusCode, 403, `${label}: ${route.method} ${route.url}`)
      t.match(res.headers['content-type'], /^application\/json/)
      t.match(res.json(), [{ code: 403, description: /admin/ }])
      t.equal(res.json().length, 1)
    }
  }
  // Nothing those requests carried took effect.
  const keys = (await app.inject({ url: '/admin/v1/keys', headers: asAdmin })).json() as { name: string; revoked_at: string | null }[]
  t.notOk(keys.some((k) => k.name === 'sneaky'), 'no key was created')
  t.equal(keys.find((k) => k.name === 'operator')?.revoked_at, null, 'the admin key was not revoked')
  t.equal((await adminServices()).statusCode, 404, 'no catalog was imported (no jurisdiction yet)')
})

t.test('PUT /admin/v1/catalog imports and summarises', async (t) => {
  const res = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: catalog() })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { jurisdiction: 'admin.test.example', created: ['pothole', 'retired'], updated: [], unchanged: [] })

  const again = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: catalog() })
  t.equal(again.statusCode, 200)
  t.same(again.json(), { jurisdiction: 'admin.test.example', created: [], updated: [], unchanged: ['pothole', 'retired'] })

  const publicList = await app.inject('/open311/v2/services.json')
  t.same(
    publicList.json().map((s: { service_code: string }) => s.service_code),
    ['pothole'],
    'the public list shows the active service only',
  )
})

t.test('GET /admin/v1/services lists the catalog, inactive services included', async (t) => {
  const res = await app.inject({ url: '/admin/v1/services', headers: asAdmin })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(
    body.map((s: { service_code: string }) => s.service_code),
    ['pothole', 'retired'],
  )
  t.match(body[0], {
    jurisdiction_id: 'admin.test.example',
    service_name: 'Pothole',
    active: true,
    type: 'realtime',
    attributes: [
      { code: 'size', order: 1, datatype: 'singlevaluelist', values: [{ key: 'S' }, { key: 'L' }] },
      { code: 'depth_cm', order: 2, datatype: 'number' },
    ],
  })
  t.match(body[1], { service_code: 'retired', active: false })
  t.notOk('id' in body[0], 'internal ids are not exposed')

  const activeOnly = await app.inject({ url: '/admin/v1/services?include_inactive=false', headers: asAdmin })
  t.same(
    activeOnly.json().map((s: { service_code: string }) => s.service_code),
    ['pothole'],
  )
  const unknown = await app.inject({ url: '/admin/v1/services?jurisdiction_id=nowhere.example', headers: asAdmin })
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json(), [{ code: 404, description: /nowhere\.example/ }])
})

t.test('PUT /admin/v1/catalog with an invalid catalog: 400 naming the field, nothing changed', async (t) => {
  const before = await adminServices()
  const cases: { label: string; field: RegExp; mutate: (c: ReturnType<typeof catalog>) => unknown }[] = [
    {
      label: 'duplicate attribute order',
      field: /services\[0\]\.attributes\[1\]\.order/,
      mutate: (c) => Object.assign(c.services[0]!.attributes![1]!, { order: 1 }),
    },
    {
      label: 'values on a number attribute',
      field: /services\[0\]\.attributes\[1\]\.values/,
      mutate: (c) => Object.assign(c.services[0]!.attributes![1]!, { values: [{ key: 'a', name: 'A' }] }),
    },
    {
      label: 'duplicate service_code',
      field: /services\[1\]\.service_code/,
      mutate: (c) => Object.assign(c.services[1]!, { service_code: 'pothole' }),
    },
    {
      label: 'bad time zone',
      field: /jurisdiction\.time_zone/,
      mutate: (c) => Object.assign(c.jurisdiction, { time_zone: 'Not/AZone' }),
    },
    {
      label: 'unknown attribute field',
      field: /^request body: services\[0\]\.attributes\[0\]\.colour is not a known field \(known: code, /,
      mutate: (c) => Object.assign(c.services[0]!.attributes![0]!, { colour: 'red' }),
    },
    {
      label: 'bad datatype',
      field: /^request body: services\[0\]\.attributes\[1\]\.datatype must be one of string, number, datetime, text, singlevaluelist, multivaluelist \(got "boolean"\)$/,
      mutate: (c) => Object.assign(c.services[0]!.attributes![1]!, { datatype: 'boolean' }),
    },
    {
      label: 'service_code with a space',
      field: /^request body: services\[1\]\.service_code must be 1 to 64 letters, digits, "_" or "-" .*\(got "retired service"\)$/,
      mutate: (c) => Object.assign(c.services[1]!, { service_code: 'retired service' }),
    },
    {
      label: 'a string where a boolean goes (no coercion)',
      field: /^request body: services\[1\]\.active must be true or false \(got "false"\)$/,
      mutate: (c) => Object.assign(c.services[1]!, { active: 'false' }),
    },
  ]
  for (const { label, field, mutate } of cases) {
    const body = catalog()
    body.services[0]!.service_name = 'Pothole (renamed)' // a change a leaky import would apply
    mutate(body)
    const res = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: body })
    t.equal(res.statusCode, 400, `${label}: 400`)
    const errors = res.json()
    t.match(errors, [{ code: 400, description: field }], `${label}: "${errors[0]?.description}" names the field`)
  }
  const malformed = await app.inject({
    method: 'PUT',
    url: '/admin/v1/catalog',
    headers: { ...asAdmin, 'content-type': 'application/json' },
    payload: '{"jurisdiction":',
  })
  t.equal(malformed.statusCode, 400, 'malformed JSON is a 400 too')
  t.same(malformed.json(), [{ code: 400, description: 'request body: (file) is not valid JSON: line 1, column 17: a value was expected, found the end of the text' }])
  const onLine3 = await app.inject({
    method: 'PUT',
    url: '/admin/v1/catalog',
    headers: { ...asAdmin, 'content-type': 'application/json; charset=utf-8' },
    payload: '{\n  "jurisdiction": {},\n  "services": [,]\n}',
  })
  t.equal(onLine3.statusCode, 400)
  t.match(onLine3.json(), [{ code: 400, description: /^request body: \(file\) is not valid JSON: line 3, column 16: a value was expected, found ","$/ }], 'with its line and column')

  t.same(await adminServices(), before, 'the catalog is unchanged')
})

t.test('PUT /admin/v1/catalog reports every fault at once, one error each', async (t) => {
  const before = await adminServices()
  const body = catalog()
  Object.assign(body.jurisdiction, { time_zone: 'Not/AZone', colour: 'red' })
  Object.assign(body.services[0]!, { type: 'weekly' })
  Object.assign(body.services[0]!.attributes![1]!, { order: 1 })
  delete (body.services[1] as { service_name?: string }).service_name
  const res = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: body })
  t.equal(res.statusCode, 400)
  t.same(res.json(), [
    { code: 400, description: 'request body: jurisdiction.colour is not a known field (known: id, name, time_zone, contact, key_service, calendar, retention, default_locale, locales)' },
    { code: 400, description: 'request body: services[0].type must be one of realtime, batch, blackbox (got "weekly")' },
    { code: 400, description: 'request body: services[1].service_name is required' },
    {
      code: 400,
      description: 'request body: jurisdiction.time_zone must be an IANA time zone such as America/Chicago, Europe/Berlin or UTC (got "Not/AZone")',
    },
    { code: 400, description: 'request body: services[0].attributes[1].order 1 appears more than once (first at services[0].attributes[0])' },
  ])
  t.same(await adminServices(), before, 'nothing changed')
})

t.test('PUT /admin/v1/catalog adding a jurisdiction: 409 unless add_jurisdiction=true, then a warning', async (t) => {
  const second = () => ({ ...catalog(), jurisdiction: { id: 'second.test.example', name: 'Second City', time_zone: 'UTC' } })
  const refused = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: second() })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), [
    {
      code: 'new_jurisdiction',
      description:
        /^the catalog adds jurisdiction "second\.test\.example" beside admin\.test\.example: .*every GeoReport request must name its jurisdiction_id \(one of admin\.test\.example, second\.test\.example\).*to add it, send the request again with \?add_jurisdiction=true$/,
    },
  ])
  t.equal((await app.inject('/open311/v2/services.json')).statusCode, 200, 'still one jurisdiction: no jurisdiction_id needed')

  const notABoolean = await app.inject({ method: 'PUT', url: '/admin/v1/catalog?add_jurisdiction=perhaps', headers: asAdmin, payload: second() })
  t.equal(notABoolean.statusCode, 400)
  t.match(notABoolean.json(), [{ code: 400, description: /add_jurisdiction/ }])

  const added = await app.inject({ method: 'PUT', url: '/admin/v1/catalog?add_jurisdiction=true', headers: asAdmin, payload: second() })
  t.equal(added.statusCode, 200)
  t.match(added.json(), {
    jurisdiction: 'second.test.example',
    created: ['pothole', 'retired'],
    warnings: [/^jurisdiction "second\.test\.example" was added beside admin\.test\.example: .*must name its jurisdiction_id/],
  })
  const required = await app.inject('/open311/v2/services.json')
  t.same(required.json(), [
    { code: 400, description: 'jurisdiction_id is required: this server serves several jurisdictions (admin.test.example, second.test.example)' },
  ])
  const again = await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: second() })
  t.equal(again.statusCode, 200, 'a served jurisdiction needs no confirmation')
  t.notOk('warnings' in again.json())
})

t.test('POST /admin/v1/keys creates a key and shows it once', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAdmin, payload: { name: 'partner app' } })
  t.equal(res.statusCode, 201)
  const created = res.json()
  t.match(created, { name: 'partner app', scopes: ['requests:write'], revoked_at: null, key_id: /^[a-z0-9]{12}$/ })
  t.match(created.key, /^o311_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/)
  t.equal(created.key.slice(5, 17), created.key_id)

  const list = await app.inject({ url: '/admin/v1/keys', headers: asAdmin })
  t.equal(list.statusCode, 200)
  const keys = list.json() as { id: number; name: string }[]
  t.ok(
    keys.some((k) => k.id === created.id && k.name === 'partner app'),
    'the new key is listed',
  )
  t.same(list.body.match(RAW_KEY), null, 'no raw key anywhere in the listing')
  for (const raw of [created.key, admin.key, writer.key]) t.notOk(list.body.includes(raw.slice(18)), 'not even a secret part')
  t.ok(
    keys.every((k) => !('key' in k)),
    'no "key" property',
  )
  t.notOk(rawLogs().includes(created.key.slice(18)), 'the raw key was not logged either')
})

t.test('DELETE /admin/v1/keys/:id revokes at once', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAdmin, payload: { name: 'deputy', scopes: ['admin'] } })
  const deputy = res.json()
  const asDeputy = bearer(deputy.key)
  t.equal((await app.inject({ url: '/admin/v1/keys', headers: asDeputy })).statusCode, 200, 'the new admin key works')

  const revoke = await app.inject({ method: 'DELETE', url: `/admin/v1/keys/${deputy.id}`, headers: asAdmin })
  t.equal(revoke.statusCode, 200)
  t.match(revoke.json(), { id: deputy.id, name: 'deputy', revoked_at: String })
  t.notOk('key' in revoke.json())

  const after = await app.inject({ url: '/admin/v1/keys', headers: asDeputy })
  t.equal(after.statusCode, 403, 'the revoked key is refused on the next request')
  t.match(after.json(), [{ code: 403 }])
  t.equal((await app.inject({ url: '/admin/v1/keys', headers: asAdmin })).statusCode, 200, 'other admin keys still work')

  const twice = await app.inject({ method: 'DELETE', url: `/admin/v1/keys/${deputy.id}`, headers: asAdmin })
  t.equal(twice.statusCode, 200, 'revoking twice is harmless')
  t.equal(twice.json().revoked_at, revoke.json().revoked_at, 'and keeps the first time')
})

t.test('DELETE of an unknown or malformed id', async (t) => {
  const unknown = await app.inject({ method: 'DELETE', url: '/admin/v1/keys/987654321', headers: asAdmin })
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json(), [{ code: 404, description: /987654321/ }])
  for (const id of ['abc', '0', '-1']) {
    const res = await app.inject({ method: 'DELETE', url: `/admin/v1/keys/${id}`, headers: asAdmin })
    t.equal(res.statusCode, 400, `id ${id}`)
    t.match(res.json(), [{ code: 400, description: /id/ }])
  }
})

t.test('POST /admin/v1/keys rejects unknown fields and scopes', async (t) => {
  const before = (await app.inject({ url: '/admin/v1/keys', headers: asAdmin })).json().length
  const bodies: [string, unknown, RegExp][] = [
    ['unknown field', { name: 'x', expires: '2030-01-01' }, /expires/],
    ['unknown scope', { name: 'x', scopes: ['superuser'] }, /scopes/],
    ['empty scopes', { name: 'x', scopes: [] }, /scopes/],
    ['missing name', { scopes: ['admin'] }, /name/],
    ['empty name', { name: '' }, /name/],
  ]
  for (const [label, payload, field] of bodies) {
    const res = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAdmin, payload: payload as object })
    t.equal(res.statusCode, 400, label)
    t.match(res.json(), [{ code: 400, description: field }], `${label}: ${res.json()[0]?.description}`)
  }
  t.equal((await app.inject({ url: '/admin/v1/keys', headers: asAdmin })).json().length, before, 'no key was created')
})

t.test('an unknown admin path is a 404 error list, in XML when the URL asks for it', async (t) => {
  const json = await app.inject({ url: '/admin/v1/nothing', headers: asAdmin })
  t.equal(json.statusCode, 404)
  t.match(json.json(), [{ code: 404, description: 'no resource at GET /admin/v1/nothing' }])
  const missing = await app.inject({ url: '/admin/v1/nothing.xml', headers: asAdmin })
  t.equal(missing.statusCode, 404)
  t.match(missing.headers['content-type'], /^text\/xml/)
  const parsed = new XMLParser({ isArray: (name) => name === 'error' }).parse(missing.body)
  t.match(parsed.errors.error, [{ code: 404, description: /no resource/ }])
})
