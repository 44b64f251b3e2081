/**
 * /docs in a real browser: headless Chromium (Debian's `chromium` package; .ci/run installs it)
 * driven by playwright-core, which downloads nothing. A person's first steps: open the page,
 * "Authorize" with a client key and an admin key, then "Try it out" on POST requests (as a form,
 * urlencoded and multipart) and on an admin call. Each must come back 2xx as the page renders
 * it, and the requests must really exist. A screenshot of the page after the POST goes to
 * test-output/ (ignored by git).
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium, type Locator, type Page } from 'playwright-core'
import t from 'tap'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { buildTestApp } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SCREENSHOT = fileURLToPath(new URL('../../test-output/docs-after-post-request.png', import.meta.url))

// No browser: a failure that says what to do, never a skip.
if (!existsSync(CHROMIUM)) {
  throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH`)
}

const { app } = await buildTestApp(t)
await loadDemoCatalog(app.db)
const client = await createApiKey(app.db, { name: 'docs reader app', scopes: ['requests:write'] }, SERVER_ACTOR)
const admin = await createApiKey(app.db, { name: 'docs reader operator', scopes: ['admin'] }, SERVER_ACTOR)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }

// As root (CI) Chromium's sandbox cannot start; the only page it opens is ours, on loopback.
const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
t.teardown(() => browser.close())
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })

const operation = (page: Page, method: string, path: string): Locator =>
  page.locator(`.opblock-${method}`).filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) })

/** The operation block for `method path`, opened, with "Try it out" pressed. */
async function tryOut(page: Page, method: string, path: string): Promise<Locator> {
  const block = operation(page, method, path)
  await block.locator('.opblock-summary-control').click()
  await block.locator('button.try-out__btn').click()
  return block
}

async function fillForm(block: Locator, fields: Record<string, string>) {
  for (const [name, value] of Object.entries(fields)) {
    await block.locator(`tr[data-property-name="${name}"]`).locator('input[type="text"], textarea').fill(value)
  }
}

/**
 * Execute, then the status and body the page shows under "Server response" for this answer:
 * until it has rendered, the page may still show the previous one, so the wait is for the
 * body that came over the network, printed as the page prints JSON.
 */
async function execute(block: Locator, path: string): Promise<{ status: number; body: string }> {
  const answered = block.page().waitForResponse((response) => new URL(response.url()).pathname === path)
  await block.locator('button.execute').click()
  const printed = JSON.stringify(JSON.parse(await (await answered).text()), null, 2)
  const body = block.locator('.live-responses-table .response-col_description pre').filter({ hasText: printed }).first()
  await body.waitFor()
  const status = await block.locator('.live-responses-table .response .response-col_status').first().innerText()
  return { status: Number(status.trim()), body: await body.innerText() }
}

/** The request a POST answered with, as GET requests/{id} reads it back. */
async function storedRequest(body: string) {
  const [answer] = JSON.parse(body) as { service_request_id: string }[]
  const stored = await app.inject(`/open311/v2/requests/${answer?.service_request_id}.json`)
  return { id: answer?.service_request_id, statusCode: stored.statusCode, request: stored.json() as unknown[] }
}

const report = (description: string) => ({ service_code: 'sidewalk-damage', lat: '41.8781', long: '-87.6298', description })

t.test('Authorize takes a client key and an admin key', async (t) => {
  await page.goto(`http://127.0.0.1:${port}/docs`)
  await page.locator('.swagger-ui .info').waitFor()
  await page.locator('.auth-wrapper button.authorize').click()
  const modal = page.locator('.modal-ux')
  // One form per scheme, each with its own Authorize button.
  for (const [scheme, key] of [
    ['clientKey', client.key],
    ['adminKey', admin.key],
  ] as const) {
    const form = modal.locator('form').filter({ has: page.locator('h4 code', { hasText: new RegExp(`^${scheme}$`) }) })
    await form.locator('input').fill(key)
    await form.locator('button.authorize').click()
    await form.locator('h6', { hasText: 'Authorized' }).waitFor()
  }
  t.equal(await modal.locator('h6', { hasText: 'Authorized' }).count(), 2, 'both schemes show as authorized')
  await modal.locator('button.btn-done').first().click()
  await modal.waitFor({ state: 'detached' })
})

t.test('Try it out: POST requests as a form, as the page fills it in, creates the request', async (t) => {
  const block = await tryOut(page, 'post', '/open311/v2/requests.{format}')
  t.equal(await block.locator('tr[data-param-name="format"] select').inputValue(), 'json', 'the format is preselected')
  const contentType = await block.locator('.opblock-section-request-body select').first().inputValue()
  t.equal(contentType, 'application/x-www-form-urlencoded', 'the body is offered as a form first')
  t.equal(await block.locator('tr[data-property-name="jurisdiction_id"] input[type="text"]').inputValue(), '', 'optional fields start empty')
  // Nothing typed: the examples the document gives make a valid report for the demo city.
  const { status, body } = await execute(block, '/open311/v2/requests.json')
  t.equal(status, 200, `the page shows 200 (body: ${body.slice(0, 300)})`)
  const stored = await storedRequest(body)
  t.match(stored, { id: /^\d+$/, statusCode: 200 })
  t.match(stored.request, [{ service_code: 'sidewalk-damage', lat: 41.8781, long: -87.6298 }], 'the request exists as sent')

  await block.locator('.live-responses-table').scrollIntoViewIfNeeded()
  await mkdir(new URL('../../test-output/', import.meta.url), { recursive: true })
  await page.screenshot({ path: SCREENSHOT })
  t.ok(existsSync(SCREENSHOT), `screenshot written to ${SCREENSHOT}`)
})

t.test('Try it out: POST requests as multipart/form-data', async (t) => {
  const block = operation(page, 'post', '/open311/v2/requests.{format}')
  await block.locator('.opblock-section-request-body select').first().selectOption('multipart/form-data')
  const fields = report('Raised slab outside the library (from /docs, multipart)')
  await fillForm(block, fields)
  const { status, body } = await execute(block, '/open311/v2/requests.json')
  t.equal(status, 200, `the page shows 200 (body: ${body.slice(0, 300)})`)
  t.match((await storedRequest(body)).request, [{ description: fields.description }], 'the request exists as sent')
})

t.test('Try it out: an admin call carries the admin key', async (t) => {
  const block = await tryOut(page, 'get', '/admin/v1/keys')
  const { status, body } = await execute(block, '/admin/v1/keys')
  t.equal(status, 200, `the page shows 200 (body: ${body.slice(0, 300)})`)
  const names = (JSON.parse(body) as { name: string }[]).map((k) => k.name)
  t.ok(names.includes('docs reader operator') && names.includes('docs reader app'), 'the keys are listed')
})
