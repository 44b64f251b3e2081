/**
 * Privacy on the public side: reporter data sent with POST requests (email, phone, names,
 * device and account ids) and non-public attribute answers are stored, but no public GET ever
 * shows them; a request marked non-public disappears from every public read.
 */
import { sql } from 'drizzle-orm'
import type { LightMyRequestResponse } from 'fastify'
import { XMLParser } from 'fast-xml-parser'
import t, { type Test } from 'tap'
import { queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { acceptPendingTokens } from '../../src/domain/requests/tokens.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const xml = new XMLParser({ parseTagValue: false, isArray: (name) => ['request', 'request_update', 'error', 'service'].includes(name) })

// One database per test file; subtests share it and run in order.
const { app, rawLogs } = await buildTestApp(t)
const db = app.db
await loadDemoCatalog(db)
const client = await createApiKey(db, { name: 'privacy client' }, SERVER_ACTOR)

/** Distinctive personal values: none of them occurs in the catalog or anywhere else. */
const PERSON = {
  email: 'unique-xyz@example.org',
  phone: '+1 555 0142 8873',
  first_name: 'Zephyrina',
  last_name: 'Quillfeather-Oyelaran',
  device_id: 'device-7f3e2a91-privacy',
  account_id: 'acct-PRIV-5599317',
}
/** Answer to an attribute the catalog marks public: false (abandoned-vehicle license_plate). */
const PRIVATE_PLATE = 'PLATE-QZX-4417'

/** What must never appear in a public body: every value, and the telling parts of some. */
const SECRETS = [...Object.values(PERSON), 'unique-xyz', '0142 8873', PRIVATE_PLATE]

const LOCATION = { lat: '41.8790', long: '-87.6360' }

function form(fields: Record<string, string | string[]>): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) params.append(k, x)
  return params.toString()
}

const BOUNDARY = '----privacyBoundaryQ3x9'
function multipart(fields: Record<string, string>): string {
  return (
    Object.entries(fields)
      .map(([name, value]) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
      .join('') + `--${BOUNDARY}--\r\n`
  )
}

const post = (format: 'json' | 'xml', payload: string, contentType = 'application/x-www-form-urlencoded') =>
  app.inject({ method: 'POST', url: `/open311/v2/requests.${format}`, payload, headers: { 'content-type': contentType } })

function assertNoSecrets(t: Test, res: LightMyRequestResponse, label: string) {
  const body = res.body.toLowerCase()
  const found = SECRETS.filter((s) => body.includes(s.toLowerCase()))
  t.same(found, [], `${label}: no personal value in the body`)
}

// --- the reports ------------------------------------------------------------------------

const created: { realtime: string[]; batchTokens: string[] } = { realtime: [], batchTokens: [] }

t.test('POSTs carrying personal data are accepted; account_id is echoed in the POST answer', async (t) => {
  const json = await post(
    'json',
    form({ api_key: client.key, service_code: 'pothole', ...LOCATION, 'attribute[size]': 'LARGE', description: 'Big hole', ...PERSON }),
  )
  t.equal(json.statusCode, 200, 'pothole (JSON)', { body: json.body })
  const [answer] = json.json()
  t.type(answer.service_request_id, 'string')
  t.equal(answer.account_id, PERSON.account_id, 'the POST answer echoes the submitter’s account_id')
  for (const [name, value] of Object.entries(PERSON)) {
    if (name !== 'account_id') t.notOk(json.body.includes(value), `the POST answer does not echo ${name}`)
  }
  created.realtime.push(answer.service_request_id)

  const xmlRes = await post(
    'xml',
    form({ api_key: client.key, service_code: 'streetlight-out', ...LOCATION, 'attribute[pattern]': 'OUT', ...PERSON }),
  )
  t.equal(xmlRes.statusCode, 200, 'streetlight-out (XML)', { body: xmlRes.body })
  const [request] = xml.parse(xmlRes.body).service_requests.request
  t.equal(request.account_id, PERSON.account_id, 'XML answer: <account_id> echoed')
  created.realtime.push(request.service_request_id)

  const mp = await post(
    'json',
    multipart({ api_key: client.key, service_code: 'graffiti', ...LOCATION, 'attribute[surface][]': 'WALL', 'attribute[offensive]': 'NO', ...PERSON }),
    `multipart/form-data; boundary=${BOUNDARY}`,
  )
  t.equal(mp.statusCode, 200, 'graffiti (multipart)', { body: mp.body })
  t.equal(mp.json()[0].account_id, PERSON.account_id)
  created.realtime.push(mp.json()[0].service_request_id)

  const batch = await post(
    'json',
    form({
      api_key: client.key,
      service_code: 'abandoned-vehicle',
      ...LOCATION,
      'attribute[license_plate]': PRIVATE_PLATE,
      'attribute[make_model]': 'Green van',
      'attribute[first_seen]': '2024-05-10T18:30:00-05:00',
      ...PERSON,
    }),
  )
  t.equal(batch.statusCode, 200, 'abandoned-vehicle (batch)', { body: batch.body })
  t.type(batch.json()[0].token, 'string')
  t.equal(batch.json()[0].account_id, PERSON.account_id)
  created.batchTokens.push(batch.json()[0].token)

  const anonymous = await post('json', form({ api_key: client.key, service_code: 'pothole', ...LOCATION, 'attribute[size]': 'SMALL' }))
  t.equal(anonymous.json()[0].account_id, null, 'without account_id the answer carries null')

  // Tokens resolve to ids, as the background acceptor would do.
  t.ok((await acceptPendingTokens(db)) >= 1, 'pending tokens accepted')
})

t.test('the personal values are stored (so the checks below mean something)', async (t) => {
  const rows = await queryRows<Record<string, string | null>>(
    db,
    sql`select r.email, r.phone, r.first_name, r.last_name, r.device_id, r.account_id
        from request_reporters r join service_requests sr on sr.id = r.request_id
        where sr.public_id in ${created.realtime}`,
  )
  t.equal(rows.length, created.realtime.length, 'one reporter row per realtime request')
  for (const row of rows) t.same(row, PERSON, 'every personal field stored as sent')

  const [batchRow] = await queryRows<{ email: string; attributes: Record<string, unknown> | string }>(
    db,
    sql`select r.email, sr.attributes from request_tokens tk
        join service_requests sr on sr.id = tk.request_id
        join request_reporters r on r.request_id = sr.id
        where tk.token = ${created.batchTokens[0]!}`,
  )
  t.equal(batchRow?.email, PERSON.email, 'batch request: reporter stored')
  const attributes = typeof batchRow?.attributes === 'string' ? JSON.parse(batchRow.attributes) : batchRow?.attributes
  t.equal(attributes?.license_plate, PRIVATE_PLATE, 'the non-public attribute answer is stored')
})

// --- every public GET ---------------------------------------------------------------------

/** Every public GET URL, for both formats. */
async function publicUrls(): Promise<string[]> {
  const services = (await app.inject('/open311/v2/services.json')).json() as { service_code: string }[]
  const tokens = created.batchTokens
  const batchIds = await Promise.all(
    tokens.map(async (token) => ((await app.inject(`/open311/v2/tokens/${token}.json`)).json() as { service_request_id?: string }[])[0]?.service_request_id),
  )
  const ids = [...created.realtime, ...batchIds.filter((id): id is string => typeof id === 'string')]
  const paths = [
    '/discovery',
    '/services',
    ...services.map((s) => `/services/${s.service_code}`),
    ...tokens.map((token) => `/tokens/${token}`),
    ...ids.map((id) => `/requests/${id}`),
    '/requests',
    '/servicerequestupdates',
  ]
  const queries = (path: string) =>
    path.startsWith('/requests')
      ? ['', '?extensions=true', ...(path === '/requests' ? [`?service_request_id=${ids.join(',')}&extensions=true`, '?status=open&extensions=true'] : [])]
      : path === '/servicerequestupdates'
        ? ['', `?start_date=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}`]
        : ['']
  const open311 = paths.flatMap((path) => queries(path).flatMap((q) => [`/open311/v2${path}.json${q}`, `/open311/v2${path}.xml${q}`]))
  return [...open311, ...(await feedPages())]
}

/** Every open-data feed in every format, whole and filtered, and each of its pages. */
async function feedPages(): Promise<string[]> {
  const feeds = [
    ...['csv', 'json', 'geojson'].flatMap((f) => ['', '?status=open', '?service_code=abandoned-vehicle'].map((q) => `/open-data/v1/requests.${f}${q}`)),
    ...['csv', 'json'].flatMap((f) => [`/open-data/v1/updates.${f}`, `/open-data/v1/removed.${f}`]),
  ]
  const urls = [...feeds]
  for (const feed of feeds) {
    for (let next: string | undefined = `${feed}${feed.includes('?') ? '&' : '?'}limit=2`; next; ) {
      urls.push(next)
      const link = (await app.inject(next)).headers.link as string | undefined
      next = link ? /^<http:\/\/open311\.test([^>]+)>/.exec(link)![1] : undefined
    }
  }
  return urls
}

t.test('no public GET shows any personal value or non-public answer', async (t) => {
  const urls = await publicUrls()
  t.ok(urls.length >= 40, `${urls.length} public URLs`)
  for (const url of urls) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, `${url}: 200`)
    assertNoSecrets(t, res, url)
  }
})

t.test('the public GETs do show the requests themselves (the checks above are not vacuous)', async (t) => {
  const list = await app.inject('/open311/v2/requests.json?extensions=true')
  const shownIds = (list.json() as { service_request_id: string }[]).map((r) => r.service_request_id)
  for (const id of created.realtime) t.ok(shownIds.includes(id), `GET requests lists ${id}`)
  const [batch] = (await app.inject(`/open311/v2/tokens/${created.batchTokens[0]}.json`)).json()
  t.type(batch.service_request_id, 'string', 'the batch token resolved')
  t.ok(shownIds.includes(batch.service_request_id), 'GET requests lists the batch request')
  const vehicle = (list.json() as { service_request_id: string; service_code: string }[]).find(
    (r) => r.service_request_id === batch.service_request_id,
  )
  t.equal(vehicle?.service_code, 'abandoned-vehicle')

  const updates = (await app.inject('/open311/v2/servicerequestupdates.json')).json() as { service_request_id: string }[]
  for (const id of created.realtime) t.ok(updates.some((u) => u.service_request_id === id), `servicerequestupdates has ${id}`)

  const single = (await app.inject(`/open311/v2/requests/${created.realtime[0]}.json?extensions=true`)).json()
  t.match(single, [{ service_request_id: created.realtime[0], description: 'Big hole', service_code: 'pothole' }])
  for (const field of ['email', 'phone', 'first_name', 'last_name', 'device_id', 'account_id', 'requestor_name', 'contact_email']) {
    t.notOk(field in single[0], `no ${field} field on a public request`)
  }
})

// On the PostgreSQL backend this fails with the extensions bug reported with post-requests.test.ts
// (GET ?extensions=true always answers attributes: []), which would also make the absence of the
// plate above vacuous there.
t.test('extensions=true shows public attribute answers but never a public: false one (BUG on PostgreSQL: attributes always [])', async (t) => {
  const [batch] = (await app.inject(`/open311/v2/tokens/${created.batchTokens[0]}.json`)).json()
  for (const format of ['json', 'xml'] as const) {
    const res = await app.inject(`/open311/v2/requests/${batch.service_request_id}.${format}?extensions=true`)
    t.equal(res.statusCode, 200)
    t.ok(res.body.includes('Green van'), `${format}: the public make_model answer is shown`)
    t.notOk(res.body.includes(PRIVATE_PLATE), `${format}: the license_plate answer is not`)
    t.notOk(res.body.includes('license_plate'), `${format}: not even its code`)
  }
})

t.test('the open-data feeds show the requests and their public answers, never a public: false one', async (t) => {
  const [batch] = (await app.inject(`/open311/v2/tokens/${created.batchTokens[0]}.json`)).json()
  for (const format of ['csv', 'json', 'geojson']) {
    const res = await app.inject(`/open-data/v1/requests.${format}`)
    t.equal(res.statusCode, 200)
    for (const id of [...created.realtime, batch.service_request_id]) t.ok(res.body.includes(`"${id}"`), `requests.${format} lists ${id}`)
    t.ok(res.body.includes('Green van'), `requests.${format}: the public make_model answer is shown`)
    t.notOk(res.body.includes('license_plate'), `requests.${format}: the license_plate answer is not, nor its code`)
    t.notOk(res.body.includes('Big hole'), `requests.${format}: descriptions (free text) are not published`)
  }
})

t.test('the app logs carry no personal value either', async (t) => {
  const logs = rawLogs().toLowerCase()
  t.ok(logs.length > 0, 'something was logged')
  t.same(
    SECRETS.filter((s) => logs.includes(s.toLowerCase())),
    [],
    'no personal value in the log output',
  )
})

// --- non-public requests -----------------------------------------------------------------

t.test('a request marked non-public disappears from every public read', async (t) => {
  const secretText = 'NONPUBLIC-report-text-31337'
  const res = await post('json', form({ api_key: client.key, service_code: 'pothole', ...LOCATION, 'attribute[size]': 'SMALL', description: secretText }))
  t.equal(res.statusCode, 200)
  const id = res.json()[0].service_request_id as string
  const idPattern = new RegExp(`\\b${id}\\b`)

  const visible = await app.inject(`/open311/v2/requests/${id}.json`)
  t.equal(visible.statusCode, 200, 'public at first')
  const updatesBefore = (await app.inject('/open311/v2/servicerequestupdates.json')).json() as { service_request_id: string }[]
  t.ok(updatesBefore.some((u) => u.service_request_id === id), 'its history is in servicerequestupdates at first')

  await db.execute(sql`update service_requests set is_public = false where public_id = ${id}`)

  for (const format of ['json', 'xml'] as const) {
    for (const query of ['', '?extensions=true']) {
      const one = await app.inject(`/open311/v2/requests/${id}.${format}${query}`)
      t.equal(one.statusCode, 404, `GET requests/${id}.${format}${query}: 404`)
      if (format === 'json') t.match(one.json(), [{ code: 404, description: String }])
      else t.match(xml.parse(one.body).errors.error[0], { code: '404' })
      t.notOk(one.body.includes(secretText), 'the 404 shows nothing of it')
    }
    for (const query of ['', '?extensions=true', `?service_request_id=${id}`, `?service_request_id=${id}&extensions=true`, '?service_code=pothole']) {
      const list = await app.inject(`/open311/v2/requests.${format}${query}`)
      t.equal(list.statusCode, 200)
      const ids =
        format === 'json'
          ? (list.json() as { service_request_id: string }[]).map((r) => r.service_request_id)
          : ((xml.parse(list.body).service_requests?.request ?? []) as { service_request_id: string }[]).map((r) => r.service_request_id)
      t.notOk(ids.includes(id), `GET requests.${format}${query} does not list it`)
      t.notOk(list.body.includes(secretText), `GET requests.${format}${query} does not show its description`)
    }
    const byId = await app.inject(`/open311/v2/requests.${format}?service_request_id=${id}`)
    if (format === 'json') t.same(byId.json(), [], 'asked for by id: an empty list')

    const updates = await app.inject(`/open311/v2/servicerequestupdates.${format}`)
    t.equal(updates.statusCode, 200)
    const updateIds =
      format === 'json'
        ? (updates.json() as { service_request_id: string }[]).map((u) => u.service_request_id)
        : ((xml.parse(updates.body).service_request_updates?.request_update ?? []) as { service_request_id: string }[]).map(
            (u) => u.service_request_id,
          )
    t.ok(updateIds.length > 0, `servicerequestupdates.${format} still lists the public requests`)
    t.notOk(updateIds.includes(id), `servicerequestupdates.${format} has none of its history`)
    t.notOk(idPattern.test(updates.body.replace(/<update_id>\d+<\/update_id>|"update_id":"\d+"/g, '')), 'its id appears nowhere')
  }
  for (const feed of ['requests.csv', 'requests.json', 'requests.geojson', 'updates.csv', 'updates.json']) {
    const res = await app.inject(`/open-data/v1/${feed}`)
    t.equal(res.statusCode, 200)
    t.ok(res.body.includes(created.realtime[0]!), `${feed} lists the public requests`)
    t.notOk(idPattern.test(res.body.replace(/"update_id" : "\d+"|^"\d+",/gm, '')), `${feed} does not list it`)
  }
})
