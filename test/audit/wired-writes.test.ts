/**
 * The operators' writes each leave one audit entry, in their own transaction: who (the admin
 * key's id and name, or the CLI), what, and each changed field before and after — and never a
 * secret: the whole table is searched for the raw keys, their hashes, signing secrets and a
 * webhook URL's token.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { changedFields, MASKED } from '../../src/domain/audit/audit.js'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'
import { inProcessCli } from '../helpers/cli.js'
import { type AuditEntry, auditEntriesSince } from '../helpers/audit.js'

const JURISDICTION = { id: 'audit.test.example', name: 'Audit City', time_zone: 'America/Chicago' }
const SERVICES = [
  { service_code: 'pothole', service_name: 'Pothole' },
  { service_code: 'graffiti', service_name: 'Graffiti' },
]
const h = await buildDepartmentHarness(t, { jurisdiction: JURISDICTION, services: SERVICES })
const { app, asAdmin, admin, rows } = h
const cli = inProcessCli(h.database, app.config)

/** The entries added since the last call, oldest first. */
const newEntries = auditEntriesSince(app.db)
/** Every value this file must never find in the audit table. */
const secrets: string[] = []
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const byAdmin = { actor_kind: 'key', actor_key_id: admin.id, actor_name: 'operator' }
const byCli = { actor_kind: 'cli', actor_key_id: null, actor_name: 'cli' }

await newEntries() // the harness's own setup (catalog import, keys) as the server

t.test('changedFields keeps changed fields only and masks personal data', async (t) => {
  const changes = changedFields(
    { name: 'A', email: 'jane@example.org', phone: null, device_id: 'dev-1', same: [1, { b: 2, a: 1 }], at: new Date('2026-01-01T00:00:00Z') },
    { name: 'B', email: 'joe@example.org', phone: '555-0100', device_id: 'dev-1', same: [1, { a: 1, b: 2 }], at: new Date('2026-01-02T00:00:00Z'), note: 'x' },
    { mask: ['note'] },
  )
  t.same(changes, {
    name: { before: 'A', after: 'B' },
    email: { before: MASKED, after: MASKED },
    phone: { before: null, after: MASKED },
    at: { before: '2026-01-01T00:00:00.000Z', after: '2026-01-02T00:00:00.000Z' },
    note: { before: null, after: MASKED },
  })
  t.notMatch(JSON.stringify(changes), /jane|joe|555-0100|dev-1/)
})

t.test('admin API: an API key created and revoked', async (t) => {
  const created = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAdmin, payload: { name: 'kiosk', scopes: ['requests:write'], default_channel: 'walk_in' } })
  t.equal(created.statusCode, 201)
  const key = created.json() as { id: number; key: string; key_id: string }
  secrets.push(key.key, sha256(key.key))
  t.match(await newEntries(), [
    {
      ...byAdmin,
      action: 'api_key.created',
      entity_type: 'api_key',
      entity_id: String(key.id),
      changes: {
        key_id: { before: null, after: key.key_id },
        name: { before: null, after: 'kiosk' },
        scopes: { before: null, after: ['requests:write'] },
        default_channel: { before: null, after: 'walk_in' },
        secret: { before: null, after: MASKED },
      },
    },
  ])
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/v1/keys/${key.id}`, headers: asAdmin })).statusCode, 200)
  const [revoked, ...more] = await newEntries()
  t.same(more, [])
  t.match(revoked, { ...byAdmin, action: 'api_key.revoked', entity_id: String(key.id), changes: { revoked_at: { before: null, after: String } } })
  t.same(Object.keys(revoked!.changes), ['revoked_at'], 'only what changed')
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/v1/keys/${key.id}`, headers: asAdmin })).statusCode, 200)
  t.same(await newEntries(), [], 'a second revocation changes nothing and records nothing')
})

t.test('admin API: a department registered, changed and its secret rotated', async (t) => {
  const webhook = 'https://hooks.example.net/streets?token=tok-audit-7731'
  secrets.push('tok-audit-7731')
  const registered = await app.inject({
    method: 'POST',
    url: '/admin/v1/departments',
    headers: asAdmin,
    payload: { code: 'streets', name: 'Streets', contact: 'streets@city.example', status_map: { DONE: 'completed' } },
  })
  t.equal(registered.statusCode, 201, registered.body)
  const body = registered.json() as { signing_secret: string; inbound_api_key: string }
  secrets.push(body.signing_secret, body.signing_secret.replace(/^whsec_/, ''), body.inbound_api_key, sha256(body.inbound_api_key))
  const [inboundKey, department, ...more] = await newEntries()
  t.same(more, [])
  t.match(inboundKey, { ...byAdmin, action: 'api_key.created', changes: { name: { after: 'department:streets' }, scopes: { after: ['department'] } } })
  t.match(department, {
    ...byAdmin,
    action: 'department.created',
    entity_type: 'department',
    entity_id: 'streets',
    jurisdiction_id: JURISDICTION.id,
    changes: {
      name: { before: null, after: 'Streets' },
      contact: { before: null, after: 'streets@city.example' },
      status_map: { before: null, after: { DONE: 'completed' } },
      enabled: { before: null, after: true },
      signing_secret: { before: null, after: MASKED },
    },
  })

  const patched = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: asAdmin, payload: { name: 'Streets & Roads', contact: 'streets@city.example' } })
  t.equal(patched.statusCode, 200, patched.body)
  t.same(await newEntries().then((e) => e.map(({ action, changes }) => ({ action, changes }))), [
    { action: 'department.updated', changes: { name: { before: 'Streets', after: 'Streets & Roads' } } },
  ], 'only the field that changed')

  const rotated = await app.inject({ method: 'POST', url: '/admin/v1/departments/streets/rotate-secret', headers: asAdmin, payload: { overlap_hours: 2 } })
  t.equal(rotated.statusCode, 200)
  const secret = (rotated.json() as { signing_secret: string }).signing_secret
  secrets.push(secret, secret.replace(/^whsec_/, ''))
  t.match(await newEntries(), [
    { ...byAdmin, action: 'department.secret_rotated', entity_id: 'streets', changes: { signing_secret: { before: MASKED, after: MASKED }, secret_overlap_hours: { before: null, after: 2 } } },
  ])

  // A webhook URL keeps its scheme and host; of its path, query and credentials (where tokens
  // are) only a fingerprint, which shows a token's change (the tests' receivers are on loopback).
  const fingerprinted = /^http:\/\/127\.0\.0\.1:9\/\[masked\]#sha256=[0-9a-f]{12}$/
  const receiver = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: asAdmin, payload: { webhook_url: webhook.replace('https://hooks.example.net', 'http://127.0.0.1:9') } })
  t.equal(receiver.statusCode, 200, receiver.body)
  const [moved] = await newEntries()
  t.match(moved, { action: 'department.updated', changes: { webhook_url: { before: null, after: fingerprinted } } })
  const tokenChanged = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: asAdmin, payload: { webhook_url: `http://127.0.0.1:9/streets?token=${'b'.repeat(24)}` } })
  t.equal(tokenChanged.statusCode, 200, tokenChanged.body)
  const [retokened] = await newEntries()
  const change = retokened!.changes.webhook_url as { before: string; after: string }
  t.match(change, { before: fingerprinted, after: fingerprinted }, 'only the token changed: still an entry')
  t.not(change.before, change.after, 'its fingerprints differ')
  secrets.push('b'.repeat(24))
})

t.test('admin API: routes, department service levels and templates', async (t) => {
  await h.registerDepartment({ code: 'parks' })
  secrets.push(...(await rows<{ ciphertext: string }>(sql`select ciphertext from department_secrets`)).map((r) => r.ciphertext))
  await newEntries()
  await h.setRoutes('pothole', [{ department: 'streets' }])
  t.match(await newEntries(), [
    { ...byAdmin, action: 'service.routes_set', entity_type: 'service', entity_id: 'pothole', changes: { routes: { before: [], after: [{ department: 'streets', area_name: null, area: null }] } } },
  ])
  await h.setRoutes('pothole', [{ department: 'streets' }])
  t.same(await newEntries(), [], 'the same routes again: nothing changed, nothing recorded')
  const area = { type: 'Polygon', coordinates: [[[-87.7, 41.8], [-87.6, 41.8], [-87.6, 41.9], [-87.7, 41.8]]] }
  await h.setRoutes('pothole', [{ department: 'streets' }, { department: 'parks', area_name: 'Ward 1', area }])
  const [routes] = await newEntries()
  t.match(routes?.changes.routes, { before: [{ department: 'streets' }], after: [{ department: 'streets' }, { department: 'parks', area_name: 'Ward 1', area: { type: 'MultiPolygon' } }] })

  const refused = await app.inject({ method: 'PUT', url: '/admin/v1/services/pothole/routes', headers: asAdmin, payload: [{ department: 'nobody' }] })
  t.equal(refused.statusCode, 404)
  t.same(await newEntries(), [], 'a refused write leaves no entry (it rolled back with the change)')

  const levels = (service_levels: unknown[]) =>
    app.inject({ method: 'PUT', url: '/admin/v1/departments/streets/service-levels', headers: asAdmin, payload: { service_levels } })
  t.equal((await levels([{ service_code: 'pothole', hours: 48 }])).statusCode, 200)
  t.equal((await levels([{ service_code: 'pothole', business_days: 3 }])).statusCode, 200)
  t.match(await newEntries(), [
    { ...byAdmin, action: 'department.service_levels_set', entity_id: 'streets', changes: { service_levels: { before: [], after: [{ service_code: 'pothole', hours: 48 }] } } },
    { changes: { service_levels: { before: [{ service_code: 'pothole', hours: 48 }], after: [{ service_code: 'pothole', business_days: 3 }] } } },
  ])

  const template = (body: Record<string, unknown>) => app.inject({ method: 'PUT', url: '/admin/v1/templates/received', headers: asAdmin, payload: body })
  t.equal((await template({ public_text: 'We have it.' })).statusCode, 200)
  t.equal((await template({ public_text: 'We have it.' })).statusCode, 200)
  t.equal((await template({ public_text: 'We have it: {service_request_id}.', service_code: 'graffiti' })).statusCode, 200)
  t.match(await newEntries(), [
    { ...byAdmin, action: 'response_template.created', entity_type: 'response_template', entity_id: 'received', changes: { public_text: { before: null, after: 'We have it.' }, active: { before: null, after: true } } },
    { action: 'response_template.updated', changes: { public_text: { before: 'We have it.', after: 'We have it: {service_request_id}.' }, service_code: { before: null, after: 'graffiti' } } },
  ])
})

t.test('admin API: a catalog import records each changed service and the jurisdiction', async (t) => {
  const put = (catalog: Record<string, unknown>) => app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: catalog })
  t.equal((await put({ jurisdiction: JURISDICTION, services: SERVICES })).statusCode, 200)
  t.same(await newEntries(), [], 'the same catalog: nothing recorded')
  const changed = { jurisdiction: { ...JURISDICTION, name: 'Audit City Hall' }, services: [{ ...SERVICES[0], service_name: 'Pothole or sinkhole' }, SERVICES[1], { service_code: 'litter', service_name: 'Litter' }] }
  const imported = await put(changed)
  t.equal(imported.statusCode, 200, imported.body)
  const entries = await newEntries()
  t.match(entries, [
    { ...byAdmin, action: 'jurisdiction.updated', entity_type: 'jurisdiction', entity_id: JURISDICTION.id, changes: { name: { before: 'Audit City', after: 'Audit City Hall' } } },
    { ...byAdmin, action: 'service.updated', entity_id: 'pothole', changes: { service_name: { before: 'Pothole', after: 'Pothole or sinkhole' } } },
    { ...byAdmin, action: 'service.created', entity_id: 'litter', changes: { service_name: { before: null, after: 'Litter' } } },
  ])
  t.same(Object.keys(entries[0]!.changes), ['name'])
  t.same(Object.keys(entries[1]!.changes), ['service_name'])
})

t.test('CLI: the same writes are recorded as the CLI', async (t) => {
  const created = await cli('keys', 'create', '--name', 'cli kiosk', '--scope', 'requests:write')
  t.equal(created.code, 0, created.stderr)
  const rawKey = created.stdout.trim().split('\n').at(-1)!
  secrets.push(rawKey, sha256(rawKey))
  const [keyEntry] = await newEntries()
  t.match(keyEntry, { ...byCli, action: 'api_key.created', changes: { name: { after: 'cli kiosk' } } })
  t.equal((await cli('keys', 'revoke', keyEntry!.entity_id)).code, 0)
  t.match(await newEntries(), [{ ...byCli, action: 'api_key.revoked', entity_id: keyEntry!.entity_id }])

  const department = await cli('departments', 'create', '--code', 'water', '--name', 'Water', '--jurisdiction-id', JURISDICTION.id)
  t.equal(department.code, 0, department.stderr)
  for (const line of department.stdout.split('\n')) {
    const shown = /: (\S+)$/.exec(line)?.[1]
    if (shown) secrets.push(shown, sha256(shown))
  }
  t.match(await newEntries(), [
    { ...byCli, action: 'api_key.created' },
    { ...byCli, action: 'department.created', entity_id: 'water' },
  ])
  const rotated = await cli('departments', 'rotate-secret', 'water', '--overlap-hours', '1', '--jurisdiction-id', JURISDICTION.id)
  t.equal(rotated.code, 0, rotated.stderr)
  secrets.push(rotated.stdout.trim().split('\n').at(-1)!)
  t.match(await newEntries(), [{ ...byCli, action: 'department.secret_rotated', entity_id: 'water' }])

  t.equal((await cli('routes', 'set', 'graffiti', '--department', 'water', '--jurisdiction-id', JURISDICTION.id)).code, 0)
  t.match(await newEntries(), [{ ...byCli, action: 'service.routes_set', entity_id: 'graffiti', changes: { routes: { before: [], after: [{ department: 'water' }] } } }])

  const dir = await mkdtemp(join(tmpdir(), 'audit-cli-'))
  await writeFile(join(dir, 'catalog.json'), JSON.stringify({ jurisdiction: JURISDICTION, services: [{ service_code: 'graffiti', service_name: 'Graffiti removal' }] }))
  const imported = await cli('services', 'import', join(dir, 'catalog.json'))
  t.equal(imported.code, 0, imported.stderr)
  t.match(await newEntries(), [
    { ...byCli, action: 'jurisdiction.updated', changes: { name: { before: 'Audit City Hall', after: 'Audit City' } } },
    { ...byCli, action: 'service.updated', entity_id: 'graffiti', changes: { service_name: { before: 'Graffiti', after: 'Graffiti removal' } } },
  ])
})

t.test('no secret is anywhere in the audit table', async (t) => {
  t.ok(secrets.length >= 15, `${secrets.length} secrets collected`)
  const [all] = await rows<{ text: string }>(sql`select coalesce(string_agg(a::text, E'\n'), '') as text from audit_events a`)
  for (const secret of secrets) t.notOk(all!.text.includes(secret), `a secret of ${secret.length} characters is absent`)
  const [hashes] = await rows<{ n: number }>(sql`select count(*)::int as n from audit_events a, api_keys k where strpos(a::text, k.secret_hash) > 0`)
  t.equal(hashes?.n, 0, 'no key hash either')
})
