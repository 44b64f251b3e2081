/**
 * multipart/form-data bodies, parsed with @fastify/busboy into the same flat fields as an
 * urlencoded form. The body, however it is framed (Content-Length or chunked), is held to
 * its limits as it streams: reading stops at the first byte over one and the answer is 413,
 * with the connection closed so the rest is never read. A body busboy cannot parse (no closing
 * boundary, a boundary other than the header's) is a 400, never a 500. File parts are read
 * only where a route takes them (`files`: POST requests' photos, each held to its own limit on
 * top of the text's, and kept as bytes in `request.uploads` for the route to decode); anywhere
 * else, and under any other name, they are refused at once, without reading them.
 */
import type { Readable } from 'node:stream'
import { Busboy, type BusboyHeaders, type BusboyInstance } from '@fastify/busboy'
import type { FastifyContentTypeParser, FastifyRequest } from 'fastify'
import { badRequest, Open311Error } from '../open311/errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The file parts of a multipart body, on routes that take them (see MultipartLimits.files). */
    uploads?: Upload[]
  }
}

export interface Upload {
  field: string
  bytes: Buffer
}

export interface MultipartLimits {
  /** Everything but the file parts' contents: text fields and framing (BODY_LIMIT_BYTES). */
  textLimit: number
  /**
   * The file parts this route takes: their field name, how large each may be, how many, and
   * `admit`, asked (with the fields read so far) before the first file's bytes are read: a 403
   * without reading them when it says no.
   */
  files?: { field: string; maxBytes: number; maxFiles: number; admit: (fieldsSoFar: Record<string, string | string[]>) => Promise<boolean> }
}

/** The whole body's limit: the text's, and each file's on top (what a Content-Length is held to). */
export const wholeBodyLimit = ({ textLimit, files }: MultipartLimits) => textLimit + (files ? files.maxFiles * files.maxBytes : 0)

/** Field counts well above any real report (a service has at most a few dozen attributes). */
const MAX_FIELDS = 500

const megabytes = (bytes: number) => `${Math.round((bytes / 1048576) * 10) / 10} MB`

const fileUploadRefused = (field: string, files?: MultipartLimits['files']) =>
  badRequest(
    files
      ? `${field}: files are accepted only as ${files.field} (photos)`
      : `${field}: file uploads are not accepted; host the photo and send its address as media_url`,
  )

export const bodyTooLarge = () => new Open311Error(413, 'request body is too large')

/** `limitsOf` tells, for each request, its limits and whether its route takes files. */
export function multipartBodyParser(limitsOf: (request: FastifyRequest) => MultipartLimits): FastifyContentTypeParser {
  return (request, payload, done) => {
    const uploads: Upload[] = []
    readMultipart(request.headers, payload as Readable, limitsOf(request), uploads).then(
      (fields) => {
        if (uploads.length > 0) request.uploads = uploads
        done(null, fields)
      },
      (err: Error) => done(err, undefined),
    )
  }
}

function readMultipart(headers: Record<string, string | string[] | undefined>, payload: Readable, limits: MultipartLimits, uploads: Upload[]) {
  const { textLimit, files } = limits
  const bodyLimit = wholeBodyLimit(limits)
  return new Promise<Record<string, string | string[]>>((resolve, reject) => {
    // Null prototype: a field named __proto__ is an ordinary field.
    const fields: Record<string, string | string[]> = Object.create(null)
    let settled = false
    const finish = (err?: Error) => {
      if (settled) return
      settled = true
      payload.off('data', onData)
      if (err) {
        // Stop reading: the answer goes out before the body ends, so the connection closes (see sendErrors).
        payload.pause()
        reject(err)
      } else resolve(fields)
    }

    let parser: BusboyInstance
    try {
      parser = new Busboy({
        headers: headers as BusboyHeaders,
        limits: {
          fields: MAX_FIELDS,
          fieldSize: textLimit,
          parts: MAX_FIELDS,
          fieldNameSize: 1000,
          // One more than allowed, so that a request with too many is told so rather than cut short.
          ...(files ? { files: files.maxFiles + 1, fileSize: files.maxBytes } : {}),
        },
      })
    } catch (err) {
      // No boundary in Content-Type, or a Content-Type busboy does not know.
      reject(badRequest(`body: not a readable multipart/form-data body (${(err as Error).message})`))
      return
    }
    parser.on('field', (name: string, value: string) => {
      const existing = fields[name]
      if (existing === undefined) fields[name] = value
      else if (Array.isArray(existing)) existing.push(value)
      else fields[name] = [existing, value]
    })
    // While a caller is being admitted, the body waits: nothing more is read or buffered.
    const hold = (paused: boolean) => (paused ? payload.pause() : settled || payload.resume())
    const photos = files ? readFileParts(parser, files, { fields, uploads, hold }, finish) : undefined
    if (!photos) {
      parser.on('file', (name: string, file: Readable) => {
        file.resume()
        finish(fileUploadRefused(name))
      })
    }
    parser.on('partsLimit', () => finish(bodyTooLarge()))
    parser.on('fieldsLimit', () => finish(bodyTooLarge()))
    parser.on('error', (err: Error) => finish(badRequest(`body: not a readable multipart/form-data body (${err.message})`)))
    parser.on('finish', () => (photos ? photos.whenRead(finish) : finish()))

    let received = 0
    const onData = (chunk: Buffer) => {
      received += chunk.length
      if (received > bodyLimit) return finish(bodyTooLarge())
      parser.write(chunk)
      // Text is held to its own limit as it streams (busboy only truncates a long field), so a
      // huge field stops the reading at BODY_LIMIT_BYTES, photos or not.
      // Bytes busboy holds unparsed (while a file stream drains) are neither yet.
      if (received - parser.writableLength - (photos?.bytesInFiles() ?? 0) > textLimit) finish(bodyTooLarge())
    }
    payload.on('data', onData)
    payload.on('end', () => {
      if (!settled) parser.end()
    })
    // The client went away mid-body: a client error (400), never mistaken for a database outage.
    payload.on('error', () => finish(badRequest('body: the upload was interrupted')))
  })
}

/**
 * The file parts of a route that takes them: each kept whole in memory (a photo is decoded from
 * all of its bytes anyway) up to `maxBytes`, at most `maxFiles` of them, under `field` only.
 */
function readFileParts(
  parser: BusboyInstance,
  files: NonNullable<MultipartLimits['files']>,
  { fields, uploads, hold }: { fields: Record<string, string | string[]>; uploads: Upload[]; hold: (paused: boolean) => void },
  finish: (err?: Error) => void,
) {
  const tooMany = () => badRequest(`${files.field}: at most ${files.maxFiles} photos per request`)
  const reading = new Set<Readable>()
  let consumed = 0
  let done: (() => void) | undefined
  let admission: Promise<boolean> | undefined
  parser.on('file', (name: string, file: Readable & { truncated?: boolean }) => {
    if (name !== files.field) {
      file.resume()
      return finish(fileUploadRefused(name, files))
    }
    if (uploads.length + reading.size >= files.maxFiles) {
      file.resume()
      return finish(tooMany())
    }
    reading.add(file)
    // At once, not once admitted: busboy says a file is over its limit as it parses, whoever reads.
    file.on('limit', () => finish(new Open311Error(413, `${files.field}: a photo may be at most ${megabytes(files.maxBytes)}`)))
    file.pause()
    if (!admission) {
      hold(true)
      admission = files.admit(fields).then(
        (admitted) => (hold(false), admitted),
        () => false,
      )
    }
    void admission.then((admitted) => {
      if (admitted) return readFile(file, name)
      file.resume()
      finish(
        new Open311Error(
          403,
          `${files.field}: photos need a valid API key with the requests:write scope first: as Authorization: Bearer, ` +
            '?api_key= or an api_key field before the photos',
        ),
      )
    })
  })
  const readFile = (file: Readable & { truncated?: boolean }, name: string) => {
    const chunks: Buffer[] = []
    file.on('data', (chunk: Buffer) => {
      consumed += chunk.length
      chunks.push(chunk)
    })
    file.on('end', () => {
      reading.delete(file)
      const bytes = Buffer.concat(chunks)
      // A form's empty file input arrives as a part with no bytes: absent, like an empty field.
      if (bytes.length > 0 && !file.truncated) uploads.push({ field: name, bytes })
      if (reading.size === 0) done?.()
    })
    file.resume()
  }
  parser.on('filesLimit', () => finish(tooMany()))
  return {
    /** File bytes busboy has parsed out so far: those read, and those waiting in the file streams. */
    bytesInFiles: () => [...reading].reduce((sum, file) => sum + file.readableLength, consumed),
    /** busboy may finish before the last file stream has ended: the body is read once both have. */
    whenRead(then: () => void) {
      if (reading.size === 0) then()
      else done = then
    },
  }
}
