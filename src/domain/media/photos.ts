/**
 * Photos sent with a request: each upload is decoded (its bytes, never its name or declared
 * type, decide what it is), turned upright by its EXIF orientation, and re-encoded as JPEG
 * variants with no metadata at all. The upload itself is never kept: EXIF carries the
 * reporter's GPS position, the camera's make, model and serial number, the time taken, and
 * sometimes the owner's name — personal data a public photo must not hand out.
 */
import { randomBytes } from 'node:crypto'
import sharp, { type Metadata } from 'sharp'
import { type DomainProblem, invalid } from '../errors.js'

export const PHOTO_VARIANTS = ['full', 'thumb'] as const
export type PhotoVariant = (typeof PHOTO_VARIANTS)[number]

/** Longest side of each variant, in pixels; smaller photos are not enlarged. */
export const VARIANT_MAX_PX: Record<PhotoVariant, number> = { full: 2048, thumb: 320 }

/**
 * What a photo may be decoded from. HEIF covers AVIF; Apple's HEIC (HEVC inside HEIF) is
 * refused by name: sharp's prebuilt libvips carries no HEVC decoder (patents), and browsers and
 * iOS send JPEG when a photo is uploaded from a web form.
 */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'heif'])
const ACCEPTED_LIST = 'JPEG, PNG, WebP or AVIF'

/**
 * Pixels a photo may have before it is decoded (a 100-megapixel camera's full size): a small
 * file can declare a huge image (a decompression bomb); sharp refuses it before allocating.
 */
export const MAX_INPUT_PIXELS = 100_000_000

const TOO_MANY_PIXELS = `has more than ${MAX_INPUT_PIXELS / 1_000_000} megapixels`

const JPEG_QUALITY: Record<PhotoVariant, number> = { full: 82, thumb: 75 }

export interface PhotoImage {
  bytes: Buffer
  width: number
  height: number
}

export interface PreparedPhoto {
  /** The random id in the photo's URL: unguessable, so photos cannot be listed by counting. */
  publicId: string
  /** What was uploaded (sharp's name: jpeg, png, webp, heif). */
  sourceFormat: string
  variants: Record<PhotoVariant, PhotoImage>
}

/**
 * Decodes and re-encodes each upload, in order. Every upload that is not an accepted image is
 * named in one `invalid` error (`media (photo 2): …`), so nothing is stored unless all are.
 * One at a time: each decode already uses every core (libvips threads), and a few full-size
 * decodes side by side would hold a few hundred MB at once.
 */
export async function preparePhotos(field: string, uploads: Buffer[]): Promise<PreparedPhoto[]> {
  const photos: PreparedPhoto[] = []
  const problems: DomainProblem[] = []
  for (const [index, bytes] of uploads.entries()) {
    const name = uploads.length > 1 ? `${field} (photo ${index + 1})` : field
    const outcome = await preparePhoto(bytes)
    if (typeof outcome === 'string') problems.push({ description: `${name}: ${outcome}` })
    else photos.push(outcome)
  }
  if (problems.length > 0) throw invalid(problems)
  return photos
}

/** The prepared photo, or why the upload is refused. */
async function preparePhoto(bytes: Buffer): Promise<PreparedPhoto | string> {
  let header: Metadata
  try {
    // Reads the header only: which format, how large, before a pixel is decoded.
    header = await sharp(bytes).metadata()
  } catch {
    return `is not a ${ACCEPTED_LIST} image`
  }
  const { format, compression, width = 0, height = 0 } = header
  if (format === 'heif' && compression === 'hevc') return `HEIC photos are not accepted; send a ${ACCEPTED_LIST} image`
  if (!ACCEPTED_FORMATS.has(format)) return `is a ${format} file, not a ${ACCEPTED_LIST} image`
  if (width * height > MAX_INPUT_PIXELS) return TOO_MANY_PIXELS
  try {
    const full = await encode(bytes, 'full')
    // The thumbnail is made from the clean full variant: a smaller decode, and nothing of the upload.
    const thumb = await encode(full.bytes, 'thumb')
    return { publicId: randomBytes(16).toString('base64url'), sourceFormat: format, variants: { full, thumb } }
  } catch {
    // sharp's own words stay out: they name libvips internals, nothing the client can act on.
    return 'could not be decoded as an image (truncated or corrupt)'
  }
}

/**
 * Decodes all of `input` (a truncated or corrupt image fails here, not in a viewer later),
 * applies its EXIF orientation, fits it in the variant's box, drops transparency onto white
 * and writes a baseline JPEG in sRGB. sharp writes no metadata unless asked (no withMetadata,
 * keepExif or keepIccProfile here): EXIF, XMP, IPTC and the ICC profile are all left behind.
 */
async function encode(input: Buffer, variant: PhotoVariant): Promise<PhotoImage> {
  const size = VARIANT_MAX_PX[variant]
  const { data, info } = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
    .rotate()
    .resize({ width: size, height: size, fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .jpeg({ quality: JPEG_QUALITY[variant] })
    .toBuffer({ resolveWithObject: true })
  return { bytes: data, width: info.width, height: info.height }
}
