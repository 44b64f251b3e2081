/**
 * The columns of the open-data requests feed: one list that the CSV header and rows, the JSON
 * objects, the GeoJSON properties, the Data Package's Table Schema and docs/open-data.md all
 * come from. Modelled on what NYC and Chicago publish; public fields only: no reporter data
 * (it lives in another table), no description or photos (free text and pictures carry names,
 * faces and plates), and only the answers to attributes marked public.
 *
 * Each value is SQL over `sr` (the request), `s` (its service) and `parent` (the request it
 * duplicates). Requests of sensitive services are generalised (sensitive-location.ts): the
 * feeds are public, so always as the public sees them. The rows are rendered into CSV lines
 * and JSON text by PostgreSQL (feed-fields.ts).
 */
import { REQUEST_CHANNELS } from '../requests/channels.js'
import { FREE_TEXT_SQL, generalised, shownLocation, unlessGeneralised } from '../requests/sensitive-location.js'
import { type FeedField, jsonObject, LIST_SEPARATOR } from './feed-fields.js'

const withheld = (value: string) => unlessGeneralised('public', 'sr', value)
/** The point published: a grid cell's centre for sensitive services. */
const LOCATION = shownLocation('public', 'sr')

export const REQUEST_FIELDS: readonly FeedField[] = [
  { name: 'service_request_id', type: 'string', description: 'The request\'s id, as in GeoReport v2; stable for good. The primary key.', value: 'sr.public_id' },
  { name: 'service_code', type: 'string', description: 'The request type\'s code (GeoReport `service_code`).', value: 's.service_code' },
  { name: 'service_name', type: 'string', description: 'The request type\'s name at the time of the export.', value: 's.service_name' },
  { name: 'group', type: 'string', description: 'The request type\'s group in the catalog, if any.', value: "nullif(s.service_group, '')" },
  { name: 'status', type: 'string', description: '`open` or `closed`.', value: 'sr.status' },
  { name: 'detailed_status', type: 'string', description: 'Where the request stands: submitted, sent_to_department, accepted, scheduled, in_progress, on_hold, duplicate, completed, … (docs/open311.md).', value: 'sr.detailed_status' },
  {
    name: 'departments',
    type: 'list',
    description: `The departments responsible: those holding a work order for it that was not passed on to another (CSV: names separated by "${LIST_SEPARATOR}").`,
    value: `(select array_agg(distinct d.name order by d.name) from work_orders w join departments d on d.id = w.department_id
              where w.request_id = sr.id and w.state <> 'reassigned')`,
  },
  { name: 'channel', type: 'string', description: `How the request came in: ${REQUEST_CHANNELS.join(', ')}; empty when not known.`, value: 'sr.channel' },
  { name: 'requested_datetime', type: 'datetime', description: 'When it was submitted.', value: 'sr.requested_at' },
  { name: 'updated_datetime', type: 'datetime', description: 'When it last changed: the feed\'s order and the incremental harvest\'s `updated_after`.', value: 'sr.updated_at' },
  { name: 'closed_datetime', type: 'datetime', description: 'When it was closed; empty while open.', value: 'sr.closed_at' },
  { name: 'expected_datetime', type: 'datetime', description: 'When the work is expected to be done: the date a department gave, else the service-level due date; empty without either.', value: 'sr.expected_at' },
  { name: 'address', type: 'string', description: 'The address given or found for the location.', value: withheld('sr.address') },
  { name: 'zipcode', type: 'string', description: 'The postal code.', value: 'sr.zipcode' },
  { name: 'lat', type: 'number', description: 'Latitude (WGS 84); empty without a location.', value: `ST_Y((${LOCATION})::geometry)` },
  { name: 'long', type: 'number', description: 'Longitude (WGS 84); empty without a location.', value: `ST_X((${LOCATION})::geometry)` },
  {
    name: 'areas',
    type: 'list',
    description: `The named routing areas (wards, districts) the location falls in for this request type (CSV: separated by "${LIST_SEPARATOR}").`,
    value: `(select array_agg(distinct r.area_name order by r.area_name) from service_routes r
              where r.service_id = sr.service_id and r.area_name is not null and ST_Covers(r.area, ${LOCATION}))`,
  },
  { name: 'duplicate', type: 'boolean', description: 'Whether it was found to duplicate another request.', value: '(sr.parent_request_id is not null)' },
  { name: 'parent_service_request_id', type: 'string', description: 'The request it duplicates.', value: 'parent.public_id' },
  { name: 'status_notes', type: 'string', description: 'The public note on its current status.', value: withheld('sr.status_notes') },
  {
    name: 'attributes',
    type: 'object',
    description: 'Answers to the request type\'s public questions, by attribute code (CSV: one JSON object).',
    value: `(select coalesce(jsonb_object_agg(a.code, sr.attributes -> a.code), '{}'::jsonb) from service_attributes a
              where a.service_id = sr.service_id and a.is_public and a.variable and sr.attributes ? a.code
                and not (${generalised('public', 'sr')} and a.datatype in (${FREE_TEXT_SQL})))`,
  },
]

const POINT_FIELDS = new Set(['lat', 'long'])
const fieldValue = (fields: readonly FeedField[], name: string) => fields.find((f) => f.name === name)!.value

/** SQL for one RFC 7946 Feature: a Point in [long, lat], or a null geometry; the rest as properties. */
export const geojsonFeature = (fields: readonly FeedField[]) =>
  `json_build_object('type', 'Feature', 'id', sr.public_id,
     'geometry', case when sr.location is null then null
                      else json_build_object('type', 'Point', 'coordinates', json_build_array(${fieldValue(fields, 'long')}, ${fieldValue(fields, 'lat')})) end,
     'properties', ${jsonObject(fields.filter((f) => !POINT_FIELDS.has(f.name)))})`
