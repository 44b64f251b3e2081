/**
 * Anonymisation (docs/retention.md): a request posted through the real path — an Idempotency-Key,
 * rate limiting, a photo whose EXIF names the reporter, a department with receives_contact whose
 * delivery carries the reporter's contact, the department's callback — then anonymised: no
 * column of any table holds any of the reporter's values afterwards (every text, varchar, json,
 * jsonb and array column of every table, found through information_schema, and the bytes of
 * every bytea column), while the request, its public history and the
 * report figures are what they were, and the audit trail says it happened.
 */
import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import sharp from 'sharp'
import t from 'tap'
import { queryRows } from '../../src/db/database.js'
import { refreshRollups } from '../../src/domain/reports/rollups.js'
import { acceptPendingTokens } from '../../src/domain/requests/tokens.js'
import { buildDepartmentHarness, startReceiver } from '../departments/fixtures/harness.js'

const JURISDICTION = 'retention.test.example'
const receiver = await startReceiver(t)
const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: JURISDICTION, name: 'Retention City', time_zone: 'Europe/Paris', retention: { anonymise_after_days: 30 } },
  services: [
    { service_code: 'pothole', service_name: 'Pothole', group: 'Streets' },
    { service_code: 'bulky', service_name: 'Bulky item pickup', group: 'Streets', type: 'batch' },
  ],
})
const { app } = h
const streets = await h.registerDepartment({ code: 'streets', name: 'Streets', webhook_url: receiver.url })
{
  const res = await app.inject({ method: 'PATCH', url: '/admin/v1/departments/streets', headers: h.asAdmin, payload: { receives_contact: true } })
  if (res.statusCode !== 200) throw new Error(`receives_contact: ${res.statusCode} ${res.body}`)
}
await h.setRoutes('pothole', [{ department: 'streets' }])
await h.setRoutes('bulky', [{ department: 'streets' }])

/** A reporter with values found nowhere else: the scan looks for each of them. */
function reporter() {
  const tag = randomBytes(6).toString('hex')
  return {
    email: `Reporter.${tag}@Example.org`,
    first_name: `Firstname${tag}`,
    last_name: `Lastname${tag}`,
    phone: `+33 6 ${parseInt(tag.slice(0, 6), 16).toString().padStart(8, '0').slice(0, 8)}`,
    device_id: `device-${tag}`,
    account_id: `account-${tag}`,
  }
}
type Reporter = ReturnType<typeof reporter>
const personalValues = (r: Reporter) => Object.values(r)

/** A phone's photo, its EXIF naming the reporter (owner, copyright): the server must keep none of it. */
function photo(r: Reporter): Promise<Buffer> {
  return sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 90, g: 90, b: 90 } } })
    .withMetadata({ exif: { IFD0: { Artist: `${r.first_name} ${r.last_name}`, Copyright: r.email, ImageDescription: r.phone } } })
    .jpeg()
    .toBuffer()
}

const BOUNDARY = '----retentionBoundary4d1e'

function multipart(fields: Record<string, string>, file: Buffer): Buffer {
  const chunks: Buffer[] = Object.entries(fields).map(([name, value]) => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`))
  chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="media"; filename="IMG_1.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`), file, Buffer.from('\r\n'))
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`))
  return Buffer.concat(chunks)
}

/** Posts a request as a citizen app does, with a photo and an Idempotency-Key; delivers it; the department answers. */
async function report(r: Reporter) {
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'idempotency-key': `retry-${randomBytes(6).toString('hex')}` },
    payload: multipart({ api_key: h.citizen.key, service_code: 'pothole', description: 'A deep hole', lat: '48.85', long: '2.35', ...r }, await photo(r)),
  })
  if (res.statusCode !== 200) throw new Error(`POST: ${res.statusCode} ${res.body}`)
  const id = (res.json() as { service_request_id: string }[])[0]!.service_request_id
  await h.deliver()
  const [wo] = await h.workOrders(id)
  const ack = await h.statusChanged(streets, { work_order_id: wo!.id, status: 'accepted', public_note: 'On our list' })
  if (ack.statusCode !== 200) throw new Error(`callback: ${ack.statusCode} ${ack.body}`)
  return id
}

interface Column {
  table_schema: string
  table_name: string
  column_name: string
}

/** Every text-like column of every table: text, varchar, char, json, jsonb and arrays of them. */
async function textColumns(): Promise<Column[]> {
  return queryRows<Column>(
    app.db,
    sql`select c.table_schema, c.table_name, c.column_name
        from information_schema.columns c
        join information_schema.tables tb on tb.table_schema = c.table_schema and tb.table_name = c.table_name
        where tb.table_type = 'BASE TABLE'
          and c.table_schema not in ('pg_catalog', 'information_schema')
          and (c.data_type in ('text', 'character varying', 'character', 'json', 'jsonb')
               or (c.data_type = 'ARRAY' and c.udt_name in ('_text', '_varchar', '_bpchar', '_json', '_jsonb')))
        order by 1, 2, 3`,
  )
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`

/** Every binary column (the photos): searched for the values' UTF-8 bytes, as EXIF would hold them. */
async function byteaColumns(): Promise<Column[]> {
  return queryRows<Column>(
    app.db,
    sql`select c.table_schema, c.table_name, c.column_name
        from information_schema.columns c
        join information_schema.tables tb on tb.table_schema = c.table_schema and tb.table_name = c.table_name
        where tb.table_type = 'BASE TABLE' and c.table_schema not in ('pg_catalog', 'information_schema') and c.data_type = 'bytea'
        order by 1, 2, 3`,
  )
}

/** Where each value is found, as "schema.table.column: value"; case-insensitive, anywhere in the text. */
async function findValues(values: string[]): Promise<string[]> {
  const found: string[] = []
  for (const c of await byteaColumns()) {
    const column = `${ident(c.table_schema)}.${ident(c.table_name)}`
    const rows = await queryRows<{ value: string }>(
      app.db,
      sql`select v.value from unnest(${sql.param(values)}::text[]) v(value)
          where exists (select 1 from ${sql.raw(column)} x where position(convert_to(v.value, 'UTF8') in x.${sql.raw(ident(c.column_name))}) > 0)`,
    )
    for (const r of rows) found.push(`${c.table_schema}.${c.table_name}.${c.column_name}: ${r.value}`)
  }
  const patterns = values.map((v) => `%${v.replace(/[\\%_]/g, '\\$&')}%`)
  for (const c of await textColumns()) {
    const column = `${ident(c.table_schema)}.${ident(c.table_name)}`
    const rows = await queryRows<{ pattern: string }>(
      app.db,
      sql`select p.pattern from unnest(${sql.param(patterns)}::text[]) p(pattern)
          where exists (select 1 from ${sql.raw(column)} x where x.${sql.raw(ident(c.column_name))}::text ilike p.pattern)`,
    )
    for (const r of rows) found.push(`${c.table_schema}.${c.table_name}.${c.column_name}: ${r.pattern}`)
  }
  return found
}

/** What the public and the reports see: compared before and after. */
async function publicState(id: string) {
  await refreshRollups(app.db)
  const request = await app.inject(`/open311/v2/requests/${id}.json?extensions=true`)
  const updates = await app.inject(`/open-data/v1/updates.json`)
  const requests = await app.inject(`/open-data/v1/requests.json`)
  const volume = await app.inject({ url: '/admin/v1/reports/volume.json?by=service', headers: h.asAdmin })
  const timeliness = await app.inject({ url: '/admin/v1/reports/timeliness.json?by=service', headers: h.asAdmin })
  const rollups = await queryRows(app.db, sql`select * from report_daily order by jurisdiction_id, day, service_id, grain, department_id, channel, area, public`)
  const row = await queryRows(app.db, sql`select * from service_requests where public_id = ${id}`)
  const history = await queryRows(app.db, sql`select u.* from request_updates u join service_requests sr on sr.id = u.request_id where sr.public_id = ${id} order by u.id`)
  return { request: request.body, updates: updates.body, requests: requests.body, volume: volume.body, timeliness: timeliness.body, rollups, row, history }
}

t.test('the key test: after anonymising, no column of any table holds any of the reporter\'s values', async (t) => {
  const ana = reporter()
  const id = await report(ana)
  const close = await h.closeRequest(id, { reason: 'Filled', force: true })
  t.equal(close.statusCode, 200, 'closed')
  await h.deliver()

  // The copies exist before: the scan finds them, so a clean scan afterwards means something.
  const before = await findValues(personalValues(ana))
  t.ok(before.some((f) => f.startsWith('public.request_reporters.email')), 'the reporter row holds the email')
  t.ok(before.some((f) => f.startsWith('public.outbox.payload')), 'a delivered outbox payload holds the contact')
  t.ok(before.some((f) => f.startsWith('public.idempotency_keys.response_body')), 'the idempotency record holds the account id')
  t.ok(receiver.received.some((d) => JSON.stringify(d.body).includes(ana.email)), 'the department received the contact')
  const [photos] = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from media m join service_requests sr on sr.id = m.request_id where sr.public_id = ${id}`)
  t.ok((await photo(ana)).includes(ana.email), 'the uploaded photo\'s EXIF holds the email')
  t.equal(Number(photos!.n), 1, 'its photo is stored (the scan searches its bytes too: none of the EXIF naming the reporter is kept)')
  const inbound = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from inbound_events`)
  t.ok(Number(inbound[0]!.n) > 0, 'the department\'s callback was recorded')
  const limits = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from rate_limit_counters`)
  t.ok(Number(limits[0]!.n) > 0, 'rate limiting counted the POST')

  const publicBefore = await publicState(id)
  const pendingBefore = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from report_rollup_pending`)

  const res = await app.inject({ method: 'POST', url: `/admin/v1/requests/${id}/anonymise`, headers: h.asAdmin })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { service_request_id: id, anonymised: true, outbox_payloads: Number, idempotency_records: 1 })
  t.same([...res.json().cleared_fields].sort(), ['account_id', 'device_id', 'email', 'first_name', 'last_name', 'phone'])
  t.ok(res.json().outbox_payloads >= 2, 'the created and the closed events were scrubbed')

  t.same(await findValues(personalValues(ana)), [], 'no copy of any of the reporter\'s values is left anywhere')
  const pendingAfter = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from report_rollup_pending`)
  t.same(pendingAfter, pendingBefore, 'no report cell was marked for recomputation')
  t.same(await publicState(id), publicBefore, 'the request, its public history, the open-data feeds and the report figures are unchanged')

  const [reporterRow] = await queryRows<Record<string, unknown>>(
    app.db,
    sql`select rr.* from request_reporters rr join service_requests sr on sr.id = rr.request_id where sr.public_id = ${id}`,
  )
  t.match(reporterRow, { email: null, first_name: null, last_name: null, phone: null, device_id: null, account_id: null })
  t.ok(reporterRow!.anonymised_at, 'marked anonymised')

  const audit = await app.inject({ url: `/admin/v1/audit.json?entity_type=service_request&entity_id=${id}`, headers: h.asAdmin })
  // The request's own story (created, …) and, once, its anonymisation.
  const entries = (audit.json().events as { action: string; actor_kind: string; actor_name: string; changes: Record<string, unknown> }[])
    .filter((entry) => entry.action === 'service_request.anonymised')
  t.equal(entries.length, 1, 'one anonymisation entry')
  t.match(entries[0], {
    action: 'service_request.anonymised',
    actor_kind: 'key',
    actor_name: 'operator',
    changes: { email: { before: '[masked]', after: null }, basis: { before: null, after: 'erasure' } },
  })

  const again = await app.inject({ method: 'POST', url: `/admin/v1/requests/${id}/anonymise`, headers: h.asAdmin })
  t.match(again.json(), { anonymised: false, cleared_fields: [], outbox_payloads: 0, idempotency_records: 0 }, 'a second time: nothing left')
})

t.test('a reporter, by email: every request they made, in any case; others untouched', async (t) => {
  const ben = reporter()
  const other = reporter()
  const first = await report(ben)
  const second = await report({ ...ben, email: ben.email.toUpperCase() })
  const unrelated = await report(other)
  const res = await app.inject({ method: 'POST', url: '/admin/v1/reporters/anonymise', headers: h.asAdmin, payload: { email: ` ${ben.email.toLowerCase()} ` } })
  t.equal(res.statusCode, 200, res.body)
  t.same(
    res.json().requests.map((r: { service_request_id: string }) => r.service_request_id),
    [first, second],
    'both of their requests, open ones too',
  )
  t.same(await findValues(personalValues(ben)), [], 'none of their values is left')
  t.ok((await findValues([other.email])).length > 0, 'another reporter keeps theirs')
  const [row] = await queryRows<{ email: string }>(app.db, sql`select rr.email from request_reporters rr join service_requests sr on sr.id = rr.request_id where sr.public_id = ${unrelated}`)
  t.equal(row!.email, other.email)
  const again = await app.inject({ method: 'POST', url: '/admin/v1/reporters/anonymise', headers: h.asAdmin, payload: { email: ben.email } })
  t.same(again.json(), { requests: [] }, 'afterwards nothing links them to a request')
  t.notOk(h.rawLogs().includes(ben.email.toLowerCase()), 'the email is not logged')
})

t.test('a batch service\'s request: its idempotency record, which names the token, goes too', async (t) => {
  const cleo = reporter()
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': `retry-${randomBytes(6).toString('hex')}` },
    payload: new URLSearchParams({ api_key: h.citizen.key, service_code: 'bulky', address_string: '1 Rue de Rivoli', ...cleo }).toString(),
  })
  t.equal(res.statusCode, 200, res.body)
  const token = (res.json() as { token: string }[])[0]!.token
  t.ok(token, 'answered with a token')
  await acceptPendingTokens(app.db)
  await h.deliver()
  const [row] = await queryRows<{ public_id: string }>(app.db, sql`select sr.public_id from request_tokens t join service_requests sr on sr.id = t.request_id where t.token = ${token}`)
  t.ok((await findValues(personalValues(cleo))).some((f) => f.startsWith('public.idempotency_keys')), 'the answer holds the account id')
  const anonymised = await app.inject({ method: 'POST', url: `/admin/v1/requests/${row!.public_id}/anonymise`, headers: h.asAdmin })
  t.match(anonymised.json(), { anonymised: true, idempotency_records: 1 })
  t.same(await findValues(personalValues(cleo)), [], 'nothing of theirs is left')
})

t.test('an unknown request is 404; a malformed email 400', async (t) => {
  t.equal((await app.inject({ method: 'POST', url: '/admin/v1/requests/999999999/anonymise', headers: h.asAdmin })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/admin/v1/reporters/anonymise', headers: h.asAdmin, payload: { email: 'nobody' } })).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/admin/v1/reporters/anonymise', payload: { email: 'a@b.c' } })).statusCode, 403, 'without an admin key: refused')
})
