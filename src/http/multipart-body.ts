/**
 * multipart/form-data bodies, parsed with @fastify/busboy into the same flat fields as an
 * urlencoded form. The whole body, however it is framed (Content-Length or chunked), is held
 * to the body limit: reading stops at the first byte over it and the answer is 413, with the
 * connection closed so the rest is never read. A body busboy cannot parse (no closing
 * boundary, a boundary other than the header's) is a 400, never a 500. File parts are refused
 * at once, without reading them.
 */
import type { Readable } from 'node:stream'
import { Busboy, type BusboyHeaders, type BusboyInstance } from '@fastify/busboy'
import type { FastifyContentTypeParser } from 'fastify'
import { badRequest, Open311Error } from '../open311/errors.js'

/** Field counts well above any real report (a service has at most a few dozen attributes). */
const MAX_FIELDS = 500

const fileUploadRefused = (field: string) =>
  badRequest(`${field}: file uploads are not accepted; host the photo and send its address as media_url`)

export const bodyTooLarge = () => new Open311Error(413, 'request body is too large')

export function multipartBodyParser(bodyLimit: number): FastifyContentTypeParser {
  return (request, payload, done) => {
    readMultipart(request.headers, payload as Readable, bodyLimit).then(
      (fields) => done(null, fields),
      (err: Error) => done(err, undefined),
    )
  }
}

function readMultipart(headers: Record<string, string | string[] | undefined>, payload: Readable, bodyLimit: number) {
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
        limits: { fields: MAX_FIELDS, fieldSize: bodyLimit, parts: MAX_FIELDS, fieldNameSize: 1000 },
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
    parser.on('file', (name: string, file: Readable) => {
      file.resume()
      finish(fileUploadRefused(name))
    })
    parser.on('partsLimit', () => finish(bodyTooLarge()))
    parser.on('fieldsLimit', () => finish(bodyTooLarge()))
    parser.on('error', (err: Error) => finish(badRequest(`body: not a readable multipart/form-data body (${err.message})`)))
    parser.on('finish', () => finish())

    let received = 0
    const onData = (chunk: Buffer) => {
      received += chunk.length
      if (received > bodyLimit) return finish(bodyTooLarge())
      parser.write(chunk)
    }
    payload.on('data', onData)
    payload.on('end', () => {
      if (!settled) parser.end()
    })
    // The client went away mid-body: a client error (400), never mistaken for a database outage.
    payload.on('error', () => finish(badRequest('body: the upload was interrupted')))
  })
}
