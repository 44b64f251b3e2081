/**
 * Every route, before validation: text PostgreSQL cannot store or that arrived broken (a NUL,
 * invalid UTF-8, an unpaired surrogate; see src/shared/text-safety.ts) in the path, the query
 * or the parsed body — form, multipart or JSON, keys and values — is a 400 naming the field,
 * before anything is read or written. Headers that are stored are checked where they are
 * read (Idempotency-Key allows printable ASCII only), and Node refuses NUL in headers itself.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { badRequest } from '../../open311/errors.js'
import { describeUnsafeText, findUnsafeText } from '../../shared/text-safety.js'

async function inputTextPlugin(app: FastifyInstance) {
  app.addHook('preValidation', async (request) => {
    const found = findUnsafeText(request.params) ?? findUnsafeText(request.query) ?? findUnsafeText(request.body)
    if (found) throw badRequest(describeUnsafeText(found))
  })
}

export default fp(inputTextPlugin, { name: 'input-text' })
