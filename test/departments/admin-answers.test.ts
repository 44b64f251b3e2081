/**
 * The admin API's answers for departments where a newcomer went wrong: registering a code twice
 * (409, also when two registrations race), and the body of PUT …/routes (both shapes accepted;
 * any other shape answered with both).
 */
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { importCatalog } from '../../src/domain/catalog/catalog.js'
import { validateCatalog } from '../../src/domain/catalog/validate-catalog.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

// One database per test file; subtests share it and run in order.
const { app } = await buildTestApp(t)
await importCatalog(
  app.db,
  validateCatalog(
    { jurisdiction: { id: 'answers.example', name: 'Answers City', time_zone: 'UTC' }, services: [{ service_code: 'pothole', service_name: 'Pothole' }] },
    'test',
  ), {}, SERVER_ACTOR,
)
const admin = await createApiKey(app.db, { name: 'operator', scopes: ['admin'] }, SERVER_ACTOR)
const asAdmin = { authorization: `Bearer ${admin.key}` }

const register = (code: string) =>
  app.inject({ method: 'POST', url: '/admin/v1/departments', headers: asAdmin, payload: { code, name: `Dept ${code}` } })
const putRoutes = (payload: unknown) =>
  app.inject({ method: 'PUT', url: '/admin/v1/services/pothole/routes', headers: asAdmin, payload: payload as object })

t.test('registering a department code twice is a 409 conflict, also when both arrive at once', async (t) => {
  t.equal((await register('streets')).statusCode, 201)
  const again = await register('streets')
  t.equal(again.statusCode, 409)
  t.same(again.json(), [{ code: 409, description: 'code: a department "streets" already exists' }])

  const racing = await Promise.all([register('parks'), register('parks'), register('parks')])
  t.same(racing.map((r) => r.statusCode).sort(), [201, 409, 409], 'exactly one registration wins; the others are told why')
  const listed = (await app.inject({ url: '/admin/v1/departments', headers: asAdmin })).json() as { code: string }[]
  t.same(listed.map((d) => d.code).sort(), ['parks', 'streets'])
})

t.test('PUT …/routes takes a list of routes, or {"departments": [codes]} as default routes', async (t) => {
  const list = await putRoutes([{ department: 'streets' }])
  t.equal(list.statusCode, 200)
  t.same(list.json(), [{ department: 'streets', area_name: null, has_area: false }])

  const codes = await putRoutes({ departments: ['streets', 'parks'] })
  t.equal(codes.statusCode, 200, codes.body)
  t.same(codes.json(), [
    { department: 'streets', area_name: null, has_area: false },
    { department: 'parks', area_name: null, has_area: false },
  ])
  const unknown = await putRoutes({ departments: ['nobody'] })
  t.equal(unknown.statusCode, 404, 'an unknown department in either shape is named')
  t.match(unknown.json(), [{ code: 404, description: /nobody/ }])
})

t.test('PUT …/routes with neither shape: 400 showing both', async (t) => {
  const expected = /^body: must be a list of routes, \[\{"department": "streets"\}, \{"department": "streets-north", "area_name": "Ward 1", "area": \{"type": "Polygon", .*\}\}\], or \{"departments": \["streets", "parks"\]\} \(each a default route, without an area\)$/
  for (const [label, payload] of [
    ['departments as route objects', { departments: [{ department: 'streets' }] }],
    ['another wrapper', { routes: [{ department: 'streets' }] }],
    ['one route, not in a list', { department: 'streets' }],
  ] as const) {
    const res = await app.inject({
      method: 'PUT',
      url: '/admin/v1/services/pothole/routes',
      headers: { ...asAdmin, 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    })
    t.equal(res.statusCode, 400, `${label}: 400`)
    t.match(res.json(), [{ code: 400, description: expected }], `${label}: ${res.body}`)
  }
  const inside = await putRoutes([{ dept: 'streets' }])
  t.equal(inside.statusCode, 400)
  t.match(inside.json(), [{ code: 400, description: /department/ }], 'a fault inside a route keeps its own message')
  t.notMatch(inside.body, /must be a list of routes/)
})
