/**
 * Photos on POST requests (`media` file parts, src/domain/media/): a JPEG carrying EXIF GPS and
 * camera data goes up over a real socket as a citizen app sends it; what is served at its
 * media_url, full and thumbnail, is a decoded, upright, re-encoded JPEG with no metadata at
 * all. What is not an accepted image is a 400, what is too large a 413, and neither writes
 * anything. Photos of requests the public does not see (withdrawn, sensitive services, batch
 * requests not yet accepted) are 404 for anonymous readers, and shown to operators and to the
 * departments the request went to.
 */
import { sql } from 'drizzle-orm'
import exifr from 'exifr'
import type { LightMyRequestResponse } from 'fastify'
import { XMLParser } from 'fast-xml-parser'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import { queryRows } from '../../src/db/database.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import demoCatalog from '../../src/domain/demo/demo-catalog.json' with { type: 'json' }
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { acceptPendingTokens } from '../../src/domain/requests/tokens.js'
import { buildTestApp } from '../helpers/app.js'
import { jpegPart, MULTIPART, multipart, type Part } from '../helpers/multipart.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const MAX_BYTES = 1_048_576
const { app, rawLogs } = await buildTestApp(t, {
  media: { maxBytes: MAX_BYTES, maxFiles: 2 },
  rateLimits: { perIpPerMinute: 100_000, perKeyPerMinute: 100_000 },
})
const db = app.db
await loadDemoCatalog(db)
const client = await createApiKey(db, { name: 'photo client' }, SERVER_ACTOR)
const admin = await createApiKey(db, { name: 'photo operator', scopes: ['admin'] }, SERVER_ACTOR)
const asAdmin = { authorization: `Bearer ${admin.key}` }
const xml = new XMLParser({ parseTagValue: false, isArray: (name) => ['request', 'error', 'media_url'].includes(name) })

/** Where the reporter stood, as the phone wrote it into the photo. */
const GPS = { latitude: 41.878114, longitude: -87.629798 }
const CAMERA = { Make: 'Quillcam', Model: 'QX-7731 Pro', Artist: 'Zephyrina Oakhollow' }

const toDms = (degrees: number) => {
  const d = Math.floor(degrees)
  const m = Math.floor((degrees - d) * 60)
  const s = Math.round(((degrees - d) * 60 - m) * 60 * 10000)
  return `${d}/1 ${m}/1 ${s}/10000`
}

/**
 * A 3000 × 2000 camera JPEG stored sideways with EXIF orientation 6 (shown upright: 2000 × 3000),
 * with GPS, make, model and owner: what a phone sends. Not flat, so its re-encoding is not trivial.
 */
async function cameraJpeg(): Promise<Buffer> {
  const width = 3000
  const height = 2000
  const pixels = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3
      pixels[i] = (x * 255) / width
      pixels[i + 1] = (y * 255) / height
      pixels[i + 2] = ((x ^ y) & 0x3f) * 4
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .withMetadata({
      orientation: 6,
      exif: {
        IFD0: CAMERA,
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: toDms(GPS.latitude), GPSLongitudeRef: 'W', GPSLongitude: toDms(-GPS.longitude) },
      },
    })
    .jpeg({ quality: 90 })
    .toBuffer()
}

/** A valid pothole report's text fields. */
const pothole = (extra: Part[] = []): Part[] => [
  { name: 'api_key', value: client.key },
  { name: 'service_code', value: 'pothole' },
  { name: 'lat', value: '41.8781' },
  { name: 'long', value: '-87.6298' },
  { name: 'attribute[size]', value: 'SMALL' },
  ...extra,
]

/** A noise complaint at a home: a sensitive service in these tests. */
const noiseAtHome = (extra: Part[] = []): Part[] => [
  { name: 'api_key', value: client.key },
  { name: 'service_code', value: 'noise-complaint' },
  { name: 'address_string', value: '1234 W Quillfeather Ave' },
  { name: 'attribute[noise_type]', value: 'MUSIC' },
  ...extra,
]

const post = (parts: Part[], format = 'json', headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/open311/v2/requests.${format}`, payload: multipart(parts), headers: { 'content-type': MULTIPART, ...headers } })

interface Counts {
  service_requests: number
  media: number
  outbox: number
}

const counts = async (): Promise<Counts> =>
  (
    await queryRows<Counts>(
      db,
      sql`select (select count(*) from service_requests)::int as service_requests, (select count(*) from media)::int as media,
                 (select count(*) from outbox)::int as outbox`,
    )
  )[0]!

/** The path of a media URL on this server (the test app's PUBLIC_BASE_URL is http://open311.test). */
const pathOf = (url: string) => new URL(url).pathname

const MEDIA_URL = /^http:\/\/open311\.test\/media\/v1\/[A-Za-z0-9_-]{22}\/full\.jpg$/

/** Every kind of metadata sharp can see, and what exifr can parse, must be absent; the pixels must decode. */
async function assertClean(t: Test, bytes: Buffer, label: string) {
  const meta = await sharp(bytes).metadata()
  t.equal(meta.format, 'jpeg', `${label}: a JPEG`)
  for (const field of ['exif', 'icc', 'iptc', 'xmp', 'tifftagPhotoshop'] as const) t.notOk(meta[field], `${label}: no ${field}`)
  t.equal(meta.orientation, undefined, `${label}: no orientation tag (the pixels are upright)`)
  t.equal(await exifr.gps(bytes).catch(() => undefined), undefined, `${label}: exifr finds no GPS`)
  t.equal(await exifr.parse(bytes, true).catch(() => undefined), undefined, `${label}: exifr finds no tags at all`)
  const text = bytes.toString('latin1')
  for (const marker of ['Exif', 'Quillcam', 'QX-7731', 'Zephyrina', 'http://ns.adobe.com/xap']) t.notOk(text.includes(marker), `${label}: no "${marker}" in the bytes`)
  const { info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true })
  t.ok(info.width > 0 && info.height > 0, `${label}: decodes`)
}

function jsonErrors(t: Test, res: LightMyRequestResponse, status: number, pattern: RegExp, label: string) {
  t.equal(res.statusCode, status, `${label}: ${status}`, res.statusCode !== status ? { body: res.body } : {})
  t.match(res.headers['content-type'], /^application\/json/, `${label}: the Open311 envelope in JSON`)
  const errors = res.json() as { code: number; description: string }[]
  t.ok(Array.isArray(errors) && errors.every((e) => e.code === status), `${label}: every error carries code ${status}`)
  t.ok(errors.some((e) => pattern.test(e.description)), `${label}: an error matches ${pattern}`, { found: errors })
}

const upload = await cameraJpeg()
const shared = { id: '', mediaUrl: '' }

t.test('the test photo really carries GPS, camera data and a sideways orientation', async (t) => {
  const gps = await exifr.gps(upload)
  t.ok(gps, 'exifr finds GPS in the upload')
  t.ok(Math.abs(gps.latitude - GPS.latitude) < 1e-5 && Math.abs(gps.longitude - GPS.longitude) < 1e-5, 'at the reporter’s position', gps)
  const tags = await exifr.parse(upload, true)
  t.match(tags, { Make: CAMERA.Make, Model: CAMERA.Model, Artist: CAMERA.Artist }, 'and the camera and its owner')
  const meta = await sharp(upload).metadata()
  t.match(meta, { format: 'jpeg', width: 3000, height: 2000, orientation: 6 })
  t.ok(upload.length < MAX_BYTES, `under the limit (${upload.length} bytes)`)
})

t.test('over a real socket, as an app sends it: the photo becomes the media_url, served without any metadata', async (t) => {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const form = new FormData()
  for (const part of pothole()) if (!('file' in part)) form.append(part.name, part.value)
  form.append('description', 'Deep hole, photo attached')
  form.append('media', new Blob([upload], { type: 'image/jpeg' }), 'IMG_7731.jpg')
  const res = await fetch(`${address}/open311/v2/requests.json`, { method: 'POST', body: form })
  t.equal(res.status, 200, 'created')
  const [answer] = (await res.json()) as { service_request_id: string }[]
  shared.id = answer!.service_request_id

  const [shown] = (await app.inject(`/open311/v2/requests/${shared.id}.json?extensions=true`)).json()
  t.match(shown.media_url, MEDIA_URL, 'media_url is the photo’s public URL')
  t.same(shown.extended_attributes.media_urls, [shown.media_url], 'and the only one in media_urls')
  shared.mediaUrl = shown.media_url
  const listed = (await app.inject('/open311/v2/requests.json')).json() as { service_request_id: string; media_url: string }[]
  t.equal(listed.find((r) => r.service_request_id === shared.id)?.media_url, shared.mediaUrl, 'GET requests.json shows it')
  const inXml = xml.parse((await app.inject(`/open311/v2/requests/${shared.id}.xml`)).body)
  t.equal(inXml.service_requests.request[0].media_url[0], shared.mediaUrl, 'the XML answer too')

  const served = await fetch(`${address}${pathOf(shared.mediaUrl)}`)
  t.equal(served.status, 200, 'the photo is served')
  t.equal(served.headers.get('content-type'), 'image/jpeg')
  t.match(served.headers.get('etag'), /^"[A-Za-z0-9_-]{22}\.full"$/)
  t.equal(served.headers.get('cache-control'), 'public, max-age=60')
  t.equal(served.headers.get('x-content-type-options'), 'nosniff')
  const full = Buffer.from(await served.arrayBuffer())
  await assertClean(t, full, 'full')
  const fullMeta = await sharp(full).metadata()
  t.same([fullMeta.width, fullMeta.height], [1365, 2048], 'full: upright (the EXIF orientation applied) and at most 2048 px')

  const thumbRes = await fetch(`${address}${pathOf(shared.mediaUrl).replace('full.jpg', 'thumb.jpg')}`)
  t.equal(thumbRes.status, 200, 'the thumbnail is served')
  const thumb = Buffer.from(await thumbRes.arrayBuffer())
  await assertClean(t, thumb, 'thumb')
  const thumbMeta = await sharp(thumb).metadata()
  t.same([thumbMeta.width, thumbMeta.height], [213, 320], 'thumb: upright, at most 320 px')

  const [stored] = await queryRows<{ full_bytes: Uint8Array; thumb_bytes: Uint8Array; source_format: string; position: number }>(
    db,
    sql`select full_bytes, thumb_bytes, source_format, position from media m join service_requests sr on sr.id = m.request_id
        where sr.public_id = ${shared.id}`,
  )
  t.equal(stored!.source_format, 'jpeg')
  t.equal(stored!.position, 1)
  t.ok(Buffer.from(stored!.full_bytes).equals(full) && Buffer.from(stored!.thumb_bytes).equals(thumb), 'what is stored is what is served: the upload is not kept')
  t.notOk(Buffer.from(stored!.full_bytes).toString('latin1').includes('Quillcam'), 'no camera data in the database either')
})

t.test('conditional and HEAD requests: a matching ETag is a 304 without the bytes', async (t) => {
  const path = pathOf(shared.mediaUrl)
  const first = await app.inject(path)
  const etag = first.headers.etag as string
  const again = await app.inject({ url: path, headers: { 'if-none-match': etag } })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '')
  t.equal(again.headers.etag, etag)
  const other = await app.inject({ url: path, headers: { 'if-none-match': '"something-else"' } })
  t.equal(other.statusCode, 200)
  const head = await app.inject({ method: 'HEAD', url: path })
  t.equal(head.statusCode, 200)
  t.equal(head.headers['content-type'], 'image/jpeg')
  t.equal(head.body, '')
  for (const [url, status] of [
    [path.replace(/[A-Za-z0-9_-]{22}/, 'A'.repeat(22)), 404],
    [path.replace('full.jpg', 'huge.jpg'), 400],
    [path.replace('full.jpg', 'full.png'), 404],
    ['/media/v1/short/full.jpg', 400],
  ] as const) {
    const res = await app.inject(url)
    jsonErrors(t, res, status, /\S/, `GET ${url}`)
  }
})

t.test('PNG with transparency and WebP are accepted, stored as JPEG; several photos keep their order, before any media_url sent', async (t) => {
  const png = await sharp({ create: { width: 640, height: 480, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } })
    .withMetadata({ exif: { IFD0: CAMERA } })
    .png()
    .toBuffer()
  const webp = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#335577' } }).webp().toBuffer()
  const res = await post(
    pothole([
      { name: 'media', file: png, filename: 'screenshot.png', type: 'image/png' },
      { name: 'media', file: webp, filename: 'photo.webp', type: 'image/webp' },
      { name: 'media_url', value: 'https://photos.example/elsewhere.jpg' },
    ]),
  )
  t.equal(res.statusCode, 200, res.body)
  const id = res.json()[0].service_request_id
  const [shown] = (await app.inject(`/open311/v2/requests/${id}.json?extensions=true`)).json()
  const urls = shown.extended_attributes.media_urls as string[]
  t.equal(urls.length, 3)
  t.match(urls[0], MEDIA_URL)
  t.match(urls[1], MEDIA_URL)
  t.equal(urls[2], 'https://photos.example/elsewhere.jpg', 'the client’s own URL comes after the uploads')
  t.equal(shown.media_url, urls[0], 'media_url is the first upload')
  const first = await app.inject(pathOf(urls[0]!))
  await assertClean(t, first.rawPayload, 'PNG → JPEG')
  t.match(await sharp(first.rawPayload).metadata(), { width: 640, height: 480, channels: 3, hasAlpha: false })
  const second = await app.inject(pathOf(urls[1]!))
  t.match(await sharp(second.rawPayload).metadata(), { format: 'jpeg', width: 300, height: 200 }, 'WebP → JPEG, not enlarged')
  const formats = await queryRows<{ source_format: string }>(db, sql`select source_format from media order by id desc limit 2`)
  t.same(formats.map((f) => f.source_format).sort(), ['png', 'webp'])
})

t.test('what is not an accepted image is a 400 naming media, in both formats, and nothing is written', async (t) => {
  const gif = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#ff0000' } }).gif().toBuffer()
  const cases: [string, Part[], RegExp][] = [
    ['a text file named .jpg, declared image/jpeg', [jpegPart(Buffer.from('GIF89a? no: just text pretending'))], /^media: is not a JPEG, PNG, WebP or AVIF image/],
    ['a JPEG cut off half-way', [jpegPart(upload.subarray(0, Math.floor(upload.length / 2)))], /^media: could not be decoded/],
    ['a GIF', [jpegPart(gif, 'anim.gif')], /^media: is a gif file/],
    ['a good photo and a bad one', [jpegPart(upload), jpegPart(Buffer.from('nope'))], /^media \(photo 2\): is not/],
    ['a file under another name', [{ name: 'photo', file: upload, filename: 'a.jpg', type: 'image/jpeg' }], /^photo: files are accepted only as media/],
    ['three photos (at most 2 here)', [jpegPart(upload), jpegPart(upload), jpegPart(upload)], /^media: at most 2 photos/],
  ]
  for (const [label, parts, pattern] of cases) {
    const before = await counts()
    jsonErrors(t, await post(pothole(parts)), 400, pattern, label)
    const inXml = await post(pothole(parts), 'xml')
    t.equal(inXml.statusCode, 400, `${label} (xml): 400`)
    t.match(inXml.body, /^<\?xml version="1.0" encoding="utf-8"\?>\s*<errors><error><code>400<\/code><description>/, `${label} (xml): the envelope`)
    t.same(await counts(), before, `${label}: nothing written`)
  }
  const invalidReport = await post([...pothole([jpegPart(upload)]).filter((p) => p.name !== 'attribute[size]')])
  jsonErrors(t, invalidReport, 400, /attribute\[size\]/, 'a photo with an invalid report: the report’s error')
})

t.test('photos are read only from a caller with a valid key, given before them: else a 403 and nothing read or written', async (t) => {
  const withoutKey = (parts: Part[]) => pothole(parts).filter((p) => p.name !== 'api_key')
  const cases: [string, Part[], Record<string, string>][] = [
    ['no key at all', withoutKey([jpegPart(upload)]), {}],
    ['a key that does not exist', [{ name: 'api_key', value: 'o311_nokeyhere000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, ...withoutKey([jpegPart(upload)])], {}],
    ['the key after the photo', [...withoutKey([jpegPart(upload)]), { name: 'api_key', value: client.key }], {}],
  ]
  for (const [label, parts, headers] of cases) {
    const before = await counts()
    jsonErrors(t, await post(parts, 'json', headers), 403, /^media: photos need a valid API key with the requests:write scope first/, label)
    t.same(await counts(), before, `${label}: nothing written`)
  }
  const inHeader = await post(withoutKey([jpegPart(upload)]), 'json', { authorization: `Bearer ${client.key}` })
  t.equal(inHeader.statusCode, 200, `a key in Authorization: Bearer admits photos anywhere in the body (${inHeader.body})`)
})

t.test('a photo over MEDIA_MAX_BYTES is a 413, however the body is framed, and nothing is written', async (t) => {
  const noise = Buffer.alloc(900 * 900 * 3)
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24
  const big = await sharp(noise, { raw: { width: 900, height: 900, channels: 3 } }).jpeg({ quality: 100 }).toBuffer()
  t.ok(big.length > MAX_BYTES, `a real JPEG of ${big.length} bytes`)
  const before = await counts()
  jsonErrors(t, await post(pothole([jpegPart(big)])), 413, /^media: a photo may be at most 1 MB/, 'oversized photo')
  t.same(await counts(), before, 'nothing written')

  // A Content-Length over every limit at once is refused before the body is read.
  const declared = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    payload: 'x',
    headers: { 'content-type': MULTIPART, 'content-length': String(MAX_BYTES * 3 + app.config.bodyLimitBytes + 1) },
  })
  t.equal(declared.statusCode, 413, 'a declared length over the body limit and the photos’ is a 413 at once')
  t.same(await counts(), before, 'nothing written')
})

t.test('photos go with their request: withdrawn, sensitive and batch requests’ photos are 404 for the public', async (t) => {
  const path = pathOf(shared.mediaUrl)
  const thumbPath = path.replace('full.jpg', 'thumb.jpg')
  const withdraw = await app.inject({ method: 'POST', url: `/admin/v1/requests/${shared.id}/public-view`, headers: asAdmin, payload: { public: false, reason: 'a face' } })
  t.equal(withdraw.statusCode, 200, withdraw.body)
  for (const url of [path, thumbPath]) jsonErrors(t, await app.inject(url), 404, /no photo/, `withdrawn: GET ${url}`)
  const etag = `"${path.split('/')[3]}.full"`
  t.equal((await app.inject({ url: path, headers: { 'if-none-match': etag } })).statusCode, 404, 'a cached copy asking again gets a 404, not a 304')
  const asOperator = await app.inject({ url: path, headers: asAdmin })
  t.equal(asOperator.statusCode, 200, 'an operator still sees it, to review it')
  t.equal(asOperator.headers['cache-control'], 'private, no-store', 'and no cache keeps that answer')
  const clientKey = await app.inject({ url: path, headers: { authorization: `Bearer ${client.key}` } })
  t.equal(clientKey.statusCode, 404, 'a client key is no operator')
  const back = await app.inject({ method: 'POST', url: `/admin/v1/requests/${shared.id}/public-view`, headers: asAdmin, payload: { public: true, reason: 'blurred' } })
  t.equal(back.statusCode, 200)
  t.equal((await app.inject(path)).statusCode, 200, 'back in public view: served again')

  // A sensitive service: its requests' media are withheld from the public, photos included.
  const catalog = structuredClone(demoCatalog) as { services: { service_code: string; privacy?: string }[] }
  catalog.services.find((s) => s.service_code === 'noise-complaint')!.privacy = 'sensitive'
  t.equal((await app.inject({ method: 'PUT', url: '/admin/v1/catalog', headers: asAdmin, payload: catalog })).statusCode, 200)
  const noise = await post(noiseAtHome([jpegPart(upload)]))
  t.equal(noise.statusCode, 200, noise.body)
  const noiseId = noise.json()[0].service_request_id
  const [noiseUrl] = await queryRows<{ url: string }>(db, sql`select media_urls[1] as url from service_requests where public_id = ${noiseId}`)
  t.match(noiseUrl!.url, MEDIA_URL, 'stored with its photo')
  const [publicView] = (await app.inject(`/open311/v2/requests/${noiseId}.json`)).json()
  t.equal(publicView.media_url, null, 'the public answer shows no media_url')
  jsonErrors(t, await app.inject(pathOf(noiseUrl!.url)), 404, /no photo/, 'sensitive: the photo is not public')
  t.equal((await app.inject({ url: pathOf(noiseUrl!.url), headers: asAdmin })).statusCode, 200, 'an operator sees it')

  // A batch service: nothing of the request is public until its token is accepted.
  const leak = await post([
    { name: 'api_key', value: client.key },
    { name: 'service_code', value: 'water-leak' },
    { name: 'lat', value: '41.8781' },
    { name: 'long', value: '-87.6298' },
    { name: 'attribute[leak_location]', value: 'STREET' },
    { name: 'attribute[flow_rate]', value: 'STREAM' },
    jpegPart(upload),
  ])
  t.equal(leak.statusCode, 200, leak.body)
  t.type(leak.json()[0].token, 'string', 'a token, not an id')
  const [leakUrl] = await queryRows<{ url: string }>(
    db,
    sql`select sr.media_urls[1] as url from service_requests sr join request_tokens tk on tk.request_id = sr.id where tk.token = ${leak.json()[0].token}`,
  )
  jsonErrors(t, await app.inject(pathOf(leakUrl!.url)), 404, /no photo/, 'batch, token pending: not public yet')
  t.ok((await acceptPendingTokens(db)) >= 1, 'the token is accepted')
  t.equal((await app.inject(pathOf(leakUrl!.url))).statusCode, 200, 'accepted: the photo is public with its request')
})

t.test('a department sees the photos of the requests routed to it, sensitive or not, and its event links them', async (t) => {
  const created = await app.inject({ method: 'POST', url: '/admin/v1/departments', headers: asAdmin, payload: { code: 'noise-team', name: 'Noise team' } })
  t.equal(created.statusCode, 201, 'department registered')
  const departmentKey = created.json().inbound_api_key as string
  const other = await app.inject({ method: 'POST', url: '/admin/v1/departments', headers: asAdmin, payload: { code: 'parks', name: 'Parks' } })
  const otherKey = other.json().inbound_api_key as string
  const routed = await app.inject({ method: 'PUT', url: '/admin/v1/services/noise-complaint/routes', headers: asAdmin, payload: [{ department: 'noise-team' }] })
  t.equal(routed.statusCode, 200, 'noise complaints routed to it')

  const res = await post(noiseAtHome([jpegPart(upload)]))
  t.equal(res.statusCode, 200, res.body)
  const [event] = await queryRows<{ payload: unknown }>(db, sql`select payload from outbox order by id desc limit 1`)
  const payload = typeof event!.payload === 'string' ? JSON.parse(event!.payload) : event!.payload
  const urls = JSON.stringify(payload).match(/http:\/\/open311\.test\/media\/v1\/[A-Za-z0-9_-]{22}\/full\.jpg/g) ?? []
  t.equal(urls.length, 1, 'the work_order.created event carries the photo’s URL')
  const path = pathOf(urls[0]!)
  jsonErrors(t, await app.inject(path), 404, /no photo/, 'the public: sensitive, not shown')
  const asDepartment = await app.inject({ url: path, headers: { authorization: `Bearer ${departmentKey}` } })
  t.equal(asDepartment.statusCode, 200, 'the department it went to sees it')
  t.equal(asDepartment.headers['cache-control'], 'private, no-store')
  t.equal((await app.inject({ url: path, headers: { authorization: `Bearer ${otherKey}` } })).statusCode, 404, 'another department does not')
})

t.test('Idempotency-Key: a retry with the same photo replays; with another photo it is refused', async (t) => {
  const headers = { 'idempotency-key': 'photo-retry-1' }
  const first = await post(pothole([jpegPart(upload)]), 'json', headers)
  t.equal(first.statusCode, 200, first.body)
  const before = await counts()
  const replay = await post(pothole([jpegPart(upload)]), 'json', headers)
  t.equal(replay.statusCode, 200)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.same(replay.json(), first.json(), 'the first answer')
  t.same(await counts(), before, 'no second request, no second photo')
  const png = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#000' } }).png().toBuffer()
  jsonErrors(t, await post(pothole([jpegPart(png)]), 'json', headers), 400, /Idempotency-Key/, 'same key, other photo')
  t.same(await counts(), before, 'nothing written')
})

t.test('POST servicerequestupdates still takes no files; urlencoded POSTs are as before', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: '/open311/v2/servicerequestupdates.json',
    payload: multipart([
      { name: 'api_key', value: client.key },
      { name: 'service_request_id', value: shared.id },
      { name: 'description', value: 'Another look' },
      jpegPart(upload),
    ]),
    headers: { 'content-type': MULTIPART },
  })
  jsonErrors(t, res, 400, /^media: file uploads are not accepted/, 'a file on an update')
  const plain = await app.inject({
    method: 'POST',
    url: '/open311/v2/requests.json',
    payload: new URLSearchParams({ api_key: client.key, service_code: 'pothole', lat: '41.8781', long: '-87.6298', 'attribute[size]': 'SMALL' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.equal(plain.statusCode, 200)
  const [shown] = (await app.inject(`/open311/v2/requests/${plain.json()[0].service_request_id}.json`)).json()
  t.equal(shown.media_url, null, 'no photo, no media_url')
})

t.test('the logs carry neither the photos nor what was in them', async (t) => {
  const logs = rawLogs()
  t.match(logs, /"photos":1,/, 'the submission line counts the photos')
  for (const secret of [CAMERA.Make, CAMERA.Model, CAMERA.Artist, String(GPS.latitude), 'IMG_7731']) t.notOk(logs.includes(secret), `no "${secret}" in the logs`)
})
