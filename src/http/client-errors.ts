/**
 * Requests that Node's HTTP parser refuses — a malformed request line or header, headers over
 * the size limit, a request that took too long to arrive — never reach Fastify's error
 * handler. Fastify answers them with its own JSON shape; this answers them in the Open311
 * envelope: in XML when the bytes Node hands over hold a request line asking for .xml (a
 * malformed header usually; a timeout never), otherwise JSON.
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import { renderErrors } from '../open311/errors.js'
import { CONTENT_TYPES, formatOfUrl } from '../open311/spark.js'

const REQUEST_LINE = /^[A-Z]+ (\S+) HTTP\/\d/

function describe(error: { code?: string }): { status: number; description: string } {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, description: 'the request took too long to arrive' }
  if (error.code === 'HPE_HEADER_OVERFLOW') return { status: 431, description: 'the request headers are too large' }
  return { status: 400, description: 'malformed HTTP request' }
}

/** Fastify calls it with the instance as `this`. */
export const clientErrorHandler: NonNullable<FastifyServerOptions['clientErrorHandler']> = function (this: unknown, error, socket: Socket) {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const { status, description } = describe(error)
  // Only the code: the error carries the raw bytes received (query string, Authorization).
  ;(this as { log?: FastifyBaseLogger }).log?.debug({ code: error.code, bytesParsed: error.bytesParsed }, 'client error')
  // A pipelined request may already be half-answered on this socket: nothing more can be said.
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && !answering?.headersSent) {
    // What Node had read of the request when it gave up: a Buffer, whatever the type says.
    const received: unknown = error.rawPacket
    const url = REQUEST_LINE.exec(Buffer.isBuffer(received) ? received.toString('latin1', 0, 2048) : '')?.[1]
    const format = url ? formatOfUrl(url) : 'json'
    const body = Buffer.from(renderErrors(format, [{ code: status, description }]))
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${CONTENT_TYPES[format]}\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    )
    socket.write(body)
  }
  socket.destroy(error)
}
