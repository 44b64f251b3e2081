/**
 * Public aggregate statistics (`/open-data/v1/stats`, docs/open-data.md "Statistics"): per
 * month and service, how many public requests came in and closed, how many of their work orders
 * were acknowledged, and the median times — from the report rollups, never per request. A count
 * from 1 to 4, and a median over fewer than 5 values, is suppressed (null, and the row says so):
 * small cells can single out a household on a quiet street. Whole calendar months only, however
 * the range is asked: with free day ranges, two overlapping answers would give a suppressed
 * day's count by subtraction.
 */
import type { Db } from '../../db/database.js'
import type { Jurisdiction } from '../jurisdictions.js'
import { type ReportQuery, resolveReportQuery } from '../reports/report-query.js'
import { firstDayOfMonth, lastDayOfMonth, shiftMonths } from '../reports/local-days.js'
import { PUBLIC_STATS, type Report, type ReportValue, runReportDefinition } from '../reports/reports.js'

/** The smallest count published. */
export const MINIMUM_CELL = 5
/** Without `from`: the twelve months ending with `to`'s. */
export const DEFAULT_STATS_MONTHS = 12

/** Each median and the count of values behind it. */
const MEDIANS: Record<string, string> = { close_median_seconds: 'closed', ack_median_seconds: 'acknowledged' }
const COUNTS = ['created', 'closed', 'acknowledged']

export interface StatsRequest {
  from?: string
  to?: string
  service?: string
}

export async function publicStats(db: Db, jurisdiction: Jurisdiction, request: StatsRequest): Promise<{ query: ReportQuery; report: Report }> {
  const asked = await resolveReportQuery(db, jurisdiction, { ...request, group: 'month' }, { by: ['service'], publicOnly: true })
  const to = lastDayOfMonth(asked.to)
  const from = request.from ? firstDayOfMonth(asked.from) : shiftMonths(firstDayOfMonth(asked.to), 1 - DEFAULT_STATS_MONTHS)
  const query = { ...asked, from, to }
  const report = await runReportDefinition(db, PUBLIC_STATS, query, { refresh: false })
  return { query, report: { columns: [...report.columns, 'suppressed'], rows: report.rows.map(suppressSmallCells) } }
}

/** The row with its small counts and thin medians nulled, and `suppressed` saying whether any was. */
export function suppressSmallCells(row: Record<string, ReportValue | boolean>): Record<string, ReportValue | boolean> {
  const out: Record<string, ReportValue | boolean> = { ...row }
  let suppressed = false
  for (const column of COUNTS) {
    const value = Number(row[column])
    if (value > 0 && value < MINIMUM_CELL) {
      out[column] = null
      suppressed = true
    }
  }
  for (const [median, count] of Object.entries(MEDIANS)) {
    if (row[median] !== null && Number(row[count]) < MINIMUM_CELL) {
      out[median] = null
      suppressed = true
    }
  }
  out.suppressed = suppressed
  return out
}
