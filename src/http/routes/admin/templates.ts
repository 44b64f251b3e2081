import type { FastifyInstance } from 'fastify'
import { listTemplates, saveTemplate, TEMPLATE_PLACEHOLDERS } from '../../../domain/templates/response-templates.js'
import { auditActorOf, callerJurisdiction } from '../../auth.js'
import { logAction } from '../../logging.js'
import { adminErrors } from '../../schemas/admin.js'
import { jurisdictionQuery } from '../../schemas/open311.js'

const nullableCode = (description: string) => ({ type: ['string', 'null'], maxLength: 64, description }) as const

const templateFields = {
  public_text: {
    type: 'string',
    minLength: 1,
    maxLength: 4000,
    description: `The approved public text; placeholders: ${TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')} (the date in the jurisdiction's time zone)`,
  },
  translations: {
    type: 'object',
    default: {},
    description:
      'The text in the jurisdiction\'s other languages, by locale: `{"fr": {"text": "…"}}`, with the same placeholders. A note made ' +
      'from the template keeps public_text as its text and these beside it: GeoReport reads in that locale show them',
    additionalProperties: {
      type: 'object',
      additionalProperties: false,
      required: ['text'],
      properties: { text: { type: 'string', minLength: 1, maxLength: 4000 } },
    },
  },
  active: { type: 'boolean', default: true },
  service_code: nullableCode('Offered only for this service'),
  department_status_code: nullableCode("Offered only with this department status code (a department's own code)"),
  detailed_status: nullableCode('Offered only for requests in this detailed status (e.g. scheduled, completed)'),
} as const

const templateView = {
  type: 'object',
  properties: { code: { type: 'string' }, ...templateFields },
} as const

interface TemplateBody {
  public_text: string
  translations: Record<string, { text: string }>
  active: boolean
  service_code?: string | null
  department_status_code?: string | null
  detailed_status?: string | null
}

/** Pre-approved answers (docs/service-levels.md, "Templates"). */
export default async function adminTemplateRoutes(app: FastifyInstance) {
  app.get<{ Querystring: { jurisdiction_id?: string } }>(
    '/templates',
    {
      schema: {
        tags: ['Admin'],
        summary: "The jurisdiction's pre-approved answers",
        querystring: jurisdictionQuery,
        response: { 200: { type: 'array', items: templateView }, ...adminErrors },
      },
    },
    async (request) => listTemplates(app.db, (await callerJurisdiction(request, request.query.jurisdiction_id)).id),
  )

  app.put<{ Params: { code: string }; Body: TemplateBody; Querystring: { jurisdiction_id?: string } }>(
    '/templates/:code',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Create or replace a pre-approved answer (active: false retires it; notes keep pointing at it)',
        params: { type: 'object', required: ['code'], properties: { code: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' } } },
        querystring: jurisdictionQuery,
        body: { type: 'object', additionalProperties: false, required: ['public_text'], properties: templateFields },
        response: { 200: templateView, ...adminErrors },
      },
    },
    async (request) => {
      const jurisdiction = await callerJurisdiction(request, request.query.jurisdiction_id)
      const b = request.body
      const saved = await saveTemplate(app.db, jurisdiction.id, request.params.code, {
        publicText: b.public_text,
        translations: b.translations,
        active: b.active,
        serviceCode: b.service_code ?? null,
        departmentStatusCode: b.department_status_code ?? null,
        detailedStatus: b.detailed_status ?? null,
      }, auditActorOf(request))
      logAction(request, 'response template saved', { template: saved.code })
      return saved
    },
  )
}
