import type { FastifyReply } from 'fastify'
import { CONTENT_TYPES, type Format, renderXml } from '../open311/spark.js'

/**
 * Sends an Open311 answer: JSON goes through the route's response schema; XML is rendered
 * from the same value under `root` with the spec's element names.
 */
export function sendOpen311(reply: FastifyReply, format: Format, root: string, value: unknown) {
  reply.type(CONTENT_TYPES[format])
  return reply.send(format === 'xml' ? renderXml(root, value) : value)
}
