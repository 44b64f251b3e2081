/**
 * When a department's report happened, and what is "older": a signed callback without
 * occurred_at happened at its webhook-timestamp; times are compared at the precision the
 * sender gave (a report in the same second, sent to the second, is not older); and a report
 * that is not applied is never answered as if it were — on mySociety's door it is a 409 the
 * back office sees, with nothing left behind.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { buildDepartmentHarness, startReceiver } from './fixtures/harness.js'

const receiver = await startReceiver(t)
const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'times.test.example', name: 'Times Test City', time_zone: 'UTC' },
  services: [{ service_code: 'pothole', service_name: 'Pothole', group: 'Streets' }],
})
const streets = await h.registerDepartment({ code: 'streets', name: 'Streets Dept', webhook_url: receiver.url })
await h.setRoutes('pothole', [{ department: 'streets' }])

async function lastEventAt(workOrder: string): Promise<number> {
  const [row] = await h.rows<{ ms: number }>(
    sql`select (extract(epoch from last_event_at) * 1000)::bigint as ms from work_orders where id = ${Number(workOrder.slice(3))}`,
  )
  return Number(row!.ms)
}

async function publicUpdates(id: string) {
  const res = await h.app.inject(`/open311/v2/servicerequestupdates.json?service_request_id=${id}`)
  return res.json() as { update_id: string; status: string; description: string }[]
}

/** A whole second some way back, so both doors' times are in the past and exact. */
const secondAgo = (seconds: number) => Math.floor(Date.now() / 1000) - seconds

t.test('a signed callback without occurred_at happened at its webhook-timestamp', async (t) => {
  const id = await h.createRequest('pothole')
  const [wo] = await h.workOrders(id)
  const timestamp = secondAgo(30)
  const res = await h.statusChanged(streets, { work_order_id: wo!.id, status: 'accepted' }, { timestamp })
  t.match(res.json(), { applied: true })
  t.equal(await lastEventAt(wo!.id), timestamp * 1000, 'the work order’s last report time is the webhook-timestamp, not the arrival time')
})

t.test('mySociety, to the second, in the same second as a signed report already applied: applied, and public', async (t) => {
  const id = await h.createRequest('pothole')
  const [wo] = await h.workOrders(id)
  const second = secondAgo(20)
  // The signed report carries milliseconds: 300 ms into that second.
  const signed = await h.statusChanged(streets, { work_order_id: wo!.id, status: 'accepted', occurred_at: new Date(second * 1000 + 300).toISOString() })
  t.match(signed.json(), { applied: true })
  const sameSecond = new Date(second * 1000).toISOString().replace('.000Z', 'Z')
  const res = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'fms-81', status: 'IN_PROGRESS', updated_datetime: sameSecond, description: 'Crew on the way' })
  t.equal(res.statusCode, 200, res.body)
  const [{ update_id: updateId } = { update_id: '' }] = res.json() as { update_id: string }[]
  t.equal((await h.publicRequest(id)).status_notes, 'Crew on the way', 'the public status moved')
  t.ok((await publicUpdates(id)).some((u) => u.update_id === updateId && u.description === 'Crew on the way'), `update ${updateId} is in servicerequestupdates`)
  t.equal(await lastEventAt(wo!.id), second * 1000 + 300, 'the last report time never goes back (to the millisecond)')
})

t.test('mySociety, not applied (stale, final, backwards): 409 naming why, nothing stored, the same on a retry', async (t) => {
  const id = await h.createRequest('pothole')
  const [wo] = await h.workOrders(id)
  const now = secondAgo(10)
  t.match((await h.statusChanged(streets, { work_order_id: wo!.id, status: 'in_progress', occurred_at: new Date(now * 1000).toISOString() })).json(), { applied: true })
  const updatesBefore = await h.updateCount(id)
  const previousSecond = new Date((now - 1) * 1000).toISOString().replace('.000Z', 'Z')
  const cases = [
    { label: 'stale', fields: { update_id: 'fms-90', status: 'ACTION_SCHEDULED', updated_datetime: previousSecond }, reason: /not applied \(stale\)/ },
    { label: 'backwards', fields: { update_id: 'fms-91', status: 'OPEN', updated_datetime: new Date(now * 1000).toISOString() }, reason: /not applied \(backwards\).*in_progress/ },
  ]
  for (const { label, fields, reason } of cases) {
    for (const attempt of ['first', 'retry']) {
      const res = await h.postUpdate(streets.key, { service_request_id: id, description: `${label} note`, ...fields })
      t.equal(res.statusCode, 409, `${label} (${attempt}): 409`)
      t.match(res.json(), [{ code: 409, description: reason }], `${label} (${attempt}): says why`)
    }
  }
  const xmlRes = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'fms-92', status: 'OPEN', updated_datetime: previousSecond }, 'xml')
  t.equal(xmlRes.statusCode, 409)
  t.match(xmlRes.body, /<errors><error><code>409<\/code><description>update fms-92 not applied \(stale\)/, 'in XML for .xml')
  t.equal(await h.updateCount(id), updatesBefore, 'nothing recorded for the refused updates')
  t.notOk((await publicUpdates(id)).some((u) => /stale note|backwards note/.test(u.description)))

  t.equal((await h.postUpdate(streets.key, { service_request_id: id, update_id: 'fms-93', status: 'FIXED', updated_datetime: new Date().toISOString() })).statusCode, 200)
  const late = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'fms-94', status: 'IN_PROGRESS', updated_datetime: new Date().toISOString() })
  t.equal(late.statusCode, 409, 'after completion')
  t.match(late.json(), [{ code: 409, description: /not applied \(final\).*completed/ }])
  const replay = await h.postUpdate(streets.key, { service_request_id: id, update_id: 'fms-93', status: 'FIXED', updated_datetime: new Date().toISOString() })
  t.equal(replay.statusCode, 200, 'an update that was applied still answers its update_id when repeated')
})
