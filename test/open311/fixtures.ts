/**
 * Known service requests for the demo jurisdiction, written straight into the database with SQL
 * (no API involved), so GET tests can compare answers with values fixed here.
 *
 * The spread: a cluster within 300 m of CENTER (downtown Chicago coordinates; the demo city has
 * no boundary), others 2–10 km away, one without a location, one non-public request, requested
 * over the last 200 days; plus "historical" requests at fixed instants (both sides of the 2025
 * DST changes in America/Chicago) for exact datetime strings.
 */
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../src/db/database.js'

export const DEMO_JURISDICTION = 'demo.open311.city'
export const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000
const MINUTE_MS = 60_000

export interface Point {
  lat: number
  long: number
}

/** Reference point of the cluster. */
export const CENTER: Point = { lat: 41.8781, long: -87.6298 }

const EARTH_RADIUS_M = 6_371_008.8

/** A point `north` metres north and `east` metres east of `from` (small offsets; spherical Earth). */
export function offsetPoint(from: Point, north: number, east: number): Point {
  const lat = from.lat + (north / EARTH_RADIUS_M) * (180 / Math.PI)
  const long = from.long + (east / (EARTH_RADIUS_M * Math.cos((from.lat * Math.PI) / 180))) * (180 / Math.PI)
  // Rounded to 7 decimals (~1 cm), as a client would send them.
  return { lat: Number(lat.toFixed(7)), long: Number(long.toFixed(7)) }
}

/** Great-circle distance in metres (haversine). */
export function haversineMeters(a: Point, b: Point): number {
  const rad = (d: number) => (d * Math.PI) / 180
  const dLat = rad(b.lat - a.lat)
  const dLong = rad(b.long - a.long)
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLong / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(h))
}

export interface UpdateFixture {
  at: Date
  status: 'open' | 'closed'
  detailedStatus: string
  description: string
  isPublic: boolean
  source: 'citizen' | 'operator' | 'department' | 'system'
  mediaUrls: string[]
  externalStatusCode: string | null
}

export interface RequestFixture {
  key: string
  serviceCode: string
  status: 'open' | 'closed'
  detailedStatus: string
  statusNotes: string | null
  description: string | null
  agencyResponsible: string | null
  serviceNotice: string | null
  requestedAt: Date
  updatedAt: Date
  expectedAt: Date | null
  closedAt: Date | null
  address: string | null
  addressId: string | null
  zipcode: string | null
  location: Point | null
  mediaUrls: string[]
  channel: string | null
  attributes: Record<string, string | string[]>
  /** Key of the request this one duplicates (must come earlier in the list). */
  parentKey: string | null
  isPublic: boolean
  updates: UpdateFixture[]
}

export interface InsertedUpdate extends UpdateFixture {
  updateId: string
}

export interface InsertedRequest extends Omit<RequestFixture, 'updates'> {
  id: number
  publicId: string
  serviceName: string
  updates: InsertedUpdate[]
}

type RequestInput = Partial<RequestFixture> & Pick<RequestFixture, 'key' | 'serviceCode' | 'requestedAt'>

const update = (at: Date, fields: Partial<UpdateFixture> = {}): UpdateFixture => ({
  at,
  status: 'open',
  detailedStatus: 'submitted',
  description: 'Request received',
  isPublic: true,
  source: 'citizen',
  mediaUrls: [],
  externalStatusCode: null,
  ...fields,
})

/**
 * Fills the defaults: a "submitted" history entry at requested_at, a closing entry at
 * closed_at, and updated_at = the latest history entry unless given.
 */
function request(input: RequestInput): RequestFixture {
  const status = input.status ?? 'open'
  const closedAt = status === 'closed' ? (input.closedAt ?? new Date(input.requestedAt.getTime() + 2 * DAY_MS)) : null
  const updates = input.updates ?? [
    update(input.requestedAt),
    ...(closedAt
      ? [update(closedAt, { status: 'closed', detailedStatus: input.detailedStatus ?? 'resolved', description: input.statusNotes ?? 'Closed', source: 'department' })]
      : []),
  ]
  const latest = new Date(Math.max(input.requestedAt.getTime(), ...updates.map((u) => u.at.getTime())))
  return {
    status,
    detailedStatus: status === 'closed' ? 'resolved' : 'submitted',
    statusNotes: null,
    description: null,
    agencyResponsible: null,
    serviceNotice: null,
    updatedAt: latest,
    expectedAt: null,
    address: null,
    addressId: null,
    zipcode: null,
    location: null,
    mediaUrls: [],
    channel: 'app',
    attributes: {},
    parentKey: null,
    isPublic: true,
    ...input,
    closedAt,
    updates,
  }
}

/** Whole minutes, so every instant survives second-precision output unchanged. */
export function fixtureNow(): Date {
  return new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS)
}

/** The fixture set, relative to `now` (use fixtureNow()). Parents come before their duplicates. */
export function demoFixtures(now: Date): RequestFixture[] {
  const ago = (days: number, hours = 0) => new Date(now.getTime() - days * DAY_MS - hours * HOUR_MS)
  const at = (iso: string) => new Date(iso)
  const near = (north: number, east: number) => offsetPoint(CENTER, north, east)

  return [
    // --- cluster: within 300 m of CENTER ---
    request({
      key: 'c4',
      serviceCode: 'pothole',
      status: 'closed',
      detailedStatus: 'resolved',
      statusNotes: 'Patched with cold mix',
      description: 'Deep pothole in the right lane, eastbound',
      requestedAt: ago(30, 5),
      closedAt: ago(27, 1),
      location: near(-250, -100),
      address: '100 S Wacker Dr',
      zipcode: '60606',
      attributes: { size: 'MEDIUM', lane: 'TRAVEL' },
      channel: 'phone',
    }),
    request({
      key: 'c1',
      serviceCode: 'pothole',
      status: 'open',
      detailedStatus: 'in_progress',
      description: 'Pothole in the bike lane, about 40 cm wide',
      agencyResponsible: 'Streets & Sanitation',
      serviceNotice: 'Inspected within 5 business days',
      requestedAt: ago(1, 2),
      expectedAt: ago(-6),
      location: near(40, 0),
      address: '233 S Wacker Dr',
      addressId: 'ADDR-1001',
      zipcode: '60606',
      mediaUrls: ['https://media.example/c1-a.jpg', 'https://media.example/c1-b.jpg'],
      attributes: { size: 'LARGE', depth_cm: '12', lane: 'BIKE' },
      updates: [
        update(ago(1, 2)),
        update(ago(0, 20), {
          detailedStatus: 'in_progress',
          description: 'Inspector assigned',
          source: 'department',
          externalStatusCode: 'INSP',
          mediaUrls: ['https://media.example/c1-inspection.jpg'],
        }),
      ],
    }),
    request({
      key: 'c2',
      serviceCode: 'graffiti',
      status: 'closed',
      statusNotes: 'Removed by crew 12',
      description: 'Tags on the wall and the sign by the bus stop',
      requestedAt: ago(5, 3),
      closedAt: ago(2, 6),
      location: near(-120, 90),
      address: '200 W Adams St',
      attributes: { surface: ['WALL', 'SIGN'], offensive: 'NO' },
      channel: 'web',
    }),
    request({
      key: 'c3',
      serviceCode: 'streetlight-out',
      status: 'open',
      detailedStatus: 'in_progress',
      statusNotes: 'Crew scheduled',
      requestedAt: ago(20, 4),
      location: near(200, -150),
      attributes: { pattern: 'FLICKER', pole_number: 'RL-04821' },
      updates: [
        update(ago(20, 4)),
        update(ago(19, 2), {
          detailedStatus: 'submitted',
          description: 'INTERNAL: caller is a repeat reporter, phone 555-0100',
          isPublic: false,
          source: 'operator',
        }),
        update(ago(18, 1), { detailedStatus: 'in_progress', description: 'Crew scheduled', source: 'department' }),
      ],
    }),
    request({
      key: 'c5',
      serviceCode: 'pothole',
      status: 'closed',
      detailedStatus: 'duplicate',
      statusNotes: 'Duplicate of an earlier report',
      requestedAt: ago(3, 7),
      closedAt: ago(3, 1),
      location: near(60, -200),
      attributes: { size: 'SMALL' },
      parentKey: 'c4',
    }),
    request({
      key: 'c6',
      serviceCode: 'abandoned-vehicle',
      status: 'open',
      description: 'Blue sedan, flat tyres, not moved for weeks',
      requestedAt: ago(120, 2),
      location: near(100, 100),
      attributes: {
        license_plate: 'ABC 1234 (IL)',
        make_model: 'Blue Honda Civic',
        first_seen: '2026-07-01T08:00:00-05:00',
        vehicle_condition: ['FLAT', 'EXPIRED'],
      },
    }),
    // --- 2–10 km away ---
    request({ key: 'f1', serviceCode: 'water-leak', requestedAt: ago(10, 1), location: near(2500, 0), attributes: { leak_location: 'HYDRANT', flow_rate: 'STREAM' } }),
    request({ key: 'f2', serviceCode: 'dead-animal', status: 'closed', requestedAt: ago(45, 6), location: near(0, 4000), statusNotes: 'Collected' }),
    request({ key: 'f3', serviceCode: 'sidewalk-damage', requestedAt: ago(60, 3), location: near(-6000, 0), zipcode: '60616' }),
    request({ key: 'f4', serviceCode: 'damaged-sign', status: 'closed', requestedAt: ago(89, 1), closedAt: ago(80), location: near(0, -8000) }),
    request({ key: 'f5', serviceCode: 'fallen-tree', requestedAt: ago(91, 1), location: near(7071, 7071) }),
    request({ key: 'f6', serviceCode: 'noise-complaint', status: 'closed', requestedAt: ago(150, 5), closedAt: ago(149), location: near(-3000, 3000) }),
    request({ key: 'f7', serviceCode: 'missed-collection', requestedAt: ago(199, 2), location: near(5000, -2000) }),
    // --- no location: an address-only report ---
    request({ key: 'n1', serviceCode: 'illegal-dumping', requestedAt: ago(15, 2), address: 'Alley behind 1200 S State St', addressId: 'ADDR-7781', zipcode: '60605' }),
    // --- not public: must never appear in a public answer ---
    request({
      key: 'p1',
      serviceCode: 'pothole',
      requestedAt: ago(2, 1),
      location: near(10, 10),
      description: 'PRIVATE report',
      isPublic: false,
      attributes: { size: 'SMALL' },
    }),
    // --- historical, at fixed instants ---
    request({
      key: 'h1',
      serviceCode: 'pothole',
      status: 'closed',
      statusNotes: 'Repaired',
      requestedAt: at('2025-01-15T12:00:00Z'),
      closedAt: at('2025-01-20T15:30:00Z'),
      location: offsetPoint(CENTER, 3000, -3000),
      attributes: { size: 'SMALL' },
    }),
    request({
      key: 'h2',
      serviceCode: 'streetlight-out',
      requestedAt: at('2025-07-15T12:00:00Z'),
      updatedAt: at('2025-07-16T01:02:03Z'),
      expectedAt: at('2025-07-20T17:00:00Z'),
      location: offsetPoint(CENTER, -2500, 1000),
      attributes: { pattern: 'OUT' },
    }),
    // 2025-03-09 02:00 CST → 03:00 CDT happens at 08:00Z.
    request({ key: 'h3', serviceCode: 'damaged-sign', requestedAt: at('2025-03-09T07:59:59Z'), updatedAt: at('2025-11-02T06:30:00Z') }),
    // 2025-11-02 02:00 CDT → 01:00 CST happens at 07:00Z: 01:30 local occurs twice.
    request({ key: 'h4', serviceCode: 'damaged-sign', requestedAt: at('2025-03-09T08:00:00Z'), updatedAt: at('2025-11-02T07:30:00Z') }),
  ]
}

/** Inserts the fixtures (in order) for `jurisdictionId`; returns them by key with their database ids. */
export async function insertFixtures(
  db: Db,
  fixtures: RequestFixture[],
  jurisdictionId = DEMO_JURISDICTION,
): Promise<Map<string, InsertedRequest>> {
  const inserted = new Map<string, InsertedRequest>()
  for (const f of fixtures) {
    const parentId = f.parentKey ? inserted.get(f.parentKey)?.id : null
    if (f.parentKey && parentId === undefined) throw new Error(`fixture ${f.key}: parent ${f.parentKey} must come first`)
    const location = f.location
      ? sql`ST_SetSRID(ST_MakePoint(${f.location.long}, ${f.location.lat}), 4326)::geography`
      : sql`null::geography`
    const ts = (d: Date | null) => (d ? sql`${d.toISOString()}::timestamptz` : sql`null::timestamptz`)
    const [row] = await queryRows<{ id: number | string; public_id: string; service_name: string }>(
      db,
      sql`insert into service_requests
            (jurisdiction_id, service_id, status, detailed_status, status_notes, agency_responsible, service_notice,
             description, requested_at, updated_at, expected_at, closed_at, address, address_id, zipcode, location,
             media_urls, attributes, channel, parent_request_id, is_public)
          select ${jurisdictionId}::text, s.id, ${f.status}::text, ${f.detailedStatus}::text, ${f.statusNotes}::text,
                 ${f.agencyResponsible}::text, ${f.serviceNotice}::text, ${f.description}::text,
                 ${ts(f.requestedAt)}, ${ts(f.updatedAt)}, ${ts(f.expectedAt)}, ${ts(f.closedAt)},
                 ${f.address}::text, ${f.addressId}::text, ${f.zipcode}::text, ${location},
                 array(select jsonb_array_elements_text(${JSON.stringify(f.mediaUrls)}::jsonb)),
                 ${JSON.stringify(f.attributes)}::jsonb, ${f.channel}::text, ${parentId ?? null}::bigint, ${f.isPublic}::boolean
          from services s where s.jurisdiction_id = ${jurisdictionId} and s.service_code = ${f.serviceCode}
          returning id, public_id,
            (select service_name from services where id = service_requests.service_id) as service_name`,
    )
    if (!row) throw new Error(`fixture ${f.key}: service ${f.serviceCode} not found in ${jurisdictionId}`)
    const id = Number(row.id)
    const updates: InsertedUpdate[] = []
    for (const u of f.updates) {
      const [written] = await queryRows<{ update_id: string }>(
        db,
        sql`insert into request_updates
              (request_id, status, detailed_status, description, is_public, media_urls, external_status_code, source, created_at, changed_at)
            values (${id}, ${u.status}, ${u.detailedStatus}, ${u.description}, ${u.isPublic},
                    array(select jsonb_array_elements_text(${JSON.stringify(u.mediaUrls)}::jsonb)),
                    ${u.externalStatusCode}, ${u.source}, ${ts(u.at)}, ${ts(u.at)})
            returning update_id`,
      )
      updates.push({ ...u, updateId: written!.update_id })
    }
    inserted.set(f.key, { ...f, id, publicId: row.public_id, serviceName: row.service_name, updates })
  }
  return inserted
}

/**
 * The America/Chicago offset at an instant from the US rule (DST from the second Sunday of March
 * 02:00 CST to the first Sunday of November 02:00 CDT) — independent of Intl and of src/.
 */
export function chicagoOffsetMinutes(date: Date): number {
  const year = date.getUTCFullYear()
  const nthSunday = (month: number, n: number) => {
    const first = new Date(Date.UTC(year, month, 1)).getUTCDay()
    return 1 + ((7 - first) % 7) + (n - 1) * 7
  }
  const dstStart = Date.UTC(year, 2, nthSunday(2, 2), 8) // 02:00 CST = 08:00Z
  const dstEnd = Date.UTC(year, 10, nthSunday(10, 1), 7) // 02:00 CDT = 07:00Z
  return date.getTime() >= dstStart && date.getTime() < dstEnd ? -300 : -360
}

/** The instant as the W3C string the server must emit for America/Chicago. */
export function chicagoW3c(date: Date): string {
  const offset = chicagoOffsetMinutes(date)
  const local = new Date(Math.floor(date.getTime() / 1000) * 1000 + offset * MINUTE_MS)
  const p = (n: number) => String(n).padStart(2, '0')
  const sign = offset < 0 ? '-' : '+'
  const abs = Math.abs(offset)
  return (
    `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())}` +
    `T${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())}` +
    `${sign}${p(Math.floor(abs / 60))}:${p(abs % 60)}`
  )
}

/** A UTC `…Z` string at second precision, as FixMyStreet sends them. */
export const utcZ = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z')
