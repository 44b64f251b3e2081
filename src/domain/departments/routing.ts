/**
 * Routing: which departments a new request goes to. A service's routes either carry an area
 * (a ward, a district) or none (the defaults); a request goes to every department whose area
 * covers its location, or, when none does (or the request has no point), to the defaults.
 */
import { type SQL, sql } from 'drizzle-orm'

/**
 * The departments a request for `serviceId` at `point` (a geography, or null for a request
 * without a location) goes to, as a query of (id, name, area_name) in department id order;
 * `area_name` is the area whose route chose the department (the first by name when several
 * did), null for a default route — reports count work by it. A fragment, not
 * a call: submitting a request writes it into the statement that inserts the request
 * (requests/submit-request.ts), so routing costs no round trip of its own.
 */
export function routedDepartments(serviceId: number, point: SQL): SQL {
  return sql`select d.id, d.name, chosen.area_name from departments d
    join (
      with candidate as (
        select r.department_id, r.area is not null as by_area, r.area_name
        from service_routes r
        where r.service_id = ${serviceId}::bigint
          and (r.area is null or (${point} is not null and ST_Covers(r.area, ${point}))))
      select department_id, min(area_name) as area_name from candidate
      where by_area or not exists (select 1 from candidate where by_area)
      group by department_id) chosen on chosen.department_id = d.id
    order by d.id`
}
