/**
 * GET requests parameters → a RequestFilter, with the decisions documented in docs/open311.md:
 * the 90-day window, inclusive start_date / exclusive end_date, paging, spatial filters.
 * Every refusal is a 400 naming the parameter.
 */
import type { Open311Status } from '../../db/schema.js'
import { parseW3c } from '../../open311/datetime.js'
import { invalid } from '../errors.js'
import type { RequestFilter } from './find-requests.js'

export const MAX_WINDOW_DAYS = 90
export const MAX_PAGE_SIZE = 1000
export const MAX_RADIUS_METERS = 5000
export const MAX_BBOX_DEGREES = 10
export const MAX_IDS = 1000
const DAY_MS = 86_400_000

export interface RequestSearchParams {
  service_request_id?: string
  service_code?: string
  status?: string
  start_date?: string
  end_date?: string
  updated_after?: string
  updated_before?: string
  lat?: string
  long?: string
  radius?: string
  bbox?: string
  page?: string
  page_size?: string
}

/** Comma-separated list; empty items dropped; an empty list counts as absent. */
export function parseList(text: string | undefined): string[] | undefined {
  const items = text
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  return items && items.length > 0 ? [...new Set(items)] : undefined
}

function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || text.trim() === '') return undefined
  if (!/^\d+$/.test(text.trim())) throw invalid(`${name}: must be a whole number`)
  const value = Number(text)
  if (value < min || value > max) throw invalid(`${name}: must be between ${min} and ${max}`)
  return value
}

function decimal(name: string, text: string, min: number, max: number): number {
  const value = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isFinite(value)) throw invalid(`${name}: must be a decimal number`)
  if (value < min || value > max) throw invalid(`${name}: must be between ${min} and ${max}`)
  return value
}

function datetime(name: string, text: string | undefined, timeZone: string): Date | undefined {
  if (text === undefined || text.trim() === '') return undefined
  const value = parseW3c(text, timeZone)
  if (!value) throw invalid(`${name}: must be a W3C datetime such as 2026-01-31T13:00:00Z`)
  return value
}

export interface Paging {
  page: number
  pageSize: number
}

export function parsePaging(params: { page?: string; page_size?: string }): Paging {
  // 1-based; page=0 is read as 1, as uReport does.
  const page = Math.max(1, integer('page', params.page, 0, 1_000_000) ?? 1)
  const pageSize = integer('page_size', params.page_size, 1, MAX_PAGE_SIZE) ?? MAX_PAGE_SIZE
  return { page, pageSize }
}

export function parseRequestSearch(
  params: RequestSearchParams,
  jurisdictionId: string,
  timeZone: string,
  now: Date,
): { filter: RequestFilter; paging: Paging } {
  const paging = parsePaging(params)
  const base = { jurisdictionId, limit: paging.pageSize + 1, offset: (paging.page - 1) * paging.pageSize }

  const ids = parseList(params.service_request_id)
  if (ids) {
    if (ids.length > MAX_IDS) throw invalid(`service_request_id: at most ${MAX_IDS} ids`)
    return { filter: { ...base, serviceRequestIds: ids, order: 'requested_desc' }, paging }
  }

  const filter: RequestFilter = { ...base, order: 'requested_desc' }
  const codes = parseList(params.service_code)
  if (codes) filter.serviceCodes = codes
  const statuses = parseStatuses(params.status)
  if (statuses) filter.statuses = statuses

  const updatedAfter = datetime('updated_after', params.updated_after, timeZone)
  const updatedBefore = datetime('updated_before', params.updated_before, timeZone)
  if (updatedAfter && updatedBefore && updatedBefore <= updatedAfter) {
    throw invalid('updated_before: must be later than updated_after')
  }
  if (updatedAfter) filter.updatedAfter = updatedAfter
  if (updatedBefore) filter.updatedBefore = updatedBefore
  if (updatedAfter || updatedBefore) filter.order = 'updated_asc'

  let start = datetime('start_date', params.start_date, timeZone)
  let end = datetime('end_date', params.end_date, timeZone)
  if (start && end) {
    if (end <= start) throw invalid('end_date: must be later than start_date')
    if (end.getTime() - start.getTime() > MAX_WINDOW_DAYS * DAY_MS) {
      throw invalid(`end_date: a date range may span at most ${MAX_WINDOW_DAYS} days`)
    }
  } else if (start) {
    end = new Date(start.getTime() + MAX_WINDOW_DAYS * DAY_MS)
  } else if (end) {
    start = new Date(end.getTime() - MAX_WINDOW_DAYS * DAY_MS)
  } else if (!updatedAfter && !updatedBefore) {
    // The spec's default: the most recent 90 days. Incremental sync by updated_* skips it.
    start = new Date(now.getTime() - MAX_WINDOW_DAYS * DAY_MS)
  }
  if (start) filter.requestedFrom = start
  if (end) filter.requestedBefore = end

  const { lat, long, radius } = params
  const given = [lat, long, radius].filter((v) => v !== undefined && v.trim() !== '')
  if (given.length > 0) {
    if (given.length < 3) throw invalid('lat, long, radius: all three are needed for a radius search')
    filter.near = {
      lat: decimal('lat', lat!, -90, 90),
      long: decimal('long', long!, -180, 180),
      radiusMeters: decimal('radius', radius!, 0, MAX_RADIUS_METERS),
    }
  }
  const bbox = parseBbox(params.bbox)
  if (bbox) filter.bbox = bbox
  return { filter, paging }
}

/** `status`: a list of open and closed. */
export function parseStatuses(text: string | undefined): Open311Status[] | undefined {
  const statuses = parseList(text)
  if (!statuses) return undefined
  const unknown = statuses.filter((s) => s !== 'open' && s !== 'closed')
  if (unknown.length) throw invalid(`status: "${unknown[0]}" is not open or closed`)
  return statuses as Open311Status[]
}

/** `bbox`: min_long,min_lat,max_long,max_lat, at most MAX_BBOX_DEGREES on a side. */
export function parseBbox(text: string | undefined): RequestFilter['bbox'] {
  if (text === undefined || text.trim() === '') return undefined
  const parts = text.split(',')
  if (parts.length !== 4) throw invalid('bbox: must be min_long,min_lat,max_long,max_lat')
  const [minLong, minLat, maxLong, maxLat] = parts.map((p, i) =>
    decimal('bbox', p, i % 2 === 0 ? -180 : -90, i % 2 === 0 ? 180 : 90),
  ) as [number, number, number, number]
  if (minLong >= maxLong || minLat >= maxLat) throw invalid('bbox: min values must be below max values')
  if (maxLong - minLong > MAX_BBOX_DEGREES || maxLat - minLat > MAX_BBOX_DEGREES) {
    throw invalid(`bbox: at most ${MAX_BBOX_DEGREES} degrees on a side`)
  }
  return { minLong, minLat, maxLong, maxLat }
}
