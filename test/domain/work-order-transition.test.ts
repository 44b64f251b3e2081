/**
 * moveWorkOrders is the one way a work order changes state: it applies what the lifecycle
 * allows and refuses the rest, changing nothing (not even the orders that could have moved).
 */
import { eq, inArray } from 'drizzle-orm'
import t from 'tap'
import { departments, serviceRequests, services, type WorkOrderState, workOrders } from '../../src/db/schema.js'
import { loadDemoCatalog } from '../../src/domain/demo/seed-demo.js'
import { DomainError } from '../../src/domain/errors.js'
import { canMove } from '../../src/domain/work-orders/lifecycle.js'
import { moveWorkOrders } from '../../src/domain/work-orders/transition.js'
import { createTestDatabase } from '../helpers/database.js'
import { SERVER_ACTOR } from '../../src/domain/audit/audit.js'

const { database } = await createTestDatabase(t)
const { db } = database
await loadDemoCatalog(db)
const [service] = await db.select().from(services).limit(1)
const [department] = await db.insert(departments).values({ jurisdictionId: service!.jurisdictionId, code: 'streets', name: 'Streets' }).returning()
const [request] = await db.insert(serviceRequests).values({ jurisdictionId: service!.jurisdictionId, serviceId: service!.id }).returning()

/** A fresh work order in `state` on the request. */
async function workOrderIn(state: WorkOrderState) {
  const [row] = await db.insert(workOrders).values({ requestId: request!.id, departmentId: department!.id, state }).returning()
  return row!
}

const stateOf = async (id: number) => (await db.select({ state: workOrders.state }).from(workOrders).where(eq(workOrders.id, id)))[0]!.state

t.test('legal moves apply, with their changes', async (t) => {
  const order = await workOrderIn('pending')
  await moveWorkOrders(db, SERVER_ACTOR, [order], 'sent')
  t.equal(await stateOf(order.id), 'sent', 'pending → sent')
  await moveWorkOrders(db, SERVER_ACTOR, [{ id: order.id, state: 'sent' }], 'scheduled', { expectedAt: new Date('2026-06-01T00:00:00Z'), externalRef: 'JOB-1' })
  const [row] = await db.select().from(workOrders).where(eq(workOrders.id, order.id))
  t.match(row, { state: 'scheduled', externalRef: 'JOB-1', expectedAt: new Date('2026-06-01T00:00:00Z') }, 'sent → scheduled, with date and reference')
  await moveWorkOrders(db, SERVER_ACTOR, [{ id: order.id, state: 'scheduled' }], 'scheduled', { expectedAt: new Date('2026-06-02T00:00:00Z') })
  t.equal(await stateOf(order.id), 'scheduled', 'scheduled → scheduled (a new date)')
  await moveWorkOrders(db, SERVER_ACTOR, [{ id: order.id, state: 'scheduled' }], 'in_progress')
  await moveWorkOrders(db, SERVER_ACTOR, [{ id: order.id, state: 'in_progress' }], 'on_hold')
  await moveWorkOrders(db, SERVER_ACTOR, [{ id: order.id, state: 'on_hold' }], 'in_progress')
  t.equal(await stateOf(order.id), 'in_progress', 'in_progress ⇄ on_hold')
  await moveWorkOrders(db, SERVER_ACTOR, [{ id: order.id, state: 'in_progress' }], 'completed')
  t.equal(await stateOf(order.id), 'completed')
})

t.test('illegal moves are refused as a conflict, naming the work order, and change nothing', async (t) => {
  const refusals: [WorkOrderState, WorkOrderState][] = [
    ['sent', 'pending'],
    ['in_progress', 'accepted'],
    ['completed', 'in_progress'],
    ['cancelled', 'pending'],
    ['rejected', 'completed'],
    ['reassigned', 'cancelled'],
    ['completed', 'completed'],
  ]
  for (const [from, to] of refusals) {
    t.notOk(canMove(from, to), `the lifecycle forbids ${from} → ${to}`)
    const order = await workOrderIn(from)
    const err = await moveWorkOrders(db, SERVER_ACTOR, [order], to).catch((e: unknown) => e)
    t.ok(err instanceof DomainError && err.kind === 'conflict', `${from} → ${to} refused as a conflict`)
    t.match((err as DomainError).message, `WO-${order.id} cannot move from ${from} to ${to}`)
    t.equal(await stateOf(order.id), from, `${from} stays ${from}`)
  }
})

t.test('one refused order in a batch stops the whole batch', async (t) => {
  const movable = await workOrderIn('pending')
  const final = await workOrderIn('completed')
  const err = await moveWorkOrders(db, SERVER_ACTOR, [movable, final], 'cancelled').catch((e: unknown) => e)
  t.ok(err instanceof DomainError && err.kind === 'conflict', 'refused as a conflict')
  t.same((err as DomainError).problems, [{ description: `work order WO-${final.id} cannot move from completed to cancelled` }], 'naming only the order that may not move')
  const states = await db.select({ id: workOrders.id, state: workOrders.state }).from(workOrders).where(inArray(workOrders.id, [movable.id, final.id]))
  t.same(Object.fromEntries(states.map((s) => [s.id, s.state])), { [movable.id]: 'pending', [final.id]: 'completed' })
})

t.test('no orders: nothing to do', async (t) => {
  await moveWorkOrders(db, SERVER_ACTOR, [], 'sent')
  t.pass('resolves')
})
