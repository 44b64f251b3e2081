/**
 * Where photos live: the `media` table, one row per photo with its variants' bytes. Written as
 * a step of the statement that creates their request (submit-request.ts), so a request is never
 * without the photos its media_urls name, nor a photo without its request; read one variant at
 * a time, for whoever may see it.
 */
import { type SQL, sql } from 'drizzle-orm'
import { type Db, preparedRows } from '../../db/database.js'
import { TOKEN_ACCEPTED } from '../requests/find-requests.js'
import { generalised, type Reader } from '../requests/sensitive-location.js'
import type { PhotoVariant, PreparedPhoto } from './photos.js'

/**
 * Who asks for a photo: the public, an operator (an admin key: every photo, withdrawn requests'
 * too, to review them), or a department (its key: the photos of the requests it has work
 * orders for, which its `work_order.created` events link to, sensitive services' included).
 */
/** A department sees its work orders' photos; an operator of some jurisdictions, theirs as an operator and the rest as the public. */
export type PhotoReader = Reader | { departmentId: number } | { operatorOf: string[] }

/** Constant column names, never input. */
const BYTES_COLUMN: Record<PhotoVariant, string> = { full: 'full_bytes', thumb: 'thumb_bytes' }

/**
 * The insert of `photos` for the request the step `request` returns, in upload order (position
 * 1 first: the request's first media_url). Its text depends only on how many photos there are.
 */
export function photoInsert(photos: PreparedPhoto[], request: SQL): SQL {
  const rows = photos.map(
    ({ publicId, sourceFormat, variants: { full, thumb } }, index) =>
      sql`(${publicId}::text, ${index + 1}::int, ${sourceFormat}::text, ${full.bytes}::bytea, ${full.width}::int, ${full.height}::int,
           ${thumb.bytes}::bytea, ${thumb.width}::int, ${thumb.height}::int)`,
  )
  return sql`insert into media (public_id, request_id, position, source_format, full_bytes, full_width, full_height,
                               thumb_bytes, thumb_width, thumb_height)
    select p.public_id, r.id, p.position, p.source_format, p.full_bytes, p.full_width, p.full_height,
           p.thumb_bytes, p.thumb_width, p.thumb_height
    from ${request} r
    cross join (values ${sql.join(rows, sql`, `)})
      as p(public_id, position, source_format, full_bytes, full_width, full_height, thumb_bytes, thumb_width, thumb_height)`
}

/** SQL: whether `reader` may see the photos of request `sr`. */
function mayView(reader: PhotoReader): SQL {
  if (reader === 'operator') return sql`true`
  if (typeof reader === 'object' && 'departmentId' in reader) {
    return sql`exists (select 1 from work_orders wo where wo.request_id = sr.id and wo.department_id = ${reader.departmentId}::bigint)`
  }
  // What the GeoReport reads show: public requests, batch ones once accepted, and no media of
  // sensitive services (sensitive-location.ts). A withdrawn request's photos go with it, at once.
  const shownToPublic = sql`sr.is_public and ${TOKEN_ACCEPTED} and not ${sql.raw(generalised('public', 'sr'))}`
  if (typeof reader === 'object') return sql`(sr.jurisdiction_id = any(${sql.param(reader.operatorOf)}::text[]) or (${shownToPublic}))`
  return shownToPublic
}

/**
 * One variant of a photo, when it exists and `reader` may see it; null otherwise (absent and
 * hidden look the same). `withBytes` false answers only whether it may be shown: a conditional
 * GET whose ETag matches needs no bytes, but still the check, so a withdrawn photo is a 404.
 */
export async function findShownPhoto(
  db: Db,
  { publicId, variant, reader, withBytes }: { publicId: string; variant: PhotoVariant; reader: PhotoReader; withBytes: boolean },
): Promise<{ bytes: Buffer | null } | null> {
  const bytes = withBytes ? sql.raw(`m.${BYTES_COLUMN[variant]}`) : sql`null::bytea`
  const [row] = await preparedRows<{ bytes: Uint8Array | null }>(
    db,
    sql`select ${bytes} as bytes
        from media m join service_requests sr on sr.id = m.request_id
        where m.public_id = ${publicId} and ${mayView(reader)}`,
  )
  if (!row) return null
  // pg gives a Buffer, PGlite a Uint8Array: the same bytes, without a copy.
  return { bytes: row.bytes && Buffer.from(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength) }
}
