/**
 * The managers' reports (docs/reports.md), each one statement over the rollups (report_daily,
 * rollups.ts) — so its cost follows the days and groups asked for, not the requests behind
 * them. Pending rollup cells are recomputed first (refreshRollups), so an answer includes every
 * write committed before it was asked.
 *
 * A report is a list of columns and rows with exactly those keys: the JSON and CSV renderings
 * carry the same figures.
 */
import { type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { REQUEST_CHANNELS, TERMINAL_WORK_ORDER_STATES } from '../../db/schema.js'
import {
  dimensionColumns,
  dimensionFilters,
  dimensionNames,
  periodOf,
  type ReportDimension,
  type ReportQuery,
  rollupRows,
} from './report-query.js'
import { REPORT_CHANNEL, refreshRollups, withoutJit } from './rollups.js'

export const REPORT_NAMES = ['volume', 'timeliness', 'backlog', 'duplicates', 'templates'] as const
export type ReportName = (typeof REPORT_NAMES)[number]

export type ReportValue = string | number | null
export interface Report {
  columns: string[]
  rows: Record<string, ReportValue | boolean>[]
}

/** A figure: its column name and its SQL over the grouped rows `d` of report_daily. */
type Figure = [name: string, value: SQL]

export interface ReportDefinition {
  /** Grouping when `by` is not given. */
  defaultBy: ReportDimension[]
  /** Whether rows are per period (backlog is a snapshot of now). */
  periods: boolean
  /** The figures' column names, after the period and the grouping columns. */
  figures: readonly string[]
  /** The statement: period (when per period), the grouping keys of report_daily, the figures. */
  statement: (query: ReportQuery) => SQL
}

/**
 * A row appears when its report has something to say in it: a day with only other reports'
 * activity (an acknowledgement, a note) is not a volume row of zeros.
 */
const anyOf = (...columns: string[]) => sql.raw(`having ${columns.map((c) => `sum(d.${c}) > 0`).join(' or ')}`)

const total = (column: string): Figure => [column, sql`sum(d.${sql.raw(column)})::int`]
/** A share in percent with one decimal; null when there is nothing to share. */
const percent = (name: string, part: string, whole: string): Figure => [name, sql`round(100.0 * sum(d.${sql.raw(part)}) / nullif(sum(d.${sql.raw(whole)}), 0), 1)::float8`]

const VOLUME: Figure[] = [
  total('created'),
  total('closed'),
  total('still_open'),
  ...REQUEST_CHANNELS.map((channel): Figure => [`created_${channel}`, sql`coalesce(sum((d.created_channels ->> ${channel})::int), 0)::int`]),
]
const DUPLICATES: Figure[] = [total('created'), total('duplicates'), percent('duplicate_pct', 'duplicates', 'created')]
const TEMPLATES: Figure[] = [total('public_notes'), total('from_template'), percent('template_pct', 'from_template', 'public_notes')]
const TIMELINESS_TOTALS: Figure[] = [
  total('acknowledged'),
  total('closed'),
  total('completed_with_due'),
  total('completed_within_due'),
  percent('sla_compliance_pct', 'completed_within_due', 'completed_with_due'),
  total('went_overdue'),
]
const TIMELINESS_FIGURES = [
  'acknowledged', 'ack_median_seconds', 'ack_p90_seconds', 'closed', 'close_median_seconds', 'close_p90_seconds',
  'completed_with_due', 'completed_within_due', 'sla_compliance_pct', 'went_overdue', 'overdue_open_now',
] as const
/** Open requests by age in days since their creation day (inclusive bounds; the last has none). */
const BACKLOG_AGES: [name: string, fromDay: number, toDay: number | null][] = [
  ['open_0_2_days', 0, 2],
  ['open_3_7_days', 3, 7],
  ['open_8_30_days', 8, 30],
  ['open_over_30_days', 31, null],
]

export const REPORTS: Record<ReportName, ReportDefinition> = {
  volume: { defaultBy: ['service'], periods: true, figures: VOLUME.map(([name]) => name), statement: (query) => grouped(query, named(VOLUME), { having: anyOf('created', 'closed') }) },
  timeliness: { defaultBy: ['service'], periods: true, figures: TIMELINESS_FIGURES, statement: timeliness },
  backlog: { defaultBy: ['service', 'department'], periods: false, figures: [...BACKLOG_AGES.map(([name]) => name), 'open_total'], statement: backlog },
  duplicates: { defaultBy: ['service'], periods: true, figures: DUPLICATES.map(([name]) => name), statement: (query) => grouped(query, named(DUPLICATES), { having: anyOf('created') }) },
  templates: { defaultBy: ['service'], periods: true, figures: TEMPLATES.map(([name]) => name), statement: (query) => grouped(query, named(TEMPLATES), { having: anyOf('public_notes') }) },
}

export function runReport(db: Db, name: ReportName, query: ReportQuery): Promise<Report> {
  return runReportDefinition(db, REPORTS[name], query)
}

/**
 * Any report over the rollups (the five above, the open-data stats), after refreshing pending
 * cells — unless `refresh` is false: the public stats read the rollups as the report-rollups
 * worker leaves them, so anonymous traffic never does a refresh's work or waits on its lock.
 */
export async function runReportDefinition(db: Db, definition: ReportDefinition, query: ReportQuery, { refresh = true } = {}): Promise<Report> {
  if (refresh) await refreshRollups(db)
  const rows = await db.transaction(async (tx) => {
    await withoutJit(tx)
    return queryRows<Record<string, ReportValue>>(tx, withCodes(query, definition.statement(query), definition))
  })
  return { columns: [...(definition.periods ? ['period'] : []), ...dimensionNames(query.by), ...definition.figures], rows }
}

/** report_daily's key column for each grouping dimension. */
const KEY_COLUMNS: Record<ReportDimension, string> = { service: 'service_id', department: 'department_id', channel: 'channel', area: 'area' }
const keysOf = (query: ReportQuery) => query.by.map((dimension) => KEY_COLUMNS[dimension])
const list = (items: SQL[]) => sql.join(items, sql`, `)
const named = (figures: Figure[]) => figures.map(([name, value]) => sql`${value} as ${sql.identifier(name)}`)

/** Period and keys of `d` (report_daily, filtered), then `columns`, grouped by period and keys. */
function grouped(query: ReportQuery, columns: SQL[], { from = rollupRows(query), extraGroup = [] as SQL[], having = sql`` } = {}): SQL {
  const period = periodOf(query.group, sql`d.day`)
  const keys = keysOf(query).map((k) => sql.raw(`d.${k}`))
  return sql`select ${list([sql`${period} as period`, ...keys, ...columns])} from ${from} group by ${list([period, ...keys, ...extraGroup])} ${having}`
}

/** The rows of `inner` with codes for its keys, ordered by period and groups. */
function withCodes(query: ReportQuery, inner: SQL, definition: ReportDefinition): SQL {
  const names = dimensionNames(query.by)
  const order = [...(definition.periods ? ['period'] : []), ...names].map((n) => sql`${sql.identifier(n)}`)
  const columns = [...(definition.periods ? [sql`i.period`] : []), ...dimensionColumns(query.by, 'i'), ...definition.figures.map((f) => sql`i.${sql.identifier(f)}`)]
  return sql`select ${list(columns)} from (${inner}) i${order.length > 0 ? sql` order by ${list(order)}` : sql``}`
}

/**
 * percentile_disc over a histogram pair of report_daily (values ascending, their counts): the
 * smallest value with at least half (nine tenths) of the counts at or below it, per period and keys.
 */
function percentiles(query: ReportQuery, histogram: 'close' | 'ack'): SQL {
  const partition = sql.raw(['period', ...keysOf(query)].join(', '))
  const values = sql`cross join lateral unnest(d.${sql.raw(histogram)}_seconds, d.${sql.raw(histogram)}_counts) v(value, n)`
  const counted = grouped(query, [sql`v.value`, sql`sum(v.n)::bigint as n`], { from: rollupRows(query, values), extraGroup: [sql`v.value`] })
  return sql`select ${partition},
      min(value) filter (where running * 2 >= total) as median,
      min(value) filter (where running * 10 >= total * 9) as p90
    from (select h.*, sum(n) over (partition by ${partition} order by value) as running, sum(n) over (partition by ${partition}) as total
          from (${counted}) h) c
    group by ${partition}`
}

const FINAL_STATES = sql.raw(`(${TERMINAL_WORK_ORDER_STATES.map((s) => `'${s}'`).join(', ')})`)

/**
 * Open work orders past due now, per keys: from the live tables (a snapshot is not a daily
 * figure), through the partial index of open overdue work (work_orders_open_overdue_idx). The
 * same columns and filters as report_daily, so it joins the rollups' keys.
 */
function overdueNow(query: ReportQuery): SQL {
  const keys = keysOf(query).map((k) => sql.raw(`o.${k}`))
  return sql`select ${list([...keys, sql`count(*)::int as overdue_open_now`])}
    from (select r.service_id, w.department_id, ${REPORT_CHANNEL} as channel, coalesce(w.area_name, '') as area, r.is_public as public
          from work_orders w join service_requests r on r.id = w.request_id
          where w.overdue_at is not null and w.state not in ${FINAL_STATES} and r.jurisdiction_id = ${query.jurisdiction.id}) o
    where ${dimensionFilters(query, 'o')}
    ${keys.length > 0 ? sql`group by ${list(keys)}` : sql``}`
}

function timeliness(query: ReportQuery): SQL {
  const keys = keysOf(query)
  const byPeriod = sql.raw(`using (${['period', ...keys].join(', ')})`)
  const byKeys = keys.length > 0 ? sql.raw(`using (${keys.join(', ')})`) : sql`on true`
  // A group with overdue work but nothing else in the range still shows it, on the last period.
  const lastPeriod = periodOf(query.group, sql`${query.to}::date`)
  return sql`select coalesce(t.period, ${lastPeriod}) as period${keys.length > 0 ? sql`, ${sql.raw(keys.join(', '))}` : sql``},
      coalesce(t.acknowledged, 0) as acknowledged, a.median as ack_median_seconds, a.p90 as ack_p90_seconds,
      coalesce(t.closed, 0) as closed, c.median as close_median_seconds, c.p90 as close_p90_seconds,
      coalesce(t.completed_with_due, 0) as completed_with_due, coalesce(t.completed_within_due, 0) as completed_within_due,
      t.sla_compliance_pct, coalesce(t.went_overdue, 0) as went_overdue, coalesce(o.overdue_open_now, 0) as overdue_open_now
    from (${grouped(query, named(TIMELINESS_TOTALS), { having: anyOf('acknowledged', 'closed', 'completed_with_due', 'went_overdue') })}) t
    left join (${percentiles(query, 'ack')}) a ${byPeriod}
    left join (${percentiles(query, 'close')}) c ${byPeriod}
    full join (${overdueNow(query)}) o ${byKeys}`
}

/** Open requests now by age (today minus their local creation day), per keys; no periods, no range. */
function backlog(query: ReportQuery): SQL {
  const keys = keysOf(query).map((k) => sql.raw(`d.${k}`))
  const age = sql`((now() at time zone ${query.jurisdiction.timeZone})::date - d.day)`
  const buckets = BACKLOG_AGES.map(
    ([name, fromDay, toDay]) =>
      sql`coalesce(sum(d.still_open) filter (where ${age} >= ${fromDay}${toDay === null ? sql`` : sql` and ${age} <= ${toDay}`}), 0)::int as ${sql.identifier(name)}`,
  )
  return sql`select ${list([...keys, ...buckets, sql`sum(d.still_open)::int as open_total`])}
    from report_daily d
    where d.jurisdiction_id = ${query.jurisdiction.id} and d.grain = ${query.grain} and d.still_open > 0 and ${dimensionFilters(query, 'd')}
    ${keys.length > 0 ? sql`group by ${list(keys)}` : sql``}`
}

/**
 * The public aggregate behind /open-data/v1/stats (src/domain/open-data/stats.ts, which
 * suppresses small cells): public requests only, counts and medians, nothing per request.
 */
export const PUBLIC_STATS: ReportDefinition = {
  defaultBy: ['service'],
  periods: true,
  figures: ['created', 'closed', 'close_median_seconds', 'acknowledged', 'ack_median_seconds'],
  statement: (query) => {
    const byPeriod = sql.raw(`using (${['period', ...keysOf(query)].join(', ')})`)
    const totals = grouped(query, named([total('created'), total('closed'), total('acknowledged')]), { having: anyOf('created', 'closed', 'acknowledged') })
    return sql`select t.*, c.median as close_median_seconds, a.median as ack_median_seconds
      from (${totals}) t
      left join (${percentiles(query, 'close')}) c ${byPeriod}
      left join (${percentiles(query, 'ack')}) a ${byPeriod}`
  },
}
