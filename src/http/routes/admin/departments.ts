import type { FastifyInstance } from 'fastify'
import {
  createDepartment,
  type Department,
  findDepartment,
  listDepartments,
  ROUTES_DOCUMENT_SHAPE,
  type RoutesDocument,
  rotateSecret,
  routeInputs,
  setServiceRoutes,
  updateDepartment,
} from '../../../domain/departments/departments.js'
import { badRequest } from '../../../open311/errors.js'
import { adminErrors } from '../../schemas/admin.js'
import { jurisdictionQuery } from '../../schemas/open311.js'
import { auditActorOf, callerJurisdiction } from '../../auth.js'
import { logAction } from '../../logging.js'

const departmentView = {
  type: 'object',
  properties: {
    code: { type: 'string' },
    name: { type: 'string' },
    contact: { type: 'string' },
    webhook_url: { type: ['string', 'null'] },
    enabled: { type: 'boolean' },
    receives_contact: { type: 'boolean' },
    status_map: { type: 'object', additionalProperties: { type: 'string' } },
    failing_since: { type: ['string', 'null'], format: 'date-time' },
    disabled_reason: { type: ['string', 'null'] },
  },
} as const

const departmentFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  contact: { type: 'string', maxLength: 1000 },
  webhook_url: { type: ['string', 'null'], maxLength: 2000, description: 'https URL receiving signed events; checked against private and metadata addresses' },
  receives_contact: { type: 'boolean', description: 'Whether work orders carry the reporter’s contact details' },
  status_map: {
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'The department’s status codes → accepted, scheduled, in_progress, on_hold, completed, cancelled, rejected, reassigned',
  },
  enabled: { type: 'boolean' },
} as const

type DepartmentBody = {
  code: string
  name: string
  contact?: string
  webhook_url?: string | null
  receives_contact?: boolean
  status_map?: Record<string, string>
  enabled?: boolean
}

const view = (d: Department) => ({
  code: d.code,
  name: d.name,
  contact: d.contact,
  webhook_url: d.webhookUrl,
  enabled: d.enabled,
  receives_contact: d.receivesContact,
  status_map: d.statusMap,
  failing_since: d.failingSince,
  disabled_reason: d.disabledReason,
})

const codeParams = { type: 'object', required: ['code'], properties: { code: { type: 'string', maxLength: 64 } } } as const

export default async function adminDepartmentRoutes(app: FastifyInstance) {
  const deps = () => app.webhooks

  app.post<{ Body: DepartmentBody; Querystring: { jurisdiction_id?: string } }>(
    '/departments',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Register a department; its signing secret and inbound key are shown once',
        querystring: jurisdictionQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['code', 'name'],
          properties: { code: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' }, ...departmentFields },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              department: departmentView,
              signing_secret: { type: 'string', description: 'whsec_… — verify our deliveries and sign your callbacks with it' },
              inbound_api_key: { type: 'string', description: 'For POST servicerequestupdates' },
            },
          },
          409: { $ref: 'Open311Errors#' },
          ...adminErrors,
        },
      },
    },
    async (request, reply) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const b = request.body
      const created = await createDepartment(app.db, deps(), {
        jurisdictionId: jurisdiction.id,
        code: b.code,
        name: b.name,
        ...(b.contact !== undefined ? { contact: b.contact } : {}),
        ...(b.webhook_url !== undefined ? { webhookUrl: b.webhook_url } : {}),
        ...(b.receives_contact !== undefined ? { receivesContact: b.receives_contact } : {}),
        ...(b.status_map !== undefined ? { statusMap: b.status_map } : {}),
        ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
      }, auditActorOf(request))
      logAction(request, 'department registered', { department: b.code })
      return reply.code(201).send({ department: view(created.department), signing_secret: created.signingSecret, inbound_api_key: created.inboundKey })
    },
  )

  app.get<{ Querystring: { jurisdiction_id?: string } }>(
    '/departments',
    { schema: { tags: ['Admin'], summary: 'List departments', querystring: jurisdictionQuery, response: { 200: { type: 'array', items: departmentView }, ...adminErrors } } },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      return (await listDepartments(app.db, jurisdiction.id)).map(view)
    },
  )

  app.patch<{ Params: { code: string }; Body: Partial<DepartmentBody>; Querystring: { jurisdiction_id?: string } }>(
    '/departments/:code',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Change a department (re-enabling clears its failure run)',
        params: codeParams,
        querystring: jurisdictionQuery,
        body: { type: 'object', additionalProperties: false, properties: departmentFields },
        response: { 200: departmentView, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const department = await findDepartment(app.db, jurisdiction.id, request.params.code)
      const b = request.body
      return view(
        await updateDepartment(app.db, deps(), department, {
          ...(b.name !== undefined ? { name: b.name } : {}),
          ...(b.contact !== undefined ? { contact: b.contact } : {}),
          ...(b.webhook_url !== undefined ? { webhookUrl: b.webhook_url } : {}),
          ...(b.receives_contact !== undefined ? { receivesContact: b.receives_contact } : {}),
          ...(b.status_map !== undefined ? { statusMap: b.status_map } : {}),
          ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
        }, auditActorOf(request)),
      )
    },
  )

  app.post<{ Params: { code: string }; Body: { overlap_hours?: number }; Querystring: { jurisdiction_id?: string } }>(
    '/departments/:code/rotate-secret',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Rotate the signing secret; old and new both sign during the overlap',
        params: codeParams,
        querystring: jurisdictionQuery,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { overlap_hours: { type: 'integer', minimum: 0, maximum: 720, default: 24 } },
        },
        response: { 200: { type: 'object', properties: { signing_secret: { type: 'string' }, overlap_hours: { type: 'integer' } } }, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const department = await findDepartment(app.db, jurisdiction.id, request.params.code)
      const overlapHours = request.body?.overlap_hours ?? 24
      const secret = await rotateSecret(app.db, deps(), department, overlapHours, auditActorOf(request))
      logAction(request, 'signing secret rotated', { department: department.code, overlapHours })
      return { signing_secret: secret, overlap_hours: overlapHours }
    },
  )

  app.put<{ Params: { service_code: string }; Body: RoutesDocument; Querystring: { jurisdiction_id?: string } }>(
    '/services/:service_code/routes',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Set which departments a service’s requests go to',
        description:
          'Routes with an area (GeoJSON Polygon/MultiPolygon) take requests inside it; routes without an area are the defaults. ' +
          'The body is a list of routes, or `{"departments": ["streets", …]}` for default routes only (as the CLI’s `--department`).',
        params: { type: 'object', required: ['service_code'], properties: { service_code: { type: 'string' } } },
        querystring: jurisdictionQuery,
        body: {
          oneOf: [
            {
              type: 'array',
              minItems: 1,
              maxItems: 200,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['department'],
                properties: {
                  department: { type: 'string' },
                  area_name: { type: 'string', maxLength: 200 },
                  area: {
                    type: 'object',
                    required: ['type', 'coordinates'],
                    properties: { type: { type: 'string', enum: ['Polygon', 'MultiPolygon'] }, coordinates: { type: 'array' } },
                  },
                },
              },
            },
            {
              type: 'object',
              additionalProperties: false,
              required: ['departments'],
              properties: { departments: { type: 'array', minItems: 1, maxItems: 200, items: { type: 'string' } } },
            },
          ],
        },
        response: {
          200: {
            type: 'array',
            items: { type: 'object', properties: { department: { type: 'string' }, area_name: { type: ['string', 'null'] }, has_area: { type: 'boolean' } } },
          },
          ...adminErrors,
        },
      },
      // A body of neither shape is answered with both shapes, not with "body must be array".
      attachValidation: true,
    },
    async (request) => {
      if (request.validationError) throw explainShape(request.validationError)
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      return setServiceRoutes(app.db, jurisdiction.id, request.params.service_code, routeInputs(request.body), auditActorOf(request))
    },
  )
}

/** A body that is neither a list nor {"departments"}: say what is expected; a fault inside one shape keeps its own message. */
function explainShape(error: Error & { validation?: { instancePath: string; keyword: string }[] }): Error {
  const first = error.validation?.[0]
  const wrongShape = first?.instancePath === '' && (first.keyword === 'type' || first.keyword === 'oneOf')
  return wrongShape ? badRequest(`body: must be ${ROUTES_DOCUMENT_SHAPE}`) : error
}
