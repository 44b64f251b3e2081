/**
 * The requests' and work orders' writes each leave audit entries in their own transaction,
 * with the actor that made them — the client app's key, the department, an operator's key,
 * the CLI, the server's workers — and the request they are about, so that
 * `GET /admin/v1/audit.json?request=…` tells a request's whole story in order. The reporter's
 * contact details and a citizen's words given on POST never reach the table (searched as
 * text), and a refused write records nothing.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { MASKED } from '../../src/domain/audit/audit.js'
import { departmentDeliveryPolicy } from '../../src/domain/departments/delivery-policy.js'
import { raiseOperatorAlert } from '../../src/domain/operator-alerts.js'
import { markOverdueWorkOrders } from '../../src/domain/service-levels/overdue.js'
import { buildDepartmentHarness, startReceiver } from '../departments/fixtures/harness.js'
import { inProcessCli } from '../helpers/cli.js'
import { type AuditEntry, auditEntriesSince } from '../helpers/audit.js'

const JURISDICTION = { id: 'audit-story.test.example', name: 'Story City', time_zone: 'America/Chicago' }
const h = await buildDepartmentHarness(t, {
  jurisdiction: JURISDICTION,
  services: [{ service_code: 'pothole', service_name: 'Pothole' }],
})
const { app, asAdmin, admin, citizen, rows } = h
const cli = inProcessCli(h.database, app.config)
const receiver = await startReceiver(t)
const streets = await h.registerDepartment({ code: 'streets', name: 'Streets', webhook_url: receiver.url, status_map: { ACK: 'accepted' } })
await h.setRoutes('pothole', [{ department: 'streets' }])
const [streetsRow] = await rows<{ id: number }>(sql`select id::int as id from departments where code = 'streets'`)

/** The entries added since the last call, oldest first. */
const newEntries = auditEntriesSince(app.db)
/** A request's story, oldest first, through the admin API (newest first there). */
async function story(serviceRequestId: string): Promise<AuditEntry[]> {
  const res = await app.inject({ url: `/admin/v1/audit.json?request=${serviceRequestId}`, headers: asAdmin })
  if (res.statusCode !== 200) throw new Error(`audit of ${serviceRequestId}: ${res.statusCode} ${res.body}`)
  return (res.json() as { events: AuditEntry[] }).events.reverse()
}
const byAdmin = { actor_kind: 'key', actor_key_id: admin.id, actor_name: 'operator' }
const byCitizenApp = { actor_kind: 'key', actor_key_id: citizen.id, actor_name: 'citizen app' }
const byStreets = { actor_kind: 'department', actor_key_id: null, actor_name: 'streets' }
const byCli = { actor_kind: 'cli', actor_key_id: null, actor_name: 'cli' }

/** Personal values given on POST and in a citizen's comment: none may appear in audit_events. */
const personal = ['jane.story@example.org', 'Janestory', 'Storyfield', '555-0199-42', 'a hole outside number 12 Storyfield Lane', 'my neighbour Bob Quill again']

await newEntries() // the harness's own set-up

let requestId = ''
let workOrderId = ''

t.test('a POST records the creation with the client key, the reporter masked', async (t) => {
  const res = await h.postRequest({
    service_code: 'pothole',
    lat: '41.88',
    long: '-87.63',
    description: personal[4]!,
    email: personal[0]!,
    first_name: personal[1]!,
    last_name: personal[2]!,
    phone: personal[3]!,
  })
  t.equal(res.statusCode, 200, res.body)
  requestId = (res.json() as { service_request_id: string }[])[0]!.service_request_id
  workOrderId = (await h.workOrders(requestId))[0]!.id
  const [created, ...more] = await newEntries()
  t.same(more, [], 'one entry: the POST adds one insert, in its own statement')
  t.match(created, {
    ...byCitizenApp,
    action: 'service_request.created',
    entity_type: 'service_request',
    entity_id: requestId,
    service_request_id: requestId,
    jurisdiction_id: JURISDICTION.id,
    changes: {
      service_request_id: { before: null, after: requestId },
      service_code: { before: null, after: 'pothole' },
      status: { before: null, after: 'open' },
      detailed_status: { before: null, after: 'submitted' },
      agency_responsible: { before: null, after: 'Streets' },
      channel: { before: null, after: String },
      description: { before: null, after: MASKED },
      location: { before: null, after: MASKED },
      email: { before: null, after: MASKED },
      first_name: { before: null, after: MASKED },
      last_name: { before: null, after: MASKED },
      phone: { before: null, after: MASKED },
    },
  })
  t.notOk('device_id' in created!.changes, 'what was not given is not listed')
})

t.test('the delivery worker, the department and the operator each record their part', async (t) => {
  t.ok((await h.deliver()) >= 1)
  t.match(await newEntries(), [
    {
      actor_kind: 'system',
      actor_name: 'webhook-dispatcher',
      action: 'work_order.state_changed',
      entity_type: 'work_order',
      entity_id: workOrderId,
      service_request_id: requestId,
      jurisdiction_id: JURISDICTION.id,
      changes: { state: { before: 'pending', after: 'sent' } },
    },
  ])

  const accepted = await h.statusChanged(streets, { work_order_id: workOrderId, status: 'ACK', external_ref: 'JOB-77' })
  t.equal(accepted.statusCode, 200, accepted.body)
  const [move, ...more] = await newEntries()
  t.same(more, [])
  t.match(move, {
    ...byStreets,
    action: 'work_order.state_changed',
    entity_id: workOrderId,
    service_request_id: requestId,
    changes: { state: { before: 'sent', after: 'accepted' }, external_status_code: { before: null, after: 'ACK' }, external_ref: { before: null, after: 'JOB-77' } },
  })
  const [stored] = await rows<{ actor_department_id: number }>(sql`select actor_department_id::int as actor_department_id from audit_events where id = ${move!.id}`)
  t.equal(stored!.actor_department_id, streetsRow!.id, 'the department is recorded by its id too')

  const noted = await app.inject({ method: 'POST', url: `/admin/v1/requests/${requestId}/notes`, headers: asAdmin, payload: { description: 'Crew booked for Monday' } })
  t.equal(noted.statusCode, 200, noted.body)
  const updateId = (noted.json() as { update_id: string }).update_id
  t.match(await newEntries(), [
    {
      ...byAdmin,
      action: 'service_request.noted',
      service_request_id: requestId,
      changes: { update_id: { after: updateId }, source: { after: 'operator' }, public: { after: false }, description: { after: 'Crew booked for Monday' } },
    },
  ])

  const comment = await app.inject({
    method: 'POST',
    url: '/open311/v2/servicerequestupdates.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      api_key: citizen.key,
      service_request_id: requestId,
      update_id: 'c-1',
      updated_datetime: new Date().toISOString(),
      status: 'open',
      description: personal[5]!,
    }).toString(),
  })
  t.equal(comment.statusCode, 200, comment.body)
  t.match(await newEntries(), [
    { ...byCitizenApp, action: 'service_request.noted', service_request_id: requestId, changes: { source: { after: 'citizen' }, public: { after: true }, description: { before: null, after: MASKED } } },
  ])
})

t.test('a refused close records nothing; a forced one records the cancellation and the close', async (t) => {
  const refused = await h.closeRequest(requestId, { reason: 'fixed by the utility' })
  t.equal(refused.statusCode, 409, 'the close guard: its work order is open')
  t.same(await newEntries(), [], 'a refused write records nothing')

  const closed = await h.closeRequest(requestId, { reason: 'fixed by the utility', force: true })
  t.equal(closed.statusCode, 200, closed.body)
  t.match(await newEntries(), [
    { ...byAdmin, action: 'work_order.state_changed', entity_id: workOrderId, changes: { state: { before: 'accepted', after: 'cancelled' }, reason: { before: null, after: 'fixed by the utility' } } },
    {
      ...byAdmin,
      action: 'service_request.closed',
      entity_id: requestId,
      jurisdiction_id: JURISDICTION.id,
      changes: { status: { before: 'open', after: 'closed' }, detailed_status: { before: 'accepted', after: 'closed' }, status_notes: { after: 'fixed by the utility' } },
    },
  ])
})

t.test("GET /admin/v1/audit.json?request= tells the request's whole story, in order", async (t) => {
  const entries = await story(requestId)
  t.same(
    entries.filter((e) => e.actor_kind === 'department').map((e) => (e as unknown as { actor_department_id: number }).actor_department_id),
    [streetsRow!.id],
    'a department entry names the department by id too (codes repeat across jurisdictions)',
  )
  t.same(
    entries.map((e) => [e.action, e.actor_kind, e.actor_name]),
    [
      ['service_request.created', 'key', 'citizen app'],
      ['work_order.state_changed', 'system', 'webhook-dispatcher'],
      ['work_order.state_changed', 'department', 'streets'],
      ['service_request.noted', 'key', 'operator'],
      ['service_request.noted', 'key', 'citizen app'],
      ['work_order.state_changed', 'key', 'operator'],
      ['service_request.closed', 'key', 'operator'],
    ],
  )
  t.ok(entries.every((e) => e.service_request_id === requestId))
  const filtered = await app.inject({ url: `/admin/v1/audit.json?request=${requestId}&actor=department:streets`, headers: asAdmin })
  t.same((filtered.json() as { events: AuditEntry[] }).events.map((e) => e.action), ['work_order.state_changed'], 'filtered by the department')
  const departments = await app.inject({ url: '/admin/v1/audit.json?actor=department', headers: asAdmin })
  t.ok((departments.json() as { events: AuditEntry[] }).events.every((e) => e.actor_kind === 'department'))
})

t.test('duplicates, public view and the mySociety door', async (t) => {
  const original = await h.createRequest('pothole')
  const copy = await h.createRequest('pothole')
  const [copyOrder] = await h.workOrders(copy)
  await newEntries()

  t.equal((await h.markDuplicate(copy, original)).statusCode, 200)
  t.match(await newEntries(), [
    { ...byAdmin, action: 'work_order.state_changed', entity_id: copyOrder!.id, service_request_id: copy, changes: { state: { before: 'pending', after: 'cancelled' } } },
    {
      ...byAdmin,
      action: 'service_request.duplicate_marked',
      entity_id: copy,
      changes: { parent_service_request_id: { before: null, after: original }, detailed_status: { before: 'submitted', after: 'duplicate' } },
    },
  ])
  const unlinked = await app.inject({ method: 'DELETE', url: `/admin/v1/requests/${copy}/duplicate`, headers: asAdmin })
  t.equal(unlinked.statusCode, 200, unlinked.body)
  const opened = (unlinked.json() as { work_orders: string[] }).work_orders
  t.match(await newEntries(), [
    {
      ...byAdmin,
      action: 'service_request.duplicate_unlinked',
      entity_id: copy,
      changes: { parent_service_request_id: { before: original, after: null }, detailed_status: { before: 'duplicate', after: 'submitted' }, work_orders: { before: [], after: opened } },
    },
  ])
  const again = await app.inject({ method: 'DELETE', url: `/admin/v1/requests/${copy}/duplicate`, headers: asAdmin })
  t.equal(again.statusCode, 409)
  t.same(await newEntries(), [], 'refused: not a duplicate any more, nothing recorded')

  // The department says so itself (signed door): recorded as the department.
  const reported = await h.signed(streets, { type: 'service_request.duplicate_of', data: { service_request_id: copy, parent_service_request_id: original } })
  t.equal(reported.statusCode, 200, reported.body)
  t.match(await newEntries(), [
    { ...byStreets, action: 'work_order.state_changed', entity_id: opened[0], changes: { state: { after: 'cancelled' } } },
    { ...byStreets, action: 'service_request.duplicate_marked', entity_id: copy, changes: { parent_service_request_id: { before: null, after: original } } },
  ])

  const view = (isPublic: boolean) => app.inject({ method: 'POST', url: `/admin/v1/requests/${original}/public-view`, headers: asAdmin, payload: { public: isPublic, reason: 'names a neighbour' } })
  t.equal((await view(false)).statusCode, 200)
  t.equal((await view(false)).statusCode, 200)
  t.equal((await view(true)).statusCode, 200)
  t.match(await newEntries(), [
    { ...byAdmin, action: 'service_request.withdrawn', entity_id: original, changes: { public: { before: true, after: false }, reason: { after: 'names a neighbour' } } },
    { ...byAdmin, action: 'service_request.restored', entity_id: original, changes: { public: { before: false, after: true } } },
  ], 'withdrawing twice changes nothing the second time, and records nothing')

  // mySociety's door, with the department's inbound key: recorded as the department, not its key.
  const [originalOrder] = await h.workOrders(original)
  const update = await h.postUpdate(streets.key, { service_request_id: original, update_id: 'fms-1', updated_datetime: new Date().toISOString(), status: 'IN_PROGRESS' })
  t.equal(update.statusCode, 200, update.body)
  t.match(await newEntries(), [{ ...byStreets, action: 'work_order.state_changed', entity_id: originalOrder!.id, service_request_id: original, changes: { state: { before: 'pending', after: 'in_progress' } } }])
  const replay = await h.postUpdate(streets.key, { service_request_id: original, update_id: 'fms-1', updated_datetime: new Date().toISOString(), status: 'IN_PROGRESS' })
  t.equal(replay.statusCode, 200)
  t.same(await newEntries(), [], 'a replayed update records nothing')
})

t.test('the server: the overdue sweep (one entry per work order) and a department disabled', async (t) => {
  const a = await h.createRequest('pothole')
  const b = await h.createRequest('pothole')
  await app.db.execute(sql`update work_orders set due_at = now() - interval '1 hour' where request_id in (select id from service_requests where public_id in (${a}, ${b}))`)
  await newEntries()
  t.equal(await markOverdueWorkOrders(app.db, { now: new Date(Date.now() + 1000) }), 2)
  const swept = await newEntries()
  t.match(swept, [
    { actor_kind: 'system', actor_name: 'overdue-sweeper', action: 'work_order.overdue', service_request_id: a, changes: { overdue_at: { before: null, after: String } } },
    { actor_kind: 'system', actor_name: 'overdue-sweeper', action: 'work_order.overdue', service_request_id: b },
  ])
  t.equal(swept.length, 2)

  const policy = departmentDeliveryPolicy(app.db, { secretBox: app.webhooks.secretBox, disableAfterDays: 5 })
  await app.db.transaction((tx) => policy.gone(tx, streetsRow!.id, new Date()))
  await app.db.transaction((tx) => policy.gone(tx, streetsRow!.id, new Date()))
  t.match(await newEntries(), [
    { actor_kind: 'system', actor_name: 'webhook-dispatcher', action: 'department.disabled', entity_id: 'streets', jurisdiction_id: JURISDICTION.id, changes: { enabled: { before: true, after: false }, disabled_reason: { before: null, after: /410 Gone/ } } },
  ], 'once: a department already disabled is not disabled again')
})

t.test('operations: deliveries replayed (admin API and CLI), an alert acknowledged, reports rebuilt', async (t) => {
  const replayable = async () => {
    const [row] = await rows<{ event_id: string; work_order_id: number }>(
      sql`update outbox set state = 'failed', failed_at = now(), attempts = 7
          where id = (select max(id) from outbox where work_order_id is not null) returning event_id, work_order_id::int as work_order_id`,
    )
    await newEntries()
    return row!
  }
  const first = await replayable()
  const [{ request } = { request: '' }] = await rows<{ request: string }>(sql`select r.public_id as request from work_orders w join service_requests r on r.id = w.request_id where w.id = ${first.work_order_id}`)
  const replayed = await app.inject({ method: 'POST', url: `/admin/v1/deliveries/${first.event_id}/replay`, headers: asAdmin })
  t.equal(replayed.statusCode, 200, replayed.body)
  t.match(await newEntries(), [
    {
      ...byAdmin,
      action: 'delivery.replayed',
      entity_type: 'delivery',
      entity_id: first.event_id,
      service_request_id: request,
      jurisdiction_id: JURISDICTION.id,
      changes: { state: { before: 'failed', after: 'pending' }, attempts: { before: 7, after: 0 }, failed_at: { before: String, after: null } },
    },
  ])
  t.equal((await app.inject({ method: 'POST', url: `/admin/v1/deliveries/${first.event_id}/replay`, headers: asAdmin })).statusCode, 404)
  t.same(await newEntries(), [], 'nothing to replay: nothing recorded')

  const second = await replayable()
  const fromCli = await cli('deliveries', 'replay', '--event', second.event_id, '--jurisdiction-id', JURISDICTION.id)
  t.equal(fromCli.code, 0, fromCli.stderr)
  t.match(await newEntries(), [{ ...byCli, action: 'delivery.replayed', entity_id: second.event_id }])

  await raiseOperatorAlert(app.db, 'delivery_dead_lettered', streetsRow!.id, 'a test alert')
  const [alert] = await rows<{ id: number }>(sql`select max(id)::int as id from operator_alerts`)
  await newEntries()
  t.equal((await app.inject({ method: 'POST', url: `/admin/v1/alerts/${alert!.id}/acknowledge`, headers: asAdmin })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `/admin/v1/alerts/${alert!.id}/acknowledge`, headers: asAdmin })).statusCode, 404)
  t.match(await newEntries(), [
    { ...byAdmin, action: 'operator_alert.acknowledged', entity_type: 'operator_alert', entity_id: String(alert!.id), jurisdiction_id: JURISDICTION.id, changes: { acknowledged_at: { before: null, after: String } } },
  ])

  const rebuilt = await cli('reports', 'rebuild')
  t.equal(rebuilt.code, 0, rebuilt.stderr)
  t.match(await newEntries(), [{ ...byCli, action: 'report_rollups.rebuilt', entity_type: 'report_rollups', changes: { days: { before: null, after: Number }, cells: { before: null, after: Number } } }])
})

t.test("the reporter's personal data and a citizen's words never reach audit_events", async (t) => {
  const [all] = await rows<{ text: string }>(sql`select coalesce(string_agg(a::text, E'\n'), '') as text from audit_events a`)
  t.ok(all!.text.includes(requestId), 'the table holds the request’s entries')
  for (const value of personal) t.notOk(all!.text.toLowerCase().includes(value.toLowerCase()), `absent: a value of ${value.length} characters`)
  const [stored] = await rows<{ n: number }>(sql`select count(*)::int as n from request_reporters where email = ${personal[0]}`)
  t.equal(stored!.n, 1, 'while the reporter row has them (the search would find them)')
})

t.test('the audit filters have their indexes', async (t) => {
  const indexes = await rows<{ indexname: string }>(sql`select indexname from pg_indexes where tablename = 'audit_events' order by indexname`)
  t.same(
    indexes.map((i) => i.indexname),
    ['audit_events_actor_idx', 'audit_events_entity_idx', 'audit_events_jurisdiction_idx', 'audit_events_occurred_at_idx', 'audit_events_pkey', 'audit_events_request_idx'],
  )
})
