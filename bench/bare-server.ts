/** The baseline: a bare Fastify route answering fixed bytes, to show what our stack adds. */
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

const body = readFileSync(process.env.BARE_BODY_FILE!)
const app = Fastify({ logger: false })
app.get('/services.json', async (_request, reply) => reply.type('application/json; charset=utf-8').send(body))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.stdout.write('ready\n')
