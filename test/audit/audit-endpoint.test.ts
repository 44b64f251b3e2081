/**
 * GET /admin/v1/audit.{json,csv}: admin keys only; newest first; each filter (actor, request,
 * entity, time) keeps exactly the matching entries; cursor pages walk the whole answer once;
 * a cursor is refused with other filters; the CSV has the JSON's entries and values.
 */
import { parse as parseCsv } from 'csv-parse/sync'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { recordAudit, SERVER_ACTOR, systemActor } from '../../src/domain/audit/audit.js'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'
import { inProcessCli } from '../helpers/cli.js'
import type { AuditEntry } from '../helpers/audit.js'

const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'audit-read.test.example', name: 'Audit Read City', time_zone: 'Europe/Paris' },
  services: [{ service_code: 'pothole', service_name: 'Pothole' }],
})
const { app, rows } = h
const second = await createApiKey(app.db, { name: 'second operator', scopes: ['admin'] }, SERVER_ACTOR)
const asSecond = { authorization: `Bearer ${second.key}` }

interface AuditAnswer {
  events: AuditEntry[]
  next_cursor: string | null
}

// Writes by two admin keys, the CLI and the server, and a request: its creation and one more entry about it.
const keyIds: number[] = []
for (const [i, headers] of [h.asAdmin, asSecond, h.asAdmin, h.asAdmin, asSecond].entries()) {
  const res = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers, payload: { name: `app ${i}` } })
  keyIds.push((res.json() as { id: number }).id)
}
await app.inject({ method: 'DELETE', url: `/admin/v1/keys/${keyIds[0]}`, headers: asSecond })
await h.registerDepartment({ code: 'streets' })
await h.setRoutes('pothole', [{ department: 'streets' }])
await inProcessCli(h.database, app.config)('keys', 'create', '--name', 'from the cli')
const requestId = await h.createRequest('pothole')
const [request] = await rows<{ id: number }>(sql`select id::int as id from service_requests where public_id = ${requestId}`)
await recordAudit(app.db, systemActor('test'), {
  action: 'service_request.noted',
  entityType: 'service_request',
  entityId: requestId,
  requestId: request!.id,
  changes: { note: { before: null, after: 'x' } },
})

const get = async (query: string, headers: Record<string, string> = h.asAdmin) => app.inject({ url: `/admin/v1/audit.json${query}`, headers })
async function all(query = ''): Promise<AuditEntry[]> {
  const res = await get(query)
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
  const answer = res.json() as AuditAnswer
  if (answer.next_cursor) throw new Error('more than a page')
  return answer.events
}
const everything = await all('?limit=1000')

t.test('admin keys only', async (t) => {
  t.equal((await get('', {})).statusCode, 403)
  t.equal((await get('', { authorization: `Bearer ${h.citizen.key}` })).statusCode, 403)
  const res = await get('')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'private, no-store')
})

t.test('every entry, newest first', async (t) => {
  const ids = everything.map((e) => e.id)
  t.same(ids, [...ids].sort((a, b) => b - a))
  const [total] = await rows<{ n: number }>(sql`select count(*)::int as n from audit_events`)
  t.equal(everything.length, total?.n)
  t.match(everything[0], { actor_kind: 'system', actor_name: 'test', action: 'service_request.noted', service_request_id: requestId, changes: { note: { before: null, after: 'x' } } })
})

t.test('cursor paging walks every entry once', async (t) => {
  const seen: AuditEntry[] = []
  let url = '/admin/v1/audit.json?limit=3'
  for (let pages = 0; pages < 100; pages++) {
    const res = await app.inject({ url, headers: h.asAdmin })
    t.equal(res.statusCode, 200, res.body)
    const answer = res.json() as AuditAnswer
    seen.push(...answer.events)
    if (!answer.next_cursor) {
      t.notOk(res.headers.link, 'the last page has no next link')
      break
    }
    t.ok(answer.events.length === 3, 'a full page before the last')
    const link = /^<([^>]+)>; rel="next"$/.exec(String(res.headers.link))
    t.ok(link, 'Link: rel="next"')
    t.equal(new URL(link![1]!).searchParams.get('cursor'), answer.next_cursor)
    url = `/admin/v1/audit.json?limit=3&cursor=${answer.next_cursor}`
  }
  t.same(seen, everything)
})

t.test('filters: actor, entity, request, time', async (t) => {
  const ofKey = (id: number) => everything.filter((e) => e.actor_key_id === id)
  t.same(await all(`?actor=${h.admin.id}`), ofKey(h.admin.id))
  t.same(await all(`?actor=${second.id}`), ofKey(second.id))
  t.equal(ofKey(second.id).length, 3, 'two keys created and one revoked by the second operator')
  t.same(await all('?actor=cli'), everything.filter((e) => e.actor_kind === 'cli'))
  t.equal((await all('?actor=cli')).length, 1)
  t.same(await all('?actor=system'), everything.filter((e) => e.actor_kind === 'system'))

  const revoked = await all(`?entity_type=api_key&entity_id=${keyIds[0]}`)
  t.same(revoked.map((e) => e.action), ['api_key.revoked', 'api_key.created'])
  t.same(await all('?entity_type=department'), everything.filter((e) => e.entity_type === 'department'))
  t.same(await all('?entity_type=service&entity_id=pothole'), everything.filter((e) => e.entity_type === 'service' && e.entity_id === 'pothole'))
  t.same(await all(`?request=${requestId}`), everything.filter((e) => e.service_request_id === requestId))
  t.same((await all(`?request=${requestId}`)).map((e) => e.action), ['service_request.noted', 'service_request.created'], 'its creation (by the client key) and the entry written here')
  t.same(await all('?request=no-such-request'), [])
  t.same(await all(`?jurisdiction_id=audit-read.test.example`), everything.filter((e) => e.jurisdiction_id === 'audit-read.test.example'))

  // Times: [from, to). Entries share a millisecond only within one transaction.
  const times = [...new Set(everything.map((e) => e.occurred_at))].sort()
  t.ok(times.length >= 3, 'entries at several times')
  const [from, to] = [times[1]!, times.at(-1)!]
  const within = (e: AuditEntry) => Date.parse(e.occurred_at) >= Date.parse(from) && Date.parse(e.occurred_at) < Date.parse(to)
  t.same(await all(`?from=${from}&to=${to}`), everything.filter(within))
  t.ok(everything.filter(within).length > 0 && everything.filter(within).length < everything.length)
  t.same(await all(`?from=${from}&actor=${h.admin.id}`), everything.filter((e) => Date.parse(e.occurred_at) >= Date.parse(from) && e.actor_key_id === h.admin.id))
})

t.test('refusals: a malformed filter, entity_id without entity_type, a foreign or forged cursor', async (t) => {
  for (const query of ['?actor=someone', '?actor=0', '?from=yesterday', '?limit=0', '?limit=1001', '?entity_id=streets', '?cursor=garbage', `?from=${everything[0]!.occurred_at}&to=${everything.at(-1)!.occurred_at}`]) {
    const res = await get(query)
    t.equal(res.statusCode, 400, `${query}: ${res.body}`)
  }
  const first = (await get('?limit=1')).json() as AuditAnswer
  t.ok(first.next_cursor)
  const elsewhere = await get(`?limit=1&actor=cli&cursor=${first.next_cursor}`)
  t.equal(elsewhere.statusCode, 400)
  t.match(elsewhere.json(), [{ description: /other filters/ }])
})

t.test('the CSV has the JSON entries and values, page by page', async (t) => {
  for (const query of ['?limit=1000', `?actor=${second.id}`, '?entity_type=department', '?limit=4']) {
    const json = (await get(query)).json() as AuditAnswer
    const csv = await app.inject({ url: `/admin/v1/audit.csv${query}`, headers: h.asAdmin })
    t.equal(csv.statusCode, 200)
    t.match(csv.headers['content-type'], /^text\/csv/)
    t.match(csv.body, /^id,occurred_at,actor_kind,actor_key_id,actor_department_id,actor_name,action,entity_type,entity_id,service_request_id,jurisdiction_id,changes\r\n/)
    const parsed = parseCsv(csv.body, { columns: true }) as Record<string, string>[]
    // Every value as the CSV writes it (null: empty), changes compared as JSON values (key order is the database's).
    const asText = (e: AuditEntry) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : k === 'changes' ? v : String(v)]))
    t.same(parsed.map((row) => ({ ...row, changes: JSON.parse(row.changes!) as unknown })), json.events.map(asText), query)
    t.equal(csv.headers.link !== undefined, json.next_cursor !== null, `${query}: a next link exactly when JSON has a next cursor`)
  }
})
