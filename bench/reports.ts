/**
 * The reports' benchmark (issue 15), called from run.ts: `--only reports`. On its own data set
 * (REPORTS_DATA in setup.ts: its own database, so it never replaces the feed's), the rollups
 * rebuilt by the CLI's `reports rebuild`, then, for each report, one year ending today grouped
 * by week and service (backlog: per service and department, a snapshot):
 *
 * - first a check: the endpoint's rows against the same figures computed by a plain SQL query
 *   on the base tables (BASELINES), figure by figure; a mismatch is printed with both values;
 * - then GET /admin/v1/reports/<name>.json at one client against that query through pg at one
 *   client, in alternating slices, exact percentiles; reported: each side's p50 and p95 and the
 *   ratio of the p95s (the issue's target: ≤ 0.1×).
 */
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { request } from 'undici'
import * as schema from '../src/db/schema.js'
import { resolveJurisdiction } from '../src/domain/jurisdictions.js'
import { resolveReportQuery } from '../src/domain/reports/report-query.js'
import { REPORTS, runReport } from '../src/domain/reports/reports.js'
import { databaseUrl, deployedEnv, prepareDatabase, REPORTS_DATA, startDeployedServer } from './setup.js'

export const REPORT_NAMES = ['volume', 'timeliness', 'backlog', 'duplicates', 'templates'] as const
type ReportName = (typeof REPORT_NAMES)[number]
export const reportScenario = (name: ReportName) => `reports: ${name}.json`

/** One line of run.ts's table. */
export interface ReportFigure {
  scenario: string
  reqPerSec: number
  p50: number
  p99: number
  note?: string
}

export interface ReportsBench {
  rows: number
  port: number
  /** Seconds per side and report, in `rounds` alternating slices. */
  duration: number
  rounds: number
  /** Rebuild the rollups even when this data set's were rebuilt by an earlier run. */
  rebuild: boolean
  selected(...scenarios: string[]): boolean
  report(figure: ReportFigure): void
}

const JURISDICTION = 'demo.open311.city'
const DATE_OID = 1082
/** report_daily's comment once the bench has rebuilt the rollups of the data set there. */
const REBUILT = 'rebuilt by the reports bench'
const CHANNELS = ['web', 'app', 'phone', 'chat', 'email', 'walk_in', 'text', 'social', 'internal'] as const
const OPEN_STATES = `('pending', 'sent', 'accepted', 'scheduled', 'in_progress', 'on_hold')`

/**
 * Whole seconds from `from` to `to`, rounded down to 3 significant digits (the spec: < 1000 s
 * exact, 129600 → 129000), as the rollups' histograms keep them.
 */
function roundedSeconds(from: string, to: string) {
  const s = `floor(extract(epoch from (${to} - ${from})))::bigint`
  return `(case when ${s} < 1000 then ${s} else ${s} - ${s} % (10 ^ (length(${s}::text) - 3))::bigint end)`
}

/** The local day of a timestamp ($3: the jurisdiction's time zone) and its ISO week (Monday). */
const day = (ts: string) => `(${ts} at time zone $3)::date`
const week = (ts: string) => `date_trunc('week', ${day(ts)}::timestamp)::date`
/** `ts` within the local days $1..$2 inclusive, as a range on the timestamp itself (so an index on it serves). */
const inRange = (ts: string) => `${ts} >= $1::date::timestamp at time zone $3 and ${ts} < ($2::date + 1)::timestamp at time zone $3`
const pct = (part: string, whole: string) => `case when ${whole} > 0 then round(100.0 * ${part} / ${whole}, 1) end`

/**
 * Each report's figures by plain SQL on the base tables, no rollups ($1 from, $2 to: local
 * dates; $3 the time zone; $4 the jurisdiction): what someone without the reports would write.
 * Rows: `period` (the week's Monday, backlog: none), `service_code` (backlog: and `department_code`,
 * the code of the request's latest work order's department or null) and the spec's figures.
 */
export const BASELINES: Record<ReportName, string> = {
  volume: `
    with created as (
      select ${week('sr.requested_at')} as period, sr.service_id, count(*) as created,
             count(*) filter (where sr.status = 'open') as still_open,
             ${CHANNELS.map((c) => `count(*) filter (where sr.channel ${c === 'app' ? `in ('app', 'api')` : `= '${c}'`}) as created_${c}`).join(',\n             ')}
      from service_requests sr
      where sr.jurisdiction_id = $4 and ${inRange('sr.requested_at')}
      group by 1, 2),
    closed as (
      select ${week('sr.closed_at')} as period, sr.service_id, count(*) as closed
      from service_requests sr
      where sr.jurisdiction_id = $4 and ${inRange('sr.closed_at')}
      group by 1, 2)
    select coalesce(c.period, d.period) as period, s.service_code,
           coalesce(c.created, 0) as created, coalesce(d.closed, 0) as closed, coalesce(c.still_open, 0) as still_open,
           ${CHANNELS.map((c) => `coalesce(c.created_${c}, 0) as created_${c}`).join(', ')}
    from created c full join closed d on d.period = c.period and d.service_id = c.service_id
    join services s on s.id = coalesce(c.service_id, d.service_id)
    order by 1, 2`,
  timeliness: `
    with ack as (
      select ${week('w.acknowledged_at')} as period, sr.service_id, count(*) as acknowledged,
             percentile_disc(0.5) within group (order by ${roundedSeconds('w.created_at', 'w.acknowledged_at')}) as ack_median_seconds,
             percentile_disc(0.9) within group (order by ${roundedSeconds('w.created_at', 'w.acknowledged_at')}) as ack_p90_seconds
      from work_orders w join service_requests sr on sr.id = w.request_id
      where sr.jurisdiction_id = $4 and ${inRange('w.acknowledged_at')}
      group by 1, 2),
    closed as (
      select ${week('sr.closed_at')} as period, sr.service_id, count(*) as closed,
             percentile_disc(0.5) within group (order by ${roundedSeconds('sr.requested_at', 'sr.closed_at')}) as close_median_seconds,
             percentile_disc(0.9) within group (order by ${roundedSeconds('sr.requested_at', 'sr.closed_at')}) as close_p90_seconds
      from service_requests sr
      where sr.jurisdiction_id = $4 and ${inRange('sr.closed_at')}
      group by 1, 2),
    due as (
      select ${week('w.completed_at')} as period, sr.service_id, count(*) as completed_with_due,
             count(*) filter (where w.completed_at <= w.due_at) as completed_within_due
      from work_orders w join service_requests sr on sr.id = w.request_id
      where sr.jurisdiction_id = $4 and w.due_at is not null and ${inRange('w.completed_at')}
      group by 1, 2),
    overdue as (
      select ${week('w.overdue_at')} as period, sr.service_id, count(*) as went_overdue
      from work_orders w join service_requests sr on sr.id = w.request_id
      where sr.jurisdiction_id = $4 and ${inRange('w.overdue_at')}
      group by 1, 2),
    open_now as (
      select sr.service_id, count(*) as overdue_open_now
      from work_orders w join service_requests sr on sr.id = w.request_id
      where sr.jurisdiction_id = $4 and w.overdue_at is not null and w.state in ${OPEN_STATES}
      group by 1),
    keys as (select period, service_id from ack union select period, service_id from closed
             union select period, service_id from due union select period, service_id from overdue)
    select k.period, s.service_code,
           coalesce(a.acknowledged, 0) as acknowledged, a.ack_median_seconds, a.ack_p90_seconds,
           coalesce(c.closed, 0) as closed, c.close_median_seconds, c.close_p90_seconds,
           coalesce(d.completed_with_due, 0) as completed_with_due, coalesce(d.completed_within_due, 0) as completed_within_due,
           ${pct('d.completed_within_due', 'd.completed_with_due')} as sla_compliance_pct,
           coalesce(o.went_overdue, 0) as went_overdue, coalesce(n.overdue_open_now, 0) as overdue_open_now
    from keys k
    join services s on s.id = k.service_id
    left join ack a on a.period = k.period and a.service_id = k.service_id
    left join closed c on c.period = k.period and c.service_id = k.service_id
    left join due d on d.period = k.period and d.service_id = k.service_id
    left join overdue o on o.period = k.period and o.service_id = k.service_id
    left join open_now n on n.service_id = k.service_id
    order by 1, 2`,
  backlog: `
    select s.service_code, d.code as department_code,
           count(*) filter (where a.days <= 2) as open_0_2_days,
           count(*) filter (where a.days between 3 and 7) as open_3_7_days,
           count(*) filter (where a.days between 8 and 30) as open_8_30_days,
           count(*) filter (where a.days > 30) as open_over_30_days,
           count(*) as open_total
    from service_requests sr
    join services s on s.id = sr.service_id
    left join lateral (select w.department_id from work_orders w where w.request_id = sr.id order by w.id desc limit 1) latest on true
    left join departments d on d.id = latest.department_id
    cross join lateral (select (now() at time zone $3)::date - ${day('sr.requested_at')} as days) a
    -- A snapshot: from and to ($1, $2) do not apply; named only so that every baseline takes the same parameters.
    where sr.jurisdiction_id = $4 and sr.status = 'open' and $1::date is not null and $2::date is not null
    group by 1, 2
    order by 1, 2`,
  duplicates: `
    select ${week('sr.requested_at')} as period, s.service_code, count(*) as created,
           count(*) filter (where sr.parent_request_id is not null) as duplicates,
           ${pct('count(*) filter (where sr.parent_request_id is not null)', 'count(*)')} as duplicate_pct
    from service_requests sr join services s on s.id = sr.service_id
    where sr.jurisdiction_id = $4 and ${inRange('sr.requested_at')}
    group by 1, 2
    order by 1, 2`,
  templates: `
    select ${week('u.created_at')} as period, s.service_code, count(*) as public_notes,
           count(*) filter (where u.template_id is not null) as from_template,
           ${pct('count(*) filter (where u.template_id is not null)', 'count(*)')} as template_pct
    from request_updates u
    join service_requests sr on sr.id = u.request_id
    join services s on s.id = sr.service_id
    where sr.jurisdiction_id = $4 and u.is_public and u.is_answer and ${inRange('u.created_at')}
    group by 1, 2
    order by 1, 2`,
}

type Row = Record<string, unknown>

/** Figures compared within 1% (the histograms' rounding) rather than exactly. */
const APPROXIMATE = /_(median|p90)_seconds$/

export interface Mismatch {
  report: ReportName
  key: string
  figure: string
  endpoint: unknown
  baseline: unknown
}

const numeric = (v: unknown) => (v === null || v === undefined ? null : Number(v))

/**
 * The endpoint's rows against the baseline's, figure by figure, keyed by `keys` (period and
 * service, and department for backlog). A row only one side has is compared with zeros on the
 * other (a report may leave out a row of zeros); its absent figures show as `(no row)`.
 */
export function compareRows(report: ReportName, keys: string[], endpoint: Row[], baseline: Row[]): Mismatch[] {
  const keyOf = (row: Row) => keys.map((k) => String(row[k] ?? '')).join(' · ')
  const ours = new Map(endpoint.map((row) => [keyOf(row), row]))
  const theirs = new Map(baseline.map((row) => [keyOf(row), row]))
  const figures = Object.keys(baseline[0] ?? endpoint[0] ?? {}).filter((k) => !keys.includes(k))
  const mismatches: Mismatch[] = []
  for (const key of new Set([...ours.keys(), ...theirs.keys()])) {
    const [a, b] = [ours.get(key), theirs.get(key)]
    for (const figure of figures) {
      const [x, y] = [a ? numeric(a[figure]) : null, b ? numeric(b[figure]) : null]
      const same = APPROXIMATE.test(figure)
        ? (x === null && y === null) || (x !== null && y !== null && Math.abs(x - y) <= 0.01 * Math.max(Math.abs(y), 1))
        : (x ?? 0) === (y ?? 0)
      if (!same) mismatches.push({ report, key, figure, endpoint: a ? (a[figure] ?? null) : '(no row)', baseline: b ? (b[figure] ?? null) : '(no row)' })
    }
  }
  return mismatches
}

/** The key columns of a report's rows (by=service; backlog: its default by=service,department). */
const keysOf = (name: ReportName) => (name === 'backlog' ? ['service_code', 'department_code'] : ['period', 'service_code'])

/** Exact percentile (the smallest sample with at least p of the samples at or below it). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(sorted.length * p) - 1)]!
}

/** Latencies (ms) of `work` run back to back for `seconds` (at least once). */
async function slice(work: () => Promise<unknown>, seconds: number): Promise<number[]> {
  const latencies: number[] = []
  const deadline = performance.now() + seconds * 1000
  do {
    const t0 = performance.now()
    await work()
    latencies.push(performance.now() - t0)
  } while (performance.now() < deadline)
  return latencies
}

const round2 = (ms: number) => Math.round(ms * 100) / 100
const EXPLAIN_FILE = 'bench/.results/reports-explain.txt'

/**
 * EXPLAIN (ANALYZE, BUFFERS) of each report's statement exactly as the server sends it:
 * runReport on a connection with auto_explain, which hands every plan back as a NOTICE; the
 * plans that read report_daily are kept. Written to bench/.results/reports-explain.txt.
 */
async function explainReports(url: string, names: readonly ReportName[], range: { from: string; to: string }) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const sections: string[] = []
  let plans: string[] = []
  client.on('notice', (notice) => plans.push(notice.message ?? ''))
  try {
    await client.query(`load 'auto_explain'`)
    for (const setting of ['log_min_duration = 0', 'log_analyze = on', 'log_buffers = on', 'log_timing = on', "log_level = 'notice'"]) {
      await client.query(`set auto_explain.${setting}`)
    }
    const db = drizzle({ client, schema })
    const jurisdiction = await resolveJurisdiction(db, JURISDICTION)
    for (const name of names) {
      const by = REPORTS[name].defaultBy
      const query = await resolveReportQuery(db, jurisdiction, { ...range, group: 'week', by: name === 'backlog' ? by : ['service'] }, { by })
      plans = []
      await runReport(db, name, query)
      sections.push(`## ${name}\n\n${plans.filter((p) => p.includes('report_daily') && !p.includes('report_rollup_pending')).join('\n\n')}`)
    }
  } finally {
    await client.end()
  }
  await writeFile(EXPLAIN_FILE, `${sections.join('\n\n')}\n`)
  console.log(`# the reports' plans as the server runs them: ${EXPLAIN_FILE}`)
}

export async function benchReports(bench: ReportsBench) {
  const wanted = REPORT_NAMES.filter((name) => bench.selected(reportScenario(name)))
  if (!wanted.length) return
  const loadStarted = performance.now()
  const adminKey = await prepareDatabase(bench.rows, REPORTS_DATA, ['admin'])
  const loadSeconds = (performance.now() - loadStarted) / 1000
  const url = databaseUrl(REPORTS_DATA.database)
  console.log(`# reports data set ready in ${loadSeconds.toFixed(0)} s (${bench.rows.toLocaleString('en-US')} requests; made again only when it changed)`)
  // Dates as the endpoint writes them (YYYY-MM-DD), not as JavaScript Dates.
  const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === DATE_OID ? (value: string) => value : pg.types.getTypeParser(oid, format as 'text')) }
  const pool = new pg.Pool({ connectionString: url, max: 1, types })
  try {
    await measureReports(bench, wanted, url, pool, adminKey)
  } finally {
    await pool.end()
  }
}

async function measureReports(bench: ReportsBench, wanted: ReportName[], url: string, pool: pg.Pool, adminKey: string) {
  // The rollups from the base tables, by the operators' own command: the loader writes the base
  // tables in bulk without the triggers that queue changes, and says so by clearing report_daily's
  // comment; once rebuilt, the write path's triggers keep them right.
  const [rollups] = (await pool.query<{ comment: string | null }>(`select obj_description('report_daily'::regclass, 'pg_class') as comment`)).rows
  if (bench.rebuild || rollups!.comment !== REBUILT) {
    await pool.query('comment on table report_daily is null')
    const rebuildStarted = performance.now()
    const output = execFileSync('node', ['dist/cli/main.js', 'reports', 'rebuild'], { env: { ...process.env, DATABASE_URL: url }, encoding: 'utf8' })
    const rebuildSeconds = (performance.now() - rebuildStarted) / 1000
    await pool.query(`comment on table report_daily is '${REBUILT}'`)
    console.log(`# reports rebuild: ${rebuildSeconds.toFixed(1)} s; ${output.trim().replaceAll('\n', '; ')}`)
    bench.report({
      scenario: 'reports: rollups rebuilt from the base tables (reports rebuild CLI), s',
      reqPerSec: Number.NaN,
      p50: Number.NaN,
      p99: Number.NaN,
      note: `${rebuildSeconds.toFixed(1)} s at ${bench.rows.toLocaleString('en-US')} requests`,
    })
  } else console.log('# rollups rebuilt by an earlier run on this data set (--reports-rebuild to do it again)')
  const server = await startDeployedServer(process.cwd(), bench.port, 'bench/.results/server-reports.log', deployedEnv(bench.port, url))
  try {
    const [zone] = (await pool.query<{ tz: string; today: string; from: string }>(
      `select time_zone as tz, ((now() at time zone time_zone)::date)::text as today, (((now() at time zone time_zone)::date - interval '1 year')::date)::text as "from"
       from jurisdictions where id = $1`,
      [JURISDICTION],
    )).rows
    const { tz, today, from } = zone!
    const params = [from, today, tz, JURISDICTION]
    console.log(`# range ${from} … ${today} (${tz}), group=week, by=service`)
    for (const name of wanted) {
      const path = `/admin/v1/reports/${name}.json?from=${from}&to=${today}&group=week&by=service${name === 'backlog' ? ',department' : ''}`
      const get = () => request(`${server.base}${path}`, { headers: { authorization: `Bearer ${adminKey}` } })
      // Timed: the body read chunk by chunk and dropped, as run.ts's one-client loops read theirs.
      const http = async () => {
        const res = await get()
        for await (const _chunk of res.body) {
          // Each chunk is dropped as it arrives.
        }
        // A failed report would be timed as a fast one: stop instead.
        if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}`)
      }
      const baseline = () => pool.query(BASELINES[name], params)

      const res = await get()
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}: ${text.slice(0, 500)}`)
      const answer = JSON.parse(text)
      const endpointRows: Row[] = Array.isArray(answer) ? answer : (answer.rows ?? [])
      const baselineRows = (await baseline()).rows as Row[]
      const mismatches = compareRows(name, keysOf(name), endpointRows, baselineRows)
      const check = mismatches.length
        ? `MISMATCHES ${mismatches.length} (rows: endpoint ${endpointRows.length}, baseline ${baselineRows.length})`
        : `same figures as the baseline (${baselineRows.length} rows)`
      console.log(`# ${name}: ${check}`)
      for (const m of mismatches.slice(0, 12)) console.log(`#   ${m.key} ${m.figure}: endpoint ${JSON.stringify(m.endpoint)}, baseline ${JSON.stringify(m.baseline)}`)

      // One warm-up each, then alternating slices: both sides share the machine's drift.
      await slice(http, 1)
      await slice(baseline, 1)
      const samples: [number[], number[]] = [[], []]
      for (let round = 0; round < bench.rounds; round++) {
        samples[1].push(...(await slice(http, bench.duration / bench.rounds)))
        samples[0].push(...(await slice(baseline, bench.duration / bench.rounds)))
      }
      const [base, ours] = samples.map((s) => s.sort((a, b) => a - b)) as [number[], number[]]
      const ratio = percentile(ours, 0.95) / percentile(base, 0.95)
      bench.report({
        scenario: `reports: direct SQL baseline for ${name} through pg, 1 client`,
        reqPerSec: Math.round((base.length / bench.duration) * 100) / 100,
        p50: round2(percentile(base, 0.5)),
        p99: round2(percentile(base, 0.99)),
        note: `p95 ${round2(percentile(base, 0.95))} ms over ${base.length} runs`,
      })
      bench.report({
        scenario: `${reportScenario(name)} (year by week and service${name === 'backlog' ? '; backlog: service and department, now' : ''}), 1 client`,
        reqPerSec: Math.round((ours.length / bench.duration) * 100) / 100,
        p50: round2(percentile(ours, 0.5)),
        p99: round2(percentile(ours, 0.99)),
        note: `p95 ${round2(percentile(ours, 0.95))} ms over ${ours.length} requests; p95 / baseline p95 = ${ratio.toFixed(3)} (target ≤ 0.1); ${check}`,
      })
      console.log(`# ${name}: p95 ${round2(percentile(ours, 0.95))} ms vs baseline ${round2(percentile(base, 0.95))} ms: ${ratio.toFixed(3)}×`)

      // A city writes all day: a report then first recomputes the cells its writes queued
      // (refreshRollups). One write before each request (an update the report triggers hear,
      // which changes no figure: the request's cells are queued), only the request timed.
      const afterWrite: number[] = []
      for (let i = 0; i < bench.rounds; i++) {
        await pool.query(`update service_requests set channel = channel where id = 1 + floor(random() * $1)::bigint`, [bench.rows])
        afterWrite.push(...(await slice(http, 0)))
      }
      afterWrite.sort((a, b) => a - b)
      bench.report({
        scenario: `${reportScenario(name)} right after one write (its cells queued), 1 client`,
        reqPerSec: Number.NaN,
        p50: round2(percentile(afterWrite, 0.5)),
        p99: round2(percentile(afterWrite, 0.99)),
        note: `p95 ${round2(percentile(afterWrite, 0.95))} ms over ${afterWrite.length} requests; p95 / baseline p95 = ${(percentile(afterWrite, 0.95) / percentile(base, 0.95)).toFixed(3)}`,
      })
      console.log(`# ${name} right after a write: p50 ${round2(percentile(afterWrite, 0.5))} ms, p95 ${round2(percentile(afterWrite, 0.95))} ms`)
    }
    await explainReports(url, wanted, { from, to: today })
  } finally {
    await server.stop()
  }
}
