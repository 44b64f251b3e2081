/**
 * The baseline: a bare Fastify route answering fixed bytes — the body and the headers our
 * services.json sends — to show what our stack adds.
 */
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

const body = readFileSync(process.env.BARE_BODY_FILE!)
const headers = JSON.parse(readFileSync(process.env.BARE_HEADERS_FILE!, 'utf8')) as Record<string, string>
const app = Fastify({ logger: false })
app.get('/services.json', async (_request, reply) => reply.headers(headers).send(body))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.stdout.write('ready\n')
