/**
 * Shared set-up for the webhook tests: a real receiver (node:http on 127.0.0.1) standing in
 * for department work-order systems, an app with the demo catalog and keys, helpers to
 * register departments through the admin API, route services to them, submit requests and
 * step the dispatcher on a fake clock. No database mocks: everything runs against the real
 * backend of the run (embedded or DATABASE_URL).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { asc, eq } from 'drizzle-orm'
import { departments, outbox, serviceRequests, workOrders } from '../../src/db/schema.js'
import { createApiKey } from '../../src/domain/api-keys/api-keys.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { type DepartmentDeliveryOptions, deliverDue } from '../../src/workers/department-deliveries.js'
import type { AppConfig } from '../../src/config.js'
import { buildTestApp, type TestApp, type TestAppOptions } from '../helpers/app.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

export const HOUR = 3_600_000
export const MINUTE = 60_000
export const SECOND = 1_000

/** One request as the receiver got it: the raw body bytes and the Standard Webhooks headers. */
export interface Delivery {
  path: string
  headers: IncomingHttpHeaders
  body: string
  /** The raw body bytes, as a verifier must use them. */
  raw: Buffer
  id: string
  timestamp: number
  signature: string
  /** When the receiver got it (real time). */
  at: number
}

/** Answers one delivery; when it returns without ending `res`, the receiver answers 200. */
export type Handler = (delivery: Delivery, res: ServerResponse) => unknown

export interface Receiver {
  port: number
  url(path: string): string
  /** Every request that reached the server, by path (including paths that are not hooks). */
  hits(path: string): number
  deliveries(path?: string): Delivery[]
  handle(path: string, handler: Handler): void
}

export async function startReceiver(t: Teardown): Promise<Receiver> {
  const all: Delivery[] = []
  const hitCounts = new Map<string, number>()
  const handlers = new Map<string, Handler>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!
      hitCounts.set(path, (hitCounts.get(path) ?? 0) + 1)
      const header = (name: string) => {
        const v = req.headers[name]
        return Array.isArray(v) ? (v[0] ?? '') : (v ?? '')
      }
      const delivery: Delivery = {
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        raw: Buffer.concat(chunks),
        id: header('webhook-id'),
        timestamp: Number(header('webhook-timestamp')),
        signature: header('webhook-signature'),
        at: Date.now(),
      }
      all.push(delivery)
      const handler = handlers.get(path)
      Promise.resolve(handler ? handler(delivery, res) : undefined)
        .then(() => {
          if (!res.headersSent && !res.destroyed && !res.writableEnded) res.writeHead(200).end('ok')
        })
        .catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(599).end(String(err))
        })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hits: (path) => hitCounts.get(path) ?? 0,
    deliveries: (path) => (path ? all.filter((d) => d.path === path) : [...all]),
    handle: (path, handler) => void handlers.set(path, handler),
  }
}

/** A settable clock for the dispatcher's `now`. */
export class FakeClock {
  private ms: number
  constructor(start = Date.now()) {
    this.ms = start
  }
  readonly now = () => new Date(this.ms)
  get time() {
    return this.ms
  }
  set(at: Date | number) {
    this.ms = typeof at === 'number' ? at : at.getTime()
  }
  advance(ms: number) {
    this.ms += ms
  }
}

export type OutboxRow = typeof outbox.$inferSelect

export interface Harness extends TestApp {
  receiver: Receiver
  admin: Record<string, string>
  clientKey: string
  /** Registers a department whose webhook goes to the receiver at /hook/<code>. */
  registerDepartment(code: string, extra?: Record<string, unknown>): Promise<{ secret: string; inboundKey: string; id: number; hookPath: string }>
  /** Sends a service's new requests to one department (replacing its routes). */
  route(serviceCode: string, department: string): Promise<void>
  /** POST requests.json for sidewalk-damage (no required attributes); returns the service_request_id. */
  submit(serviceCode?: string, fields?: Record<string, string>): Promise<string>
  dispatch(options?: Partial<DepartmentDeliveryOptions>): Promise<number>
  outboxOf(department: string): Promise<OutboxRow[]>
  departmentRow(code: string): Promise<typeof departments.$inferSelect>
  workOrdersOf(publicRequestId: string): Promise<(typeof workOrders.$inferSelect)[]>
  alerts(): Promise<{ id: number; kind: string; message: string }[]>
  /** Disables a department, so its leftover rows can never be claimed by a later test. */
  retire(code: string): Promise<void>
}

export async function setupHarness(t: Teardown, overrides: Partial<AppConfig> = {}, options: TestAppOptions = {}): Promise<Harness> {
  const testApp = await buildTestApp(t, { rateLimits: { perIpPerMinute: 1_000_000, perKeyPerMinute: 1_000_000 }, ...overrides }, options)
  const { app } = testApp
  await loadDemoCatalog(app.db)
  const adminKey = await createApiKey(app.db, { name: 'webhook-tests-admin', scopes: ['admin'] }, SERVER_ACTOR)
  const client = await createApiKey(app.db, { name: 'webhook-tests-client' }, SERVER_ACTOR)
  const receiver = await startReceiver(t)
  const admin = { authorization: `Bearer ${adminKey.key}` }

  const departmentRow = async (code: string) => {
    const [row] = await app.db.select().from(departments).where(eq(departments.code, code))
    if (!row) throw new Error(`no department ${code}`)
    return row
  }

  return {
    ...testApp,
    receiver,
    admin,
    clientKey: client.key,
    async registerDepartment(code, extra = {}) {
      const hookPath = `/hook/${code}`
      const res = await app.inject({
        method: 'POST',
        url: '/admin/v1/departments',
        headers: admin,
        payload: { code, name: `Department ${code}`, webhook_url: receiver.url(hookPath), ...extra },
      })
      if (res.statusCode !== 201) throw new Error(`registering ${code}: ${res.statusCode} ${res.body}`)
      const body = res.json() as { signing_secret: string; inbound_api_key: string }
      return { secret: body.signing_secret, inboundKey: body.inbound_api_key, id: (await departmentRow(code)).id, hookPath }
    },
    async route(serviceCode, department) {
      const res = await app.inject({ method: 'PUT', url: `/admin/v1/services/${serviceCode}/routes`, headers: admin, payload: [{ department }] })
      if (res.statusCode !== 200) throw new Error(`routing ${serviceCode}: ${res.statusCode} ${res.body}`)
    },
    async submit(serviceCode = 'sidewalk-damage', fields = {}) {
      const form = new URLSearchParams({ api_key: client.key, service_code: serviceCode, lat: '41.8781', long: '-87.6298', ...fields })
      const res = await app.inject({
        method: 'POST',
        url: '/open311/v2/requests.json',
        payload: form.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      if (res.statusCode !== 200) throw new Error(`submitting: ${res.statusCode} ${res.body}`)
      return (res.json() as { service_request_id: string }[])[0]!.service_request_id
    },
    dispatch(options = {}) {
      return deliverDue({
        db: app.db,
        secretBox: app.webhooks.secretBox,
        agent: app.webhooks.agent,
        workerId: 'test-worker',
        timeoutMs: 5_000,
        disableAfterDays: 5,
        ...options,
      })
    },
    async outboxOf(code) {
      const department = await departmentRow(code)
      return app.db.select().from(outbox).where(eq(outbox.departmentId, department.id)).orderBy(asc(outbox.id))
    },
    departmentRow,
    async workOrdersOf(publicId) {
      const rows = await app.db
        .select({ w: workOrders })
        .from(workOrders)
        .innerJoin(serviceRequests, eq(serviceRequests.id, workOrders.requestId))
        .where(eq(serviceRequests.publicId, publicId))
        .orderBy(asc(workOrders.id))
      return rows.map((r) => r.w)
    },
    async alerts() {
      const res = await app.inject({ url: '/admin/v1/alerts', headers: admin })
      if (res.statusCode !== 200) throw new Error(`alerts: ${res.statusCode} ${res.body}`)
      return res.json()
    },
    async retire(code) {
      await app.db.update(departments).set({ enabled: false }).where(eq(departments.code, code))
    },
  }
}
