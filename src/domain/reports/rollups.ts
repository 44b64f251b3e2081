/**
 * The report rollups (report_daily, docs/reports.md): every report figure of a local day, per
 * jurisdiction, service, department, channel and routing area, recomputed from the base tables.
 *
 * Writes never touch report_daily. Triggers (migration 0015) add an entry to
 * report_rollup_pending, in the writer's transaction, for each (jurisdiction, service, day) cell
 * the write changes; `refreshRollups` deletes the entries it can see and recomputes their cells.
 * That is what makes the rollups right under concurrent writes without writers waiting on one
 * hot counter row: an entry is visible only once its write has committed, and the recompute's
 * statement starts after the entries were taken, so it sees every write whose entry it took.
 * A write still in flight leaves its entry for the next refresh. Refreshes take one advisory
 * lock, so two instances never recompute the same cell at once (which could insert it twice).
 * A cell's rows are its full ones and, summed from them in the same transaction, its coarser
 * per-channel, per-department and per-service rows (report_daily.grain, open311_report_coarse_rows).
 */
import { type SQL, sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { REPORT_GRAINS } from '../../db/schema.js'
import { daysBetween, earlierOf, shiftDays } from './local-days.js'

/** The advisory lock that serialises refreshes across instances ('rprt'). */
const REFRESH_LOCK = 0x72707274

/** Pending entries taken per transaction: a bounded amount of work and of locks held. */
const REFRESH_BATCH = 20_000

export interface Cell {
  jurisdictionId: string
  serviceId: number
  /** A local date, YYYY-MM-DD. */
  day: string
}

/**
 * Recomputes every pending cell; returns how many cells it recomputed. `wait`: block until
 * another instance's refresh is done (a report about to read the rollups); otherwise return 0
 * at once when one is running (the background job: that one will do it).
 */
export async function refreshRollups(db: Db, { wait = true }: { wait?: boolean } = {}): Promise<number> {
  // Reports that find nothing pending must not queue on the refresh lock behind each other
  // (reports on several instances would run one at a time). An entry committed after this
  // read is of a write that finished after the report was asked.
  // Only what is pending now: under a steady stream of writes the refresh still ends.
  const [pending] = await queryRows<{ last: string | null }>(db, sql`select max(id)::text as last from report_rollup_pending`)
  if (pending!.last === null) return 0
  const last = pending!.last
  let total = 0
  for (;;) {
    const done = await db.transaction(async (tx) => {
      if (!(await takeRefreshLock(tx, wait))) return -1
      await withoutJit(tx)
      const cells = await queryRows<{ jurisdiction_id: string; service_id: number; day: string }>(
        tx,
        sql`with taken as (
              delete from report_rollup_pending
              where id in (select id from report_rollup_pending where id <= ${last}::bigint order by id limit ${REFRESH_BATCH})
              returning jurisdiction_id, service_id, day)
            select distinct jurisdiction_id, service_id, day::text as day from taken`,
      )
      await recomputeCells(
        tx,
        cells.map((c) => ({ jurisdictionId: c.jurisdiction_id, serviceId: Number(c.service_id), day: c.day })),
      )
      return cells.length
    })
    if (done <= 0) return total
    total += done
  }
}

/**
 * No JIT for these statements: their cost estimates pass jit_above_cost, and compiling the plan
 * took 3.3 s of the 3.6 s a day's recompute took at 1M requests (the plan itself runs in 0.4 s).
 * PGlite has no JIT; the setting is accepted and changes nothing there.
 */
export async function withoutJit(tx: Db): Promise<void> {
  await tx.execute(sql`set local jit = off`)
}

async function takeRefreshLock(tx: Db, wait: boolean): Promise<boolean> {
  if (wait) {
    await tx.execute(sql`select pg_advisory_xact_lock(${REFRESH_LOCK})`)
    return true
  }
  const [row] = await queryRows<{ locked: boolean }>(tx, sql`select pg_try_advisory_xact_lock(${REFRESH_LOCK}) as locked`)
  return row!.locked
}

/**
 * Recomputes the rollups of every day in [from, to] (local dates; all days when not given) from
 * the base tables: the `reports rebuild` command, for a restore, a bulk load or a changed rule.
 * A month per transaction, so a large history neither holds one long transaction nor many locks.
 */
export async function rebuildRollups(db: Db, range: { from?: string; to?: string } = {}): Promise<{ days: number; cells: number }> {
  const [bounds] = await queryRows<{ first: string | null; last: string | null }>(
    db,
    // Nothing counts before the first request, or after today (every figure's time is in the past).
    sql`select (select min((r.requested_at at time zone j.time_zone)::date) from service_requests r join jurisdictions j on j.id = r.jurisdiction_id)::text as first,
               (select max((now() at time zone j.time_zone)::date) from jurisdictions j)::text as last`,
  )
  const from = range.from ?? bounds!.first
  const to = range.to ?? bounds!.last
  if (!from || !to) return { days: 0, cells: 0 }
  let days = 0
  let cells = 0
  for (let start = from; start <= to; start = shiftDays(start, 31)) {
    const end = earlierOf(shiftDays(start, 30), to)
    cells += await db.transaction(async (tx) => {
      await takeRefreshLock(tx, true)
      await withoutJit(tx)
      // Entries for these days are done by this recompute (its statement starts after their writes committed).
      await tx.execute(sql`delete from report_rollup_pending where day between ${start}::date and ${end}::date`)
      // Every service of every jurisdiction on every day: cells without data come out empty.
      const all = await queryRows<{ jurisdiction_id: string; service_id: number; day: string }>(
        tx,
        sql`select s.jurisdiction_id, s.id as service_id, d::date::text as day
            from services s, generate_series(${start}::date, ${end}::date, interval '1 day') d`,
      )
      const wanted = all.map((c) => ({ jurisdictionId: c.jurisdiction_id, serviceId: Number(c.service_id), day: c.day }))
      await recomputeCells(tx, wanted)
      return wanted.length
    })
    days += daysBetween(start, end) + 1
  }
  // The planner's figures for the reports' statements: a rebuild can change the table's size many times over.
  await db.execute(sql`analyze report_daily`)
  return { days, cells }
}

/** Deletes and recomputes the given cells, every grain, in the caller's transaction (which holds the refresh lock). */
async function recomputeCells(tx: Db, cells: Cell[]): Promise<void> {
  if (cells.length === 0) return
  const jurisdictions = sql.param(cells.map((c) => c.jurisdictionId))
  const services = sql.param(cells.map((c) => c.serviceId))
  const days = sql.param(cells.map((c) => c.day))
  const wanted = sql`select * from unnest(${jurisdictions}::text[], ${services}::bigint[], ${days}::date[]) c(jurisdiction_id, service_id, day)`
  await tx.execute(
    // Every grain named, so that the primary key (jurisdiction, grain, day, service, …) finds the rows.
    sql`delete from report_daily d using (${wanted}) c
        where d.jurisdiction_id = c.jurisdiction_id and d.grain = any(${sql.param([...REPORT_GRAINS])}::text[])
          and d.day = c.day and d.service_id = c.service_id`,
  )
  await tx.execute(recomputeStatement(wanted))
  await tx.execute(sql`insert into report_daily select * from open311_report_coarse_rows(${jurisdictions}::text[], ${services}::bigint[], ${days}::date[])`)
}

/** How a request's channel is grouped: rows from instances before channels said `api` (an app's key). */
export const REPORT_CHANNEL = sql`case r.channel when 'api' then 'app' else coalesce(r.channel, 'unknown') end`

/** A request's department and area in reports: its latest work order's (none without one). */
const REQUEST_PLACE = sql`left join lateral (
    select w.department_id, w.area_name from work_orders w where w.request_id = r.id order by w.id desc limit 1) place on true`
/** Key columns cannot be null: department 0 and area '' stand for none. */
const PLACE = sql`coalesce(place.department_id, 0) as department_id, coalesce(place.area_name, '') as area, r.is_public as public`
const WORK_ORDER_PLACE = sql`w.department_id, coalesce(w.area_name, '') as area, r.is_public as public`

/**
 * The rows of `table` (as `alias`) whose `column` falls on the wanted day `d`: a range scan of
 * that column's index per day. `offset 0` keeps the planner from pulling the subquery up into a
 * join on the jurisdiction, which read every request for each batch (measured at 1M requests:
 * a 36-minute rebuild, 7–12 s to refresh one day, bench/reports.ts).
 */
function onDay(table: string, alias: string, column: string, extra: SQL = sql``): SQL {
  return sql`cross join lateral (select * from ${sql.raw(table)} x
    where x.${sql.raw(column)} >= d.starts and x.${sql.raw(column)} < d.ends ${extra} offset 0) ${sql.raw(alias)}`
}

/**
 * The request of each row of `alias`, one primary-key lookup per row: with the day's services
 * as a filter, the planner otherwise hash-joined every request (4 s a source at 1M).
 */
function requestOf(alias: string): SQL {
  return sql`cross join lateral (select * from service_requests r0 where r0.id = ${sql.raw(alias)}.request_id offset 0) r`
}

/** A row of facts: the figures absent from a source are zero (or no duration). */
function facts(values: Partial<Record<FactColumn, SQL>>): SQL {
  return sql.join(
    FACT_COLUMNS.map((column) => sql`${values[column] ?? (column.endsWith('_s') ? sql`null::integer` : sql`0`)} as ${sql.identifier(column)}`),
    sql`, `,
  )
}
const FACT_COLUMNS = [
  'created', 'still_open', 'duplicates', 'closed', 'close_s', 'acknowledged', 'ack_s',
  'completed_with_due', 'completed_within_due', 'went_overdue', 'public_notes', 'from_template',
] as const
type FactColumn = (typeof FACT_COLUMNS)[number]

/**
 * One statement: the facts of each wanted day (each source read by its time index over the
 * day's range, for the day's wanted services), summed per cell, durations kept as histograms.
 * docs/reports.md says which time puts a fact on a day and which department it counts for.
 */
function recomputeStatement(wanted: SQL): SQL {
  const request = sql`r.jurisdiction_id = d.jurisdiction_id and r.service_id = any(d.services)`
  const key = sql`jurisdiction_id, service_id, day, department_id, channel, area, public`
  return sql`with wanted_day as (
      select c.jurisdiction_id, c.day, array_agg(c.service_id) as services,
             (c.day::timestamp at time zone j.time_zone) as starts, ((c.day + 1)::timestamp at time zone j.time_zone) as ends
      from (${wanted}) c join jurisdictions j on j.id = c.jurisdiction_id
      group by c.jurisdiction_id, c.day, j.time_zone),
    fact as (
      select d.jurisdiction_id, r.service_id, d.day, ${PLACE}, ${REPORT_CHANNEL} as channel,
             ${facts({ created: sql`1`, still_open: sql`(r.status = 'open')::int`, duplicates: sql`(r.parent_request_id is not null)::int` })}
      from wanted_day d ${onDay('service_requests', 'r', 'requested_at')} ${REQUEST_PLACE}
      where ${request}
      union all
      select d.jurisdiction_id, r.service_id, d.day, ${PLACE}, ${REPORT_CHANNEL},
             ${facts({ closed: sql`1`, close_s: sql`open311_duration_bucket(extract(epoch from r.closed_at - r.requested_at))` })}
      from wanted_day d ${onDay('service_requests', 'r', 'closed_at')} ${REQUEST_PLACE}
      where ${request}
      union all
      select d.jurisdiction_id, r.service_id, d.day, ${WORK_ORDER_PLACE}, ${REPORT_CHANNEL},
             ${facts({ acknowledged: sql`1`, ack_s: sql`open311_duration_bucket(extract(epoch from w.acknowledged_at - w.created_at))` })}
      from wanted_day d ${onDay('work_orders', 'w', 'acknowledged_at')} ${requestOf('w')}
      where ${request}
      union all
      select d.jurisdiction_id, r.service_id, d.day, ${WORK_ORDER_PLACE}, ${REPORT_CHANNEL},
             ${facts({ completed_with_due: sql`(w.due_at is not null)::int`, completed_within_due: sql`coalesce(w.completed_at <= w.due_at, false)::int` })}
      from wanted_day d ${onDay('work_orders', 'w', 'completed_at')} ${requestOf('w')}
      where ${request}
      union all
      select d.jurisdiction_id, r.service_id, d.day, ${WORK_ORDER_PLACE}, ${REPORT_CHANNEL}, ${facts({ went_overdue: sql`1` })}
      from wanted_day d ${onDay('work_orders', 'w', 'overdue_at')} ${requestOf('w')}
      where ${request}
      union all
      select d.jurisdiction_id, r.service_id, d.day, ${PLACE}, ${REPORT_CHANNEL},
             ${facts({ public_notes: sql`1`, from_template: sql`(u.template_id is not null)::int` })}
      from wanted_day d ${onDay('request_updates', 'u', 'created_at', sql`and x.is_public and x.is_answer`)}
      ${requestOf('u')} ${REQUEST_PLACE}
      where ${request}),
    totals as (
      select ${key}, sum(created)::int as created, sum(still_open)::int as still_open, sum(duplicates)::int as duplicates,
             sum(closed)::int as closed, sum(acknowledged)::int as acknowledged,
             sum(completed_with_due)::int as completed_with_due, sum(completed_within_due)::int as completed_within_due,
             sum(went_overdue)::int as went_overdue, sum(public_notes)::int as public_notes, sum(from_template)::int as from_template
      from fact group by ${key}),
    close_histogram as (${histogram(sql`close_s`, key)}),
    ack_histogram as (${histogram(sql`ack_s`, key)})
    insert into report_daily (jurisdiction_id, service_id, day, grain, department_id, channel, area, public, created, created_channels, still_open, duplicates,
                              closed, close_seconds, close_counts, acknowledged, ack_seconds, ack_counts,
                              completed_with_due, completed_within_due, went_overdue, public_notes, from_template)
    select t.jurisdiction_id, t.service_id, t.day, 'full', t.department_id, t.channel, t.area, t.public, t.created,
           case when t.created > 0 then jsonb_build_object(t.channel, t.created) else '{}' end, t.still_open, t.duplicates,
           t.closed, coalesce(c.seconds, '{}'), coalesce(c.counts, '{}'), t.acknowledged, coalesce(a.seconds, '{}'), coalesce(a.counts, '{}'),
           t.completed_with_due, t.completed_within_due, t.went_overdue, t.public_notes, t.from_template
    from totals t
    left join close_histogram c using (${key})
    left join ack_histogram a using (${key})`
}

/** A cell's durations as two parallel arrays: the distinct rounded values ascending, and how many of each. */
function histogram(duration: SQL, key: SQL): SQL {
  return sql`select ${key}, array_agg(value order by value) as seconds, array_agg(n order by value) as counts
    from (select ${key}, ${duration} as value, count(*)::int as n from fact where ${duration} is not null group by ${key}, ${duration}) v
    group by ${key}`
}
