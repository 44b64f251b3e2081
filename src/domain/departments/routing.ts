/**
 * Routing: which departments a new request goes to. A service's routes either carry an area
 * (a ward, a district) or none (the defaults); a request goes to every department whose area
 * covers its location, or, when none does (or the request has no point), to the defaults.
 */
import { sql } from 'drizzle-orm'
import { type Db, preparedRows } from '../../db/database.js'

export interface RoutedDepartment {
  id: number
  name: string
}

/** The departments a request for `serviceId` at `location` (lat/long, or none) goes to, in department id order. */
export async function routeRequest(db: Db, serviceId: number, location: { lat?: number; long?: number }): Promise<RoutedDepartment[]> {
  // ST_MakePoint is strict: no lat/long gives a null point, so one statement text serves both cases.
  const point = sql`ST_SetSRID(ST_MakePoint(${location.long ?? null}::float8, ${location.lat ?? null}::float8), 4326)::geography`
  const rows = await preparedRows<{ id: number | string; name: string }>(
    db,
    sql`with candidate as (
          select distinct r.department_id, r.area is not null as by_area
          from service_routes r
          where r.service_id = ${serviceId}
            and (r.area is null or (${point} is not null and ST_Covers(r.area, ${point}))))
        select d.id, d.name from departments d
        where d.id in (select department_id from candidate
                       where by_area or not exists (select 1 from candidate where by_area))
        order by d.id`,
  )
  return rows.map((row) => ({ id: Number(row.id), name: row.name }))
}
