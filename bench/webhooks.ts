/**
 * Webhook benchmark: delivery throughput of the running server's dispatcher to a loopback
 * receiver (a separate process), and request-created → department-received latency.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'
import { createDepartment, findDepartment, setServiceRoutes } from '../src/domain/departments/departments.js'
import { createWebhookContext } from '../src/integrations/webhooks/context.js'
import { systemActor } from '../src/domain/audit/audit.js'

export const BENCH_SECRETS_KEY = Buffer.alloc(32, 3).toString('base64')
export const BENCH_WEBHOOK_ENV = {
  SECRETS_KEY: BENCH_SECRETS_KEY,
  OUTBOUND_ALLOWLIST: '127.0.0.1/32',
  OUTBOUND_ALLOW_HTTP: 'true',
  OUTBOUND_ALLOWED_PORTS: '*',
}
const quiet = { warn: () => {}, info: () => {}, error: () => {} }

export interface Receiver {
  process: ChildProcess
  url: string
  arrivals: Map<string, number>
  byRequest: Map<string, number>
}

export async function startReceiver(port: number): Promise<Receiver> {
  const child = spawn('node', ['--import', 'tsx', 'bench/receiver.ts'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] })
  const arrivals = new Map<string, number>()
  const byRequest = new Map<string, number>()
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') return resolve()
      const [eventId, requestId, at] = line.split(' ')
      arrivals.set(eventId!, Number(at))
      if (requestId) byRequest.set(requestId, Number(at))
    })
  })
  return { process: child, url: `http://127.0.0.1:${port}/hook`, arrivals, byRequest }
}

/** Registers (or re-points) the bench department and routes `serviceCode` to it. */
export async function prepareDepartment(databaseUrl: string, receiverUrl: string, serviceCode: string) {
  const config = loadConfig({ DATABASE_URL: databaseUrl, ...BENCH_WEBHOOK_ENV })
  const database = await openDatabase({ databaseUrl, logger: quiet, poolSize: 2 })
  const webhooks = await createWebhookContext(config)
  try {
    let department = await findDepartment(database.db, 'demo.open311.city', 'bench').catch(() => null)
    if (!department) {
      department = (await createDepartment(database.db, webhooks, { jurisdictionId: 'demo.open311.city', code: 'bench', name: 'Bench Dept', webhookUrl: receiverUrl }, systemActor('bench'))).department
    }
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query(`update departments set webhook_url = $1, enabled = true, failing_since = null where id = $2`, [receiverUrl, department.id])
    // Earlier runs' leftovers must not count.
    await client.query(`update outbox set state = 'cancelled' where state = 'pending'`)
    await client.end()
    await setServiceRoutes(database.db, 'demo.open311.city', serviceCode, [{ department: 'bench' }], systemActor('bench'))
    return department.id
  } finally {
    await webhooks.agent.close()
    await database.close()
  }
}

/**
 * Enqueues `count` work_order.created events (one work order each) as one transaction, wakes
 * the running server's dispatcher as a commit does (NOTIFY on the outbox channel), and times
 * until the receiver has every one: the server's own workers, at their default settings.
 */
export async function benchServerDeliveries(databaseUrl: string, departmentId: number, receiver: Receiver, count: number) {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    // Earlier runs' leftovers (and requests POSTed by other scenarios) must not count.
    await client.query(`update outbox set state = 'cancelled' where state = 'pending'`)
    const started = Date.now()
    const { rows } = await client.query<{ event_id: string }>(
      `with picked as (select id from service_requests where status = 'open' order by id limit $1),
            wo as (insert into work_orders (request_id, department_id, state) select id, $2, 'pending' from picked returning id, request_id),
            event as (
              insert into outbox (event_id, department_id, work_order_id, event_type, payload)
              select 'evt_bench_' || wo.id || '_' || (extract(epoch from clock_timestamp()) * 1000)::bigint, $2, wo.id, 'work_order.created',
                     jsonb_build_object('type', 'work_order.created', 'version', '1', 'data',
                       jsonb_build_object('work_order', jsonb_build_object('id', 'WO-' || wo.id), 'service_request',
                         jsonb_build_object('service_request_id', sr.public_id, 'description', sr.description, 'address', sr.address)))
              from wo join service_requests sr on sr.id = wo.request_id
              returning event_id)
       select event_id, pg_notify('open311_outbox', '') from event`,
      [count, departmentId],
    )
    const deadline = Date.now() + 300_000
    const missing = () => rows.filter((r) => !receiver.arrivals.has(r.event_id)).length
    while (missing() > 0 && Date.now() < deadline) await sleep(50)
    const last = Math.max(...rows.map((r) => receiver.arrivals.get(r.event_id) ?? 0))
    const received = rows.length - missing()
    // A rate over part of the events (or over none) would read as a figure; it is a failure.
    if (rows.length !== count) throw new Error(`deliveries: only ${rows.length} open requests to give ${count} events to`)
    if (received !== count) throw new Error(`deliveries: ${received} of ${count} events arrived within 300 s`)
    const seconds = (last - started) / 1000
    return { count: rows.length, received, seconds, perSecond: Math.round(received / seconds) }
  } finally {
    await client.end()
  }
}

/** POSTs requests at a steady pace to the running server and measures POST → receiver arrival. */
export async function benchLatency(base: string, apiKey: string, serviceCode: string, receiver: Receiver, count: number, perSecond: number) {
  const sentAt = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const t0 = Date.now()
    const body = new URLSearchParams({ api_key: apiKey, service_code: serviceCode, lat: '41.88', long: '-87.63', 'attribute[size]': 'SMALL' })
    const response = await fetch(`${base}/open311/v2/requests.json`, { method: 'POST', body })
    const [answer] = (await response.json()) as { service_request_id: string }[]
    sentAt.set(answer!.service_request_id, t0)
    await sleep(Math.max(0, 1000 / perSecond - (Date.now() - t0)))
  }
  await sleep(2000)
  const latencies = [...sentAt]
    .map(([id, t0]) => (receiver.byRequest.get(id) ?? Number.NaN) - t0)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? Number.NaN
  return { sent: count, received: latencies.length, p50: pct(0.5), p99: pct(0.99) }
}
