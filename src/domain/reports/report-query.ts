/**
 * What a report is asked for — a range of local days, a period, the dimensions to group by and
 * filters — and the SQL pieces every report builds from it over report_daily (rollups.ts).
 */
import { and, eq, type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { departments, type ReportGrain, services } from '../../db/schema.js'
import { invalid } from '../errors.js'
import type { Jurisdiction } from '../jurisdictions.js'
import type { RequestChannel } from '../requests/channels.js'
import { daysBetween, shiftDays } from './local-days.js'

export const REPORT_PERIODS = ['day', 'week', 'month'] as const
export type ReportPeriod = (typeof REPORT_PERIODS)[number]
export const REPORT_DIMENSIONS = ['service', 'department', 'channel', 'area'] as const
export type ReportDimension = (typeof REPORT_DIMENSIONS)[number]

/** The longest range one report reads: five years of days. */
export const MAX_REPORT_DAYS = 1827
/** Without a range: the last 30 days, today included. */
export const DEFAULT_REPORT_DAYS = 30

export interface ReportRequest {
  from?: string
  to?: string
  group?: ReportPeriod
  by?: ReportDimension[]
  service?: string
  department?: string
  channel?: RequestChannel
  area?: string
}

export interface ReportQuery {
  jurisdiction: Jurisdiction
  from: string
  to: string
  group: ReportPeriod
  by: ReportDimension[]
  filters: { serviceId?: number; departmentId?: number; channel?: RequestChannel; area?: string; publicOnly?: boolean }
  /** As asked, for the answer's envelope. */
  asked: { service?: string; department?: string; channel?: string; area?: string }
  /** Which rows of report_daily answer it: the coarsest that holds every dimension it names (rollupGrain). */
  grain: ReportGrain
}

export interface ReportDefaults {
  by: ReportDimension[]
  /** The range without `from`: this many days ending with `to`. */
  days?: number
  /** Public requests only (the open-data stats). */
  publicOnly?: boolean
}

/** The asked report, checked: codes resolved (unknown ones are a 400 naming them), the range bounded. */
export async function resolveReportQuery(db: Db, jurisdiction: Jurisdiction, request: ReportRequest, defaults: ReportDefaults): Promise<ReportQuery> {
  const [today] = await queryRows<{ today: string }>(db, sql`select (now() at time zone ${jurisdiction.timeZone})::date::text as today`)
  const to = request.to ?? today!.today
  const from = request.from ?? shiftDays(to, 1 - (defaults.days ?? DEFAULT_REPORT_DAYS))
  if (from > to) throw invalid(`from: ${from} is after to (${to})`)
  if (daysBetween(from, to) + 1 > MAX_REPORT_DAYS) throw invalid(`from, to: at most ${MAX_REPORT_DAYS} days in one report`)
  const filters: ReportQuery['filters'] = defaults.publicOnly ? { publicOnly: true } : {}
  if (request.service !== undefined) {
    const [found] = await db
      .select({ id: services.id })
      .from(services)
      .where(and(eq(services.jurisdictionId, jurisdiction.id), eq(services.serviceCode, request.service)))
    if (!found) throw invalid(`service: no service "${request.service}" in ${jurisdiction.id}`)
    filters.serviceId = found.id
  }
  if (request.department !== undefined) {
    const [found] = await db.select({ id: departments.id }).from(departments).where(eq(departments.code, request.department))
    if (!found) throw invalid(`department: no department "${request.department}"`)
    filters.departmentId = found.id
  }
  if (request.channel !== undefined) filters.channel = request.channel
  if (request.area !== undefined) filters.area = request.area
  const { service, department, channel, area } = request
  const by = [...new Set(request.by ?? defaults.by)]
  return {
    jurisdiction,
    from,
    to,
    group: request.group ?? 'day',
    by,
    filters,
    asked: { ...(service !== undefined && { service }), ...(department !== undefined && { department }), ...(channel !== undefined && { channel }), ...(area !== undefined && { area }) },
    grain: rollupGrain(by, filters),
  }
}

/**
 * The coarsest rows of report_daily with every dimension a report groups or filters by: an
 * area, or a department and a channel together, need the full cells; a department alone, the
 * per-department sums; a channel alone, the per-channel sums; a service alone (or nothing), the
 * per-service sums — a few rows per day and service, where the full
 * cells are about one per department × channel × area with activity (24 a day per service
 * at 1M requests a year, docs/benchmarks.md). Volume's split by channel needs no channel rows:
 * every row has its created requests by channel (created_channels).
 */
export function rollupGrain(by: ReportDimension[], filters: ReportQuery['filters']): ReportGrain {
  const department = by.includes('department') || filters.departmentId !== undefined
  const channel = by.includes('channel') || filters.channel !== undefined
  if (by.includes('area') || filters.area !== undefined || (department && channel)) return 'full'
  if (department) return 'department'
  if (channel) return 'channel'
  return 'service'
}


/** The period a day falls in, as its first day: ISO weeks start on Monday. */
export function periodOf(group: ReportPeriod, day: SQL): SQL {
  if (group === 'day') return sql`${day}::text`
  // A literal, not a parameter: the select list and GROUP BY must be the same expression.
  return sql`date_trunc(${sql.raw(`'${group}'`)}, ${day})::date::text`
}

/**
 * The grouping columns as output names, over a source `alias` with service_id, department_id,
 * channel and area (report_daily, or the live work orders): codes, not ids; none is null.
 */
export function dimensionColumns(by: ReportDimension[], alias: string): SQL[] {
  const a = sql.raw(alias)
  return by.map((dimension) => {
    switch (dimension) {
      case 'service':
        return sql`(select code.service_code from services code where code.id = ${a}.service_id) as service_code`
      case 'department':
        return sql`(select code.code from departments code where code.id = ${a}.department_id) as department_code`
      case 'channel':
        return sql`${a}.channel as channel`
      case 'area':
        return sql`nullif(${a}.area, '') as area`
    }
  })
}

/** Output names of the grouping columns, in order. */
export const dimensionNames = (by: ReportDimension[]) =>
  by.map((dimension) => ({ service: 'service_code', department: 'department_code', channel: 'channel', area: 'area' })[dimension])

/** The filters on a source with service_id, department_id, channel and area (no jurisdiction, no days). */
export function dimensionFilters(query: ReportQuery, alias: string): SQL {
  const a = sql.raw(alias)
  const { serviceId, departmentId, channel, area, publicOnly } = query.filters
  const conditions: SQL[] = [sql`true`]
  if (publicOnly) conditions.push(sql`${a}.public`)
  if (serviceId !== undefined) conditions.push(sql`${a}.service_id = ${serviceId}`)
  if (departmentId !== undefined) conditions.push(sql`${a}.department_id = ${departmentId}`)
  if (channel !== undefined) conditions.push(sql`${a}.channel = ${channel}`)
  if (area !== undefined) conditions.push(sql`${a}.area = ${area}`)
  return sql.join(conditions, sql` and `)
}

/** report_daily rows of the query's jurisdiction, range and filters, as `d` (with `join`, when given). */
export function rollupRows(query: ReportQuery, join: SQL = sql``): SQL {
  return sql`report_daily d ${join} where d.jurisdiction_id = ${query.jurisdiction.id} and d.grain = ${query.grain}
    and d.day between ${query.from}::date and ${query.to}::date and ${dimensionFilters(query, 'd')}`
}
