/**
 * Channels (issue 15): each API key's default channel, set at creation (admin API and CLI) and
 * listed; POST's `channel` field, accepted only from a key with requests:set-channel or admin
 * (else 403 in the Open311 envelope, nothing created), checked against the list (else 400);
 * the stored channel shown by GET ?extensions=true and the open-data feed; and migration
 * 0014's relabelling of the `api` the server wrote before.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import type { LightMyRequestResponse } from 'fastify'
import { XMLParser } from 'fast-xml-parser'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { queryRows } from '../../src/db/database.js'
import { MIGRATIONS_FOLDER } from '../../src/db/migrations-folder.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { REQUEST_CHANNELS } from '../../src/domain/requests/channels.js'
import { buildTestApp } from '../helpers/app.js'
import { inProcessCli } from '../helpers/cli.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const { app, database, databaseUrl } = await buildTestApp(t, { rateLimits: { perIpPerMinute: 100_000, perKeyPerMinute: 100_000 } })
const db = app.db
await loadDemoCatalog(db)

const plainApp = await createApiKey(db, { name: 'mobile app' }, SERVER_ACTOR)
const chatDesk = await createApiKey(db, { name: 'chat desk', scopes: ['requests:write', 'requests:set-channel'], defaultChannel: 'chat' }, SERVER_ACTOR)
const operator = await createApiKey(db, { name: 'operator', scopes: ['admin', 'requests:write'], defaultChannel: 'internal' }, SERVER_ACTOR)
const adminOnly = await createApiKey(db, { name: 'ops', scopes: ['admin'] }, SERVER_ACTOR)
const asAdmin = { authorization: `Bearer ${adminOnly.key}` }

const report = (key: string, extra: Record<string, string | string[]> = {}) => {
  const params = new URLSearchParams({ api_key: key, service_code: 'pothole', lat: '41.8781', long: '-87.6298', 'attribute[size]': 'SMALL' })
  for (const [name, value] of Object.entries(extra)) for (const v of [value].flat()) params.append(name, v)
  return params.toString()
}
const post = (body: string, format: 'json' | 'xml' = 'json') =>
  app.inject({ method: 'POST', url: `/open311/v2/requests.${format}`, payload: body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })

const requestCount = async () => (await queryRows<{ n: number }>(db, sql`select count(*)::int as n from service_requests`))[0]!.n
const storedChannel = async (publicId: string) =>
  (await queryRows<{ channel: string | null }>(db, sql`select channel from service_requests where public_id = ${publicId}`))[0]?.channel

async function createdWith(t: Test, body: string, channel: string, label: string): Promise<string> {
  const res = await post(body)
  t.equal(res.statusCode, 200, `${label}: 200`, res.statusCode === 200 ? {} : { body: res.body })
  const id = (res.json() as { service_request_id: string }[])[0]!.service_request_id
  t.equal(await storedChannel(id), channel, `${label}: stored as ${channel}`)
  return id
}

/** A refusal in the envelope: JSON [{code, description}] or XML <errors><error>, and no request written. */
async function refused(t: Test, body: string, status: number, description: RegExp, label: string) {
  for (const format of ['json', 'xml'] as const) {
    const before = await requestCount()
    const res: LightMyRequestResponse = await post(body, format)
    t.equal(res.statusCode, status, `${label} (${format}): ${status}`)
    if (format === 'json') {
      t.match(res.json(), [{ code: status, description }], `${label}: the envelope names the problem`)
    } else {
      const errors = new XMLParser({ parseTagValue: false, isArray: (name) => name === 'error' }).parse(res.body).errors.error
      t.match(errors, [{ code: String(status), description }], `${label} (xml): <errors><error>`)
    }
    t.equal(await requestCount(), before, `${label} (${format}): nothing created`)
  }
}

const created: Record<string, string> = {}

t.test('a POST without channel takes its key’s default', async (t) => {
  t.equal(plainApp.default_channel, 'app', 'a key created without one defaults to app')
  created.app = await createdWith(t, report(plainApp.key), 'app', 'plain app key')
  created.chat = await createdWith(t, report(chatDesk.key), 'chat', 'chat desk key')
  created.internal = await createdWith(t, report(operator.key), 'internal', 'operator key')
  await createdWith(t, report(plainApp.key, { channel: '' }), 'app', 'an empty channel counts as absent (FixMyStreet sends every field), even from a plain key')
})

t.test('a desk or operator key may name the channel', async (t) => {
  created.walkIn = await createdWith(t, report(chatDesk.key, { channel: 'walk_in' }), 'walk_in', 'desk key (requests:set-channel)')
  created.phone = await createdWith(t, report(operator.key, { channel: ' phone ' }), 'phone', 'operator key (admin), value trimmed')
  for (const channel of REQUEST_CHANNELS) await createdWith(t, report(chatDesk.key, { channel }), channel, `every listed channel: ${channel}`)
  const bearer = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    payload: report('', { channel: 'email' }).replace(/^api_key=&/, ''),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${chatDesk.key}` },
  })
  t.equal(bearer.statusCode, 200, 'the key may come as Authorization: Bearer too')
  t.equal(await storedChannel(bearer.json()[0].service_request_id), 'email')
})

t.test('a plain client key that sends channel is refused with 403, whatever the value', async (t) => {
  const why = /channel: this API key may not set the channel .*"app".*requests:set-channel/
  await refused(t, report(plainApp.key, { channel: 'phone' }), 403, why, 'another channel')
  await refused(t, report(plainApp.key, { channel: 'app' }), 403, why, 'its own default')
  await refused(t, report(plainApp.key, { channel: 'carrier-pigeon' }), 403, why, 'an unknown value (the key is refused before the value is read)')
  await refused(t, report(plainApp.key, { channel: 'phone', lat: '91' }), 403, why, 'with another problem in the report')
})

t.test('a channel not in the list is a 400 naming the field', async (t) => {
  await refused(t, report(chatDesk.key, { channel: 'api' }), 400, /^channel: "api" is not one of web, app, phone, chat, email, walk_in, text, social, internal$/, 'api (the old value)')
  await refused(t, report(chatDesk.key, { channel: 'Phone' }), 400, /^channel: "Phone" is not one of/, 'case matters')
  await refused(t, report(chatDesk.key, { channel: ['phone', 'web'] }), 400, /^channel: only one value is allowed$/, 'two values')
})

t.test('the channel is shown with extensions=true, and only then', async (t) => {
  const shown: [string, string][] = [
    [created.app!, 'app'],
    [created.walkIn!, 'walk_in'],
  ]
  for (const [id, channel] of shown) {
    const extended = await app.inject(`/open311/v2/requests/${id}.json?extensions=true`)
    t.equal(extended.statusCode, 200)
    t.match(extended.json(), [{ service_request_id: id, extended_attributes: { channel } }], `${id}: ${channel}`)
    const xml = await app.inject(`/open311/v2/requests/${id}.xml?extensions=true`)
    t.match(xml.body, `<channel>${channel}</channel>`, 'in XML too')
    const plain = await app.inject(`/open311/v2/requests/${id}.json`)
    t.notOk('extended_attributes' in plain.json()[0], 'the core answer has no extensions')
  }
})

t.test('the open-data feed publishes the channel', async (t) => {
  const res = await app.inject('/open-data/v1/requests.json')
  t.equal(res.statusCode, 200)
  const rows = res.json() as { service_request_id: string; channel: string }[]
  const byId = new Map(rows.map((r) => [r.service_request_id, r.channel]))
  t.equal(byId.get(created.chat!), 'chat')
  t.equal(byId.get(created.phone!), 'phone')
  t.equal(byId.get(created.internal!), 'internal')
  const csv = await app.inject('/open-data/v1/requests.csv')
  t.match(csv.body, new RegExp(`^"${created.walkIn}",.*,"walk_in",`, 'm'), 'and in CSV')
})

t.test('admin API: a key is created with a default channel, listed with it', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAdmin, payload: { name: 'phone desk', scopes: ['requests:write', 'requests:set-channel'], default_channel: 'phone' } })
  t.equal(res.statusCode, 201, res.body)
  t.match(res.json(), { name: 'phone desk', scopes: ['requests:write', 'requests:set-channel'], default_channel: 'phone' })
  const plain = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAdmin, payload: { name: 'partner app' } })
  t.match(plain.json(), { scopes: ['requests:write'], default_channel: 'app' }, 'without one: app')

  const list = (await app.inject({ url: '/admin/v1/keys', headers: asAdmin })).json() as { name: string; default_channel: string }[]
  t.same(
    Object.fromEntries(list.map((k) => [k.name, k.default_channel])),
    { 'mobile app': 'app', 'chat desk': 'chat', operator: 'internal', ops: 'app', 'phone desk': 'phone', 'partner app': 'app' },
    'every key is listed with its default channel',
  )
  await createdWith(t, report(res.json().key), 'phone', 'the new desk key’s requests')

  const before = list.length
  for (const [label, payload, description] of [
    ['unknown channel', { name: 'x', default_channel: 'fax' }, /default_channel/],
    ['the old api value', { name: 'x', default_channel: 'api' }, /default_channel/],
    ['set-channel without requests:write', { name: 'x', scopes: ['requests:set-channel'] }, /requests:set-channel .*requests:write/],
  ] as const) {
    const refusal = await app.inject({ method: 'POST', url: '/admin/v1/keys', headers: asAdmin, payload })
    t.equal(refusal.statusCode, 400, label)
    t.match(refusal.json(), [{ code: 400, description }], `${label}: ${refusal.body}`)
  }
  t.equal((await app.inject({ url: '/admin/v1/keys', headers: asAdmin })).json().length, before, 'no key was created')
})

t.test('CLI: keys create --channel, shown by keys list', async (t) => {
  const config = loadConfig({ DATA_DIR: '/nonexistent', ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) })
  const cli = inProcessCli(database, config)
  const made = await cli('keys', 'create', '--name', 'walk-in counter', '--scope', 'requests:write', '--scope', 'requests:set-channel', '--channel', 'walk_in')
  t.equal(made.code, 0, made.stderr)
  const [header, rawKey] = made.stdout.trim().split('\n')
  t.match(header, /^created API key \d+ "walk-in counter" with scopes requests:write, requests:set-channel and default channel walk_in, acting in every jurisdiction; it is shown only once:$/)
  await createdWith(t, report(rawKey!), 'walk_in', 'the counter’s requests')

  const listed = await cli('keys', 'list')
  t.equal(listed.code, 0, listed.stderr)
  const row = listed.stdout.split('\n').find((line) => line.includes('walk-in counter'))
  t.ok(row?.split('\t').includes('walk_in'), `keys list shows the default channel: ${row}`)
  const json = JSON.parse((await cli('keys', 'list', '--json')).stdout) as { name: string; default_channel: string }[]
  t.equal(json.find((k) => k.name === 'walk-in counter')?.default_channel, 'walk_in', 'and so does keys list --json')

  const unknown = await cli('keys', 'create', '--name', 'fax line', '--channel', 'fax')
  t.equal(unknown.code, 2, 'an unknown channel is a usage error')
  t.match(unknown.stderr, /^error: unknown channel fax; known: web, app, phone, chat, email, walk_in, text, social, internal\n/)
  const lonely = await cli('keys', 'create', '--name', 'desk', '--scope', 'requests:set-channel')
  t.equal(lonely.code, 1, 'requests:set-channel without requests:write is refused')
  t.match(lonely.stderr, /requests:set-channel .*requests:write/)
  t.notOk((await cli('keys', 'list')).stdout.match(/fax line|\tdesk\t/), 'neither refused key exists')
})

t.test('the channels migration (0014) relabels the api the server used to write as app, without moving updated_datetime', async (t) => {
  const file = (await readFile(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')).match(/"tag": "(\d{4}_channels)"/)![1]
  const relabelling = (await readFile(join(MIGRATIONS_FOLDER, `${file}.sql`), 'utf8'))
    .split('--> statement-breakpoint')
    .filter((statement) => /"service_requests"/.test(statement))
  t.ok(relabelling.length > 0, 'the migration has statements on service_requests')
  // A request as the release before channels wrote it (still possible during a rolling deploy).
  await db.execute(sql`update service_requests set channel = 'api' where public_id = ${created.app!}`)
  const [before] = await queryRows<{ updated_at: string }>(db, sql`select updated_at::text from service_requests where public_id = ${created.app!}`)
  await db.transaction(async (tx) => {
    for (const statement of relabelling) await tx.execute(sql.raw(statement))
  })
  const [after] = await queryRows<{ channel: string; updated_at: string }>(
    db,
    sql`select channel, updated_at::text from service_requests where public_id = ${created.app!}`,
  )
  t.same(after, { channel: 'app', updated_at: before!.updated_at }, 'api became app; updated_at stayed')
  await db.execute(sql`update service_requests set description = 'touched' where public_id = ${created.app!}`)
  const [touched] = await queryRows<{ updated_at: string }>(db, sql`select updated_at::text from service_requests where public_id = ${created.app!}`)
  t.not(touched!.updated_at, before!.updated_at, 'the stamping trigger is back on afterwards')
})
