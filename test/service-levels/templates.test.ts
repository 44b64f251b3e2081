/**
 * Pre-approved answers (issue 15, "Templates"): an operator's note or a department's report
 * names a template instead of free text; the public note is the approved text with its
 * placeholders filled; scope (service, department status code, detailed status) and the active
 * flag are enforced; every refusal changes nothing; notes remember their template.
 */
import { sql } from 'drizzle-orm'
import t from 'tap'
import { buildDepartmentHarness } from '../departments/fixtures/harness.js'

const h = await buildDepartmentHarness(t, {
  jurisdiction: { id: 'templates.test.example', name: 'Template City', time_zone: 'America/Chicago' },
  services: [
    { service_code: 'pothole', service_name: 'Pothole' },
    { service_code: 'graffiti', service_name: 'Graffiti' },
  ],
})
const { app, rows } = h
const streets = await h.registerDepartment({ code: 'streets' })
await h.setRoutes('pothole', [{ department: 'streets' }])
await h.setRoutes('graffiti', [{ department: 'streets' }])

const putTemplate = (code: string, body: Record<string, unknown>) =>
  app.inject({ method: 'PUT', url: `/admin/v1/templates/${code}`, headers: h.asAdmin, payload: body })
const note = (id: string, body: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: `/admin/v1/requests/${id}/notes`, headers: h.asAdmin, payload: body })
const history = (id: string) =>
  rows<{ description: string; is_public: boolean; template_code: string | null; source: string }>(
    sql`select u.description, u.is_public, rt.code as template_code, u.source from request_updates u
        join service_requests sr on sr.id = u.request_id left join response_templates rt on rt.id = u.template_id
        where sr.public_id = ${id} order by u.id`,
  )

t.test('templates are saved with their scope, and refused with an unknown placeholder or service', async (t) => {
  const saved = await putTemplate('received', { public_text: 'Thank you: request {service_request_id} ({service_name}) is with our crews.' })
  t.equal(saved.statusCode, 200, saved.body)
  t.same(saved.json(), {
    code: 'received',
    public_text: 'Thank you: request {service_request_id} ({service_name}) is with our crews.',
    translations: {},
    active: true,
    service_code: null,
    department_status_code: null,
    detailed_status: null,
  })
  for (const [body, pattern] of [
    [{ public_text: 'Hello {name}' }, /unknown placeholder \{name\} \(allowed: \{service_request_id\}, \{service_name\}, \{expected_date\}\)/],
    [{ public_text: 'x', service_code: 'nope' }, /no service nope/],
    [{}, /public_text/],
  ] as const) {
    const refused = await putTemplate('bad', body)
    t.equal(refused.statusCode, 400, JSON.stringify(body))
    t.match(refused.json(), [{ code: 400, description: pattern }])
  }
  t.equal((await putTemplate('scheduled', { public_text: 'Crews are scheduled for {expected_date}.', department_status_code: 'scheduled' })).statusCode, 200)
  t.equal((await putTemplate('graffiti-only', { public_text: 'Graffiti is removed within a week.', service_code: 'graffiti' })).statusCode, 200)
  t.equal((await putTemplate('when-done', { public_text: 'All done.', detailed_status: 'completed' })).statusCode, 200)
  t.equal((await putTemplate('retired', { public_text: 'Old text.', active: false })).statusCode, 200)
  const listed = (await app.inject({ url: '/admin/v1/templates', headers: h.asAdmin })).json() as { code: string }[]
  t.same(listed.map((l) => l.code), ['graffiti-only', 'received', 'retired', 'scheduled', 'when-done'])
})

t.test('an operator names a template: the public note is the approved text, filled in', async (t) => {
  const id = await h.createRequest('pothole')
  const added = await note(id, { template: 'received' })
  t.equal(added.statusCode, 200, added.body)
  const entries = await history(id)
  t.match(entries.at(-1), { description: `Thank you: request ${id} (Pothole) is with our crews.`, is_public: true, template_code: 'received', source: 'operator' })
  const publicNotes = (await h.publicRequest(id)) as unknown as { notes: { description: string }[] }
  t.ok(publicNotes.notes.some((n) => n.description === `Thank you: request ${id} (Pothole) is with our crews.`), 'in the public history')

  const before = (await history(id)).length
  for (const [body, status, pattern] of [
    [{ template: 'graffiti-only' }, 400, /graffiti-only is for another service/],
    [{ template: 'retired' }, 400, /retired is not active/],
    [{ template: 'when-done' }, 400, /when-done is for requests that are completed, and this one is (submitted|sent_to_department)/],
    [{ template: 'nope' }, 404, /no template nope/],
    [{ template: 'received', description: 'free text too' }, 400, /must match exactly one schema in oneOf/],
    [{ template: 'scheduled' }, 400, /scheduled is for department status scheduled/],
  ] as const) {
    const refused = await note(id, body)
    t.equal(refused.statusCode, status, JSON.stringify(body))
    t.match(refused.json(), [{ description: pattern }])
  }
  t.equal((await history(id)).length, before, 'refusals wrote nothing')
  const free = await note(id, { description: 'called the reporter', public: false })
  t.equal(free.statusCode, 200, 'free text still works')
  t.match((await history(id)).at(-1), { description: 'called the reporter', is_public: false, template_code: null })
})

t.test('a department names a template on its report: scope by its status code, the date filled in', async (t) => {
  const id = await h.createRequest('pothole')
  const [order] = await h.workOrders(id)
  const wrongStatus = await h.statusChanged(streets, { work_order_id: order!.id, status: 'accepted', template: 'scheduled' })
  t.equal(wrongStatus.statusCode, 400)
  t.match(wrongStatus.json(), [{ description: /scheduled is for department status scheduled/ }])
  const both = await h.statusChanged(streets, { work_order_id: order!.id, status: 'accepted', template: 'received', public_note: 'mine' })
  t.equal(both.statusCode, 400)
  t.match(both.json(), [{ description: /give one or the other/ }])
  t.equal((await h.workOrders(id))[0]!.state, 'pending', 'the refused reports changed nothing')

  const scheduled = await h.statusChanged(streets, {
    work_order_id: order!.id,
    status: 'scheduled',
    expected_datetime: '2027-01-15T09:00:00-06:00',
    template: 'scheduled',
  })
  t.equal(scheduled.statusCode, 200, scheduled.body)
  const view = await h.publicRequest(id)
  t.equal(view.status_notes, 'Crews are scheduled for 2027-01-15.', 'the approved text, the date in the jurisdiction’s zone')
  t.match((await history(id)).at(-1), { template_code: 'scheduled', is_public: true, source: 'department' })

  const done = await h.statusChanged(streets, { work_order_id: order!.id, status: 'completed', template: 'when-done' })
  t.equal(done.statusCode, 200, `${done.body}: checked against the status the report leaves the request in`)
  t.equal((await h.publicRequest(id)).status_notes, 'All done.')
})

t.test('{expected_date} on a request without one is refused', async (t) => {
  t.equal((await putTemplate('eta', { public_text: 'Expected {expected_date}.' })).statusCode, 200)
  const id = await h.createRequest('graffiti')
  const refused = await note(id, { template: 'eta' })
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), [{ description: /eta names the expected date, and this request has none/ }])
})
