/**
 * Sensitive services (catalog `"privacy": "sensitive"`: noise at a home, an abandoned vehicle
 * with its plate): what the public sees of their requests. The location is generalised to the
 * centre of a ~111 m grid cell (SQL function `open311_generalised_location`, migration 0010),
 * and what could name a home or a person is withheld: address, address_id, description,
 * status notes, media, the notes of its history and free-text attribute answers. The
 * open-data feeds and the GeoReport reads take their SQL from here, so they agree; the rules
 * are in docs/open-data.md ("Sensitive categories").
 *
 * The SQL is constant text over a table alias (never built from input), as the feed's columns are.
 */
import type { AttributeDatatype } from '../../db/schema.js'

/**
 * Who reads: operators (a valid bearer key with the admin scope) see sensitive requests as they
 * are; everyone else is the public.
 */
export type Reader = 'public' | 'operator'

/** Answers of these datatypes are free text (a plate, a name): withheld. Lists, numbers and datetimes stay. */
export const FREE_TEXT_DATATYPES: readonly AttributeDatatype[] = ['string', 'text']

export const isFreeText = (datatype: AttributeDatatype) => FREE_TEXT_DATATYPES.includes(datatype)

/** SQL list of FREE_TEXT_DATATYPES, for `datatype in (…)`. */
export const FREE_TEXT_SQL = FREE_TEXT_DATATYPES.map((d) => `'${d}'`).join(', ')

/**
 * SQL: whether this reader sees the request `alias` (a row with `service_id`) generalised.
 * The uncorrelated array is an InitPlan: services are read once per statement, not per row,
 * and always as committed, so a service made sensitive is generalised from the next read on.
 */
export function generalised(reader: Reader, alias: string): string {
  return reader === 'operator' ? 'false' : `(${alias}.service_id = any(array(select id from services where privacy = 'sensitive')))`
}

/** SQL: `value` as this reader may see it, or `hidden` (null unless given) where generalised. */
export function unlessGeneralised(reader: Reader, alias: string, value: string, hidden = 'null'): string {
  return reader === 'operator' ? value : `case when ${generalised(reader, alias)} then ${hidden} else ${value} end`
}

/** SQL: the location (geography) this reader sees: the grid cell's centre where generalised. */
export function shownLocation(reader: Reader, alias: string): string {
  return unlessGeneralised(reader, alias, `${alias}.location`, `open311_generalised_location(${alias}.location)`)
}

/**
 * How far the stored point of a request can be from the cell centre it is shown at, and then
 * some: half a cell's diagonal is ~79 m, and at most ~125 m near the poles, where the last
 * cells of a row are up to twice as wide. Spatial filters first select stored points within
 * this much more (an index range on `location`), then keep those whose shown point matches.
 */
export const CELL_REACH_METRES = 150

/**
 * How far, in degrees, a shown point can be from the stored one inside the bbox's latitudes: a
 * row is 0.001° high and, while a row holds at least one cell of 0.001° of a great circle,
 * half a cell is at most 0.001°/cos(latitude) wide (beyond that, a whole row: 180°).
 */
export function cellReachDegrees(maxAbsLat: number): { lat: number; long: number } {
  const edge = Math.min(90, maxAbsLat + 0.001)
  const long = 0.001 / Math.cos((edge * Math.PI) / 180)
  return { lat: 0.001, long: Number.isFinite(long) && long < 180 ? long : 180 }
}
