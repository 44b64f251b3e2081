/**
 * Shared by the duplicates-at-intake tests: points at a known distance from another (computed
 * by PostGIS on the spheroid and checked with ST_Distance, the measure the search uses), and
 * far-apart spots so each scenario has a neighbourhood of its own.
 */
import { sql } from 'drizzle-orm'
import type { DepartmentHarness } from '../departments/fixtures/harness.js'

export interface Point {
  lat: string
  long: string
}

/** Spot `n` of the test city: 2 km apart along a line, so no scenario's requests reach another's. */
export const spot = (n: number): Point => ({ lat: String(41.8 + n * 0.02), long: '-87.63' })

/**
 * The point `metres` from `from` towards `azimuthDegrees` (0 = north), and its distance back as
 * ST_Distance measures it: callers assert that before relying on it.
 */
export async function pointAt(h: DepartmentHarness, from: Point, metres: number, azimuthDegrees: number): Promise<Point & { distance: number }> {
  const origin = sql`ST_SetSRID(ST_MakePoint(${Number(from.long)}::float8, ${Number(from.lat)}::float8), 4326)::geography`
  const [row] = await h.rows<{ lat: number; long: number; distance: number }>(
    sql`with p as (select ST_Project(${origin}, ${metres}::float8, radians(${azimuthDegrees}::float8)) as g)
        select ST_Y(g::geometry) as lat, ST_X(g::geometry) as long, ST_Distance(g, ${origin}) as distance from p`,
  )
  return { lat: String(row!.lat), long: String(row!.long), distance: Number(row!.distance) }
}

/** Where the request's stored point is from `from`, in metres (ST_Distance on geography). */
export async function distanceOf(h: DepartmentHarness, serviceRequestId: string, from: Point): Promise<number> {
  const [row] = await h.rows<{ d: number }>(
    sql`select ST_Distance(location, ST_SetSRID(ST_MakePoint(${Number(from.long)}::float8, ${Number(from.lat)}::float8), 4326)::geography) as d
        from service_requests where public_id = ${serviceRequestId}`,
  )
  return Number(row!.d)
}

export interface PostAnswer {
  service_request_id?: string
  token?: string
  service_notice: string | null
  account_id: string | null
  possible_duplicates?: { service_request_id: string; distance_m: number | null; requested_datetime: string }[]
}

/** POST requests.json (with `?extensions=true` when asked) at `at`; the one answer. */
export async function postAt(h: DepartmentHarness, serviceCode: string, at: Point | null, options: { extensions?: boolean; fields?: Record<string, string> } = {}) {
  const res = await h.app.inject({
    method: 'POST',
    url: `/open311/v2/requests.json${options.extensions ? '?extensions=true' : ''}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      api_key: h.citizen.key,
      service_code: serviceCode,
      description: `a ${serviceCode} report`,
      ...(at ? { lat: at.lat, long: at.long } : { address_string: '12 Elm St' }),
      ...options.fields,
    }).toString(),
  })
  if (res.statusCode !== 200) throw new Error(`POST ${serviceCode}: ${res.statusCode} ${res.body}`)
  return (res.json() as PostAnswer[])[0]!
}

/** Every outbox event about the request, whatever work order it names. */
export async function eventsAbout(h: DepartmentHarness, serviceRequestId: string) {
  return h.rows<{ event_type: string; work_order_id: number }>(
    sql`select event_type, work_order_id from outbox where payload -> 'data' -> 'service_request' ->> 'service_request_id' = ${serviceRequestId} order by id`,
  )
}
