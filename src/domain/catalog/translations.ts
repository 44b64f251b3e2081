/**
 * The catalog in one of its jurisdiction's languages: each text from the translation for that
 * locale, field by field, the default language's text where the translation leaves it out.
 * The result has no `translations` left, so what clients are shown never carries the others.
 */
import type { CatalogAttribute } from './catalog-schema.js'
import type { StoredService } from './catalog.js'

/** The service's texts in `locale`; the default locale's are the service's own fields. */
export function localiseService(service: StoredService, locale: string): StoredService {
  const { translations, ...own } = service
  const t = translations?.[locale]
  return {
    ...own,
    service_name: t?.service_name ?? own.service_name,
    description: t?.description ?? own.description,
    group: t?.group ?? own.group,
    keywords: t?.keywords ?? own.keywords,
    attributes: own.attributes.map((a) => localiseAttribute(a, locale)),
  }
}

export function localiseAttribute(attribute: CatalogAttribute, locale: string): CatalogAttribute {
  const { translations, values, ...own } = attribute
  const t = translations?.[locale]
  return {
    ...own,
    description: t?.description ?? own.description,
    datatype_description: t?.datatype_description ?? own.datatype_description,
    ...(values ? { values: values.map((v) => ({ key: v.key, name: v.translations?.[locale]?.name ?? v.name })) } : {}),
  }
}

/** The service's name in `locale` (request lists show it). */
export function serviceNameIn(service: Pick<StoredService, 'service_name' | 'translations'>, locale: string): string {
  return service.translations?.[locale]?.service_name ?? service.service_name
}
