/**
 * Pre-approved answers (issue 15, "Templates"): a jurisdiction's public texts, each with a code,
 * that operators' notes and department reports may name instead of writing free text; the public
 * note is then the approved text with its placeholders filled in. A template may be offered
 * only for one service, one department status code or one detailed status; naming it elsewhere
 * is refused, as is an inactive one. The notes remember which template they came from
 * (request_updates.template_id), so reports can show the share of answers that were approved.
 * A template may carry its text in the jurisdiction's other languages (`translations`): the
 * note keeps the default language's text as its public text, and its renderings in the others
 * beside it (request_updates.description_translations) for GeoReport reads in those locales.
 */
import { and, asc, eq } from 'drizzle-orm'
import type { Db } from '../../db/database.js'
import { jurisdictions, responseTemplates, type ServiceTranslation, serviceRequests, services } from '../../db/schema.js'
import { formatW3c } from '../../open311/datetime.js'
import { type AuditActor, changedFields, recordAudit } from '../audit/audit.js'
import { invalid, notFound } from '../errors.js'

/** What a template's text may contain, as `{name}`. */
export const TEMPLATE_PLACEHOLDERS = ['service_request_id', 'service_name', 'expected_date'] as const
const PLACEHOLDER = /\{([^{}]*)\}/g

/** locale → the public text in that language (with the same placeholders). */
export type TemplateTranslations = Record<string, { text: string }>

export interface TemplateInput {
  publicText: string
  translations?: TemplateTranslations
  active: boolean
  serviceCode?: string | null
  departmentStatusCode?: string | null
  detailedStatus?: string | null
}

export interface TemplateView {
  code: string
  public_text: string
  translations: TemplateTranslations
  active: boolean
  service_code: string | null
  department_status_code: string | null
  detailed_status: string | null
}

function assertPlaceholders(text: string, field = 'public_text') {
  const unknown = [...text.matchAll(PLACEHOLDER)].map((m) => m[1]!).filter((name) => !(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(name))
  if (unknown.length > 0) {
    throw invalid(`${field}: unknown placeholder ${unknown.map((n) => `{${n}}`).join(', ')} (allowed: ${TEMPLATE_PLACEHOLDERS.map((n) => `{${n}}`).join(', ')})`)
  }
}

/** Each translation names one of the jurisdiction's other languages, and uses only the known placeholders. */
async function assertTranslations(db: Db, jurisdictionId: string, translations: TemplateTranslations) {
  const locales = Object.keys(translations)
  if (locales.length === 0) return
  const [jurisdiction] = await db
    .select({ defaultLocale: jurisdictions.defaultLocale, locales: jurisdictions.locales })
    .from(jurisdictions)
    .where(eq(jurisdictions.id, jurisdictionId))
  const others = (jurisdiction?.locales ?? []).filter((l) => l !== jurisdiction?.defaultLocale)
  for (const locale of locales) {
    if (!others.includes(locale)) {
      throw invalid(
        `translations.${locale}: must be one of the jurisdiction's locales other than the default ${jurisdiction?.defaultLocale}` +
          ` (${others.length ? others.join(', ') : 'it serves no other'}; got ${JSON.stringify(locale)})`,
      )
    }
    assertPlaceholders(translations[locale]!.text, `translations.${locale}.text`)
  }
}

/** Creates or replaces the template `code` of the jurisdiction. */
export async function saveTemplate(db: Db, jurisdictionId: string, code: string, input: TemplateInput, actor: AuditActor): Promise<TemplateView> {
  assertPlaceholders(input.publicText)
  const translations = input.translations ?? {}
  await assertTranslations(db, jurisdictionId, translations)
  let serviceId: number | null = null
  if (input.serviceCode) {
    const [service] = await db
      .select({ id: services.id })
      .from(services)
      .where(and(eq(services.jurisdictionId, jurisdictionId), eq(services.serviceCode, input.serviceCode)))
    if (!service) throw invalid(`service_code: no service ${input.serviceCode} in jurisdiction ${jurisdictionId}`)
    serviceId = service.id
  }
  const fields = {
    publicText: input.publicText,
    translations,
    active: input.active,
    serviceId,
    departmentStatusCode: input.departmentStatusCode ?? null,
    detailedStatus: input.detailedStatus ?? null,
  }
  const saved: TemplateView = {
    code,
    public_text: fields.publicText,
    translations,
    active: fields.active,
    service_code: serviceId === null ? null : input.serviceCode!,
    department_status_code: fields.departmentStatusCode,
    detailed_status: fields.detailedStatus,
  }
  return db.transaction(async (tx) => {
    // Locked, so two saves at once each record what they replaced.
    const [current] = await tx
      .select({ template: responseTemplates, serviceCode: services.serviceCode })
      .from(responseTemplates)
      .leftJoin(services, eq(services.id, responseTemplates.serviceId))
      .where(and(eq(responseTemplates.jurisdictionId, jurisdictionId), eq(responseTemplates.code, code)))
      .for('update', { of: responseTemplates })
    await tx
      .insert(responseTemplates)
      .values({ jurisdictionId, code, ...fields })
      .onConflictDoUpdate({ target: [responseTemplates.jurisdictionId, responseTemplates.code], set: { ...fields, updatedAt: new Date() } })
    const before = current ? withoutCode(templateView(current.template, current.serviceCode)) : null
    await recordAudit(tx, actor, {
      action: current ? 'response_template.updated' : 'response_template.created',
      entityType: 'response_template',
      entityId: code,
      jurisdictionId,
      changes: changedFields(before, withoutCode(saved)),
    })
    return saved
  })
}

/** The code is the entry's entity id, not a field of it. */
const withoutCode = ({ code: _code, ...fields }: TemplateView) => fields

function templateView(t: typeof responseTemplates.$inferSelect, serviceCode: string | null): TemplateView {
  return {
    code: t.code,
    public_text: t.publicText,
    translations: t.translations,
    active: t.active,
    service_code: serviceCode,
    department_status_code: t.departmentStatusCode,
    detailed_status: t.detailedStatus,
  }
}

export async function listTemplates(db: Db, jurisdictionId: string): Promise<TemplateView[]> {
  const rows = await db
    .select({ template: responseTemplates, serviceCode: services.serviceCode })
    .from(responseTemplates)
    .leftJoin(services, eq(services.id, responseTemplates.serviceId))
    .where(eq(responseTemplates.jurisdictionId, jurisdictionId))
    .orderBy(asc(responseTemplates.code))
  return rows.map(({ template, serviceCode }) => templateView(template, serviceCode))
}

/** Where a note is written: what a template's scope is checked against, and what fills its placeholders. */
export interface NoteContext {
  jurisdictionId: string
  timeZone: string
  serviceId: number
  serviceName: string
  /** The service's catalog translations, for `{service_name}` in a translated text. */
  serviceTranslations?: Record<string, ServiceTranslation> | null
  serviceRequestId: string
  detailedStatus: string
  expectedAt: Date | null
  /** The department's own status code, for a department's report. */
  departmentStatusCode?: string
}

/** A request's note context as it stands (`overrides`: what the change being recorded makes of it). */
export async function noteContextOf(db: Db, requestId: number, overrides: Partial<NoteContext> = {}): Promise<NoteContext> {
  const [row] = await db
    .select({
      jurisdictionId: serviceRequests.jurisdictionId,
      timeZone: jurisdictions.timeZone,
      serviceId: serviceRequests.serviceId,
      serviceName: services.serviceName,
      serviceTranslations: services.translations,
      serviceRequestId: serviceRequests.publicId,
      detailedStatus: serviceRequests.detailedStatus,
      expectedAt: serviceRequests.expectedAt,
    })
    .from(serviceRequests)
    .innerJoin(services, eq(services.id, serviceRequests.serviceId))
    .innerJoin(jurisdictions, eq(jurisdictions.id, serviceRequests.jurisdictionId))
    .where(eq(serviceRequests.id, requestId))
  if (!row) throw notFound('service request does not exist')
  return { ...row, ...overrides }
}

/** A template rendered for one note: the default language's text, its id, and the text in the template's other languages. */
export interface RenderedTemplate {
  text: string
  templateId: number
  /** locale → text; null when the template has no translations. */
  translations: Record<string, string> | null
}

/** The approved text of template `code` for this note, and its id; refused when it does not apply here. */
export async function renderTemplate(db: Db, code: string, context: NoteContext): Promise<RenderedTemplate> {
  const [template] = await db
    .select()
    .from(responseTemplates)
    .where(and(eq(responseTemplates.jurisdictionId, context.jurisdictionId), eq(responseTemplates.code, code)))
  if (!template) throw notFound(`template: no template ${code}`)
  if (!template.active) throw invalid(`template: ${code} is not active`)
  if (template.serviceId !== null && template.serviceId !== context.serviceId) throw invalid(`template: ${code} is for another service`)
  if (template.departmentStatusCode !== null && template.departmentStatusCode !== context.departmentStatusCode) {
    throw invalid(`template: ${code} is for department status ${template.departmentStatusCode}`)
  }
  if (template.detailedStatus !== null && template.detailedStatus !== context.detailedStatus) {
    throw invalid(`template: ${code} is for requests that are ${template.detailedStatus}, and this one is ${context.detailedStatus}`)
  }
  const fill = (text: string, locale?: string) =>
    text.replace(PLACEHOLDER, (_whole, name: string) => {
      if (name === 'service_request_id') return context.serviceRequestId
      if (name === 'service_name') return (locale && context.serviceTranslations?.[locale]?.service_name) || context.serviceName
      if (!context.expectedAt) throw invalid(`template: ${code} names the expected date, and this request has none`)
      return formatW3c(context.expectedAt, context.timeZone).slice(0, 10)
    })
  const locales = Object.keys(template.translations)
  const translations = locales.length ? Object.fromEntries(locales.map((l) => [l, fill(template.translations[l]!.text, l)])) : null
  return { text: fill(template.publicText), templateId: template.id, translations }
}
