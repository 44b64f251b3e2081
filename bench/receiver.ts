/** A loopback department receiver for the benchmark: answers 200 and reports each arrival on stdout. */
import { createServer } from 'node:http'

const server = createServer((request, response) => {
  let body = ''
  request.on('data', (chunk) => (body += chunk))
  request.on('end', () => {
    const receivedAt = Date.now()
    let requestId = ''
    try {
      requestId = JSON.parse(body).data?.service_request?.service_request_id ?? ''
    } catch {}
    process.stdout.write(`${request.headers['webhook-id']} ${requestId} ${receivedAt}\n`)
    response.end('ok')
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'))
