/**
 * Service requests and updates in their Open311 shape. Core fields are always present (null
 * when unknown, an empty element in XML); `extensions=true` adds the Chicago/CitySDK-style
 * detail documented in docs/open311.md. Built only from public rows: no personal data can reach it.
 */
import type { CatalogAttribute } from '../domain/catalog/catalog-schema.js'
import type { ExtendedRequestRow, PublicRequestRow, PublicUpdateRow } from '../domain/requests/find-requests.js'
import type { PossibleDuplicate } from '../domain/requests/duplicate-search.js'
import { isFreeText } from '../domain/requests/sensitive-location.js'
import { formatOptionalW3c, formatW3c } from './datetime.js'

export interface RequestNote {
  update_id: string
  datetime: string
  status: string
  detailed_status: string
  description: string
  type: 'update'
}

export interface RequestExtensions {
  notes: PublicUpdateRow[]
  /** The negotiated locale: notes made from a translated template show that language's text. */
  locale?: string
  attributeDefinitions: CatalogAttribute[]
  /** GET of one request of a `suggest` service: what its POST would name now (absent: not shown). */
  possibleDuplicates?: PossibleDuplicate[]
}

/** The core GeoReport v2 request. */
export function toRequest(row: PublicRequestRow, timeZone: string) {
  return {
    service_request_id: row.service_request_id,
    status: row.status,
    status_notes: row.status_notes,
    service_name: row.service_name,
    service_code: row.service_code,
    description: row.description,
    agency_responsible: row.agency_responsible,
    service_notice: row.service_notice,
    requested_datetime: formatW3c(row.requested_at, timeZone),
    updated_datetime: formatW3c(row.updated_at, timeZone),
    expected_datetime: formatOptionalW3c(row.expected_at, timeZone),
    address: row.address,
    address_id: row.address_id,
    zipcode: row.zipcode,
    lat: row.lat,
    long: row.long,
    media_url: row.media_url,
  }
}

/** The core request and what `extensions=true` adds. */
export function toExtendedRequest(row: ExtendedRequestRow, timeZone: string, extensions: RequestExtensions) {
  return {
    ...toRequest(row, timeZone),
    extended_attributes: {
      detailed_status: row.detailed_status,
      channel: row.channel,
      duplicate: row.parent_service_request_id !== null,
      parent_service_request_id: row.parent_service_request_id,
      closed_datetime: formatOptionalW3c(row.closed_at, timeZone),
      media_urls: row.media_urls,
    },
    attributes: publicAnswers(row, extensions.attributeDefinitions),
    notes: extensions.notes.map((u) => toNote(u, timeZone, extensions.locale)),
    ...(extensions.possibleDuplicates ? { possible_duplicates: extensions.possibleDuplicates.map((d) => toPossibleDuplicate(d, timeZone)) } : {}),
  }
}

/** A possible duplicate in the answers of POST (extensions=true) and GET of one request. */
export function toPossibleDuplicate(d: PossibleDuplicate, timeZone: string) {
  return { service_request_id: d.service_request_id, distance_m: d.distance_m, requested_datetime: formatW3c(d.requested_at, timeZone) }
}

function publicAnswers({ attributes: answers, generalised }: ExtendedRequestRow, definitions: CatalogAttribute[]) {
  return definitions
    // A generalised request keeps its list, number and datetime answers; free text is withheld.
    .filter((d) => d.public && d.variable && answers[d.code] !== undefined && !(generalised && isFreeText(d.datatype)))
    .map((d) => {
      const answer = answers[d.code]!
      const keys = Array.isArray(answer) ? answer : [answer]
      // List answers are shown with their labels as well as their keys.
      const labels = keys.map((k) => d.values?.find((v) => v.key === k)?.name ?? k)
      return { code: d.code, name: d.description, values: keys, ...(d.values ? { labels } : {}) }
    })
}

/** The note's text in `locale` when its template had one there, else its own (the default language's). */
function noteText(update: PublicUpdateRow, locale: string | undefined): string {
  return (locale && update.description_translations?.[locale]) || update.description
}

export function toNote(update: PublicUpdateRow, timeZone: string, locale?: string): RequestNote {
  return {
    update_id: update.update_id,
    datetime: formatW3c(update.created_at, timeZone),
    status: update.status,
    detailed_status: update.detailed_status,
    description: noteText(update, locale),
    type: 'update',
  }
}

/** mySociety's request_update. */
export function toRequestUpdate(update: PublicUpdateRow, timeZone: string, locale?: string) {
  return {
    update_id: update.update_id,
    service_request_id: update.service_request_id,
    status: update.status,
    updated_datetime: formatW3c(update.created_at, timeZone),
    description: noteText(update, locale),
    // null as on requests: JSON clients test one field the same way everywhere (XML: an empty element either way).
    media_url: update.media_urls[0] ?? null,
    external_status_code: update.external_status_code,
    extended_attributes: { detailed_status: update.detailed_status, media_urls: update.media_urls },
  }
}
