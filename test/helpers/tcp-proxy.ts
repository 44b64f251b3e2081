/**
 * A TCP proxy on 127.0.0.1 in front of the test PostgreSQL, so a test can take the database
 * away from the app for real — connections refused, open ones cut — and bring it back, without
 * touching the server other tests share.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  /** A connection string like `databaseUrl`, pointing at the proxy. */
  url: string
  /** Refuse new connections and cut the open ones (the database "goes down"). */
  stop(): Promise<void>
  /** Accept connections again, on the same port. */
  start(): Promise<void>
  close(): Promise<void>
}

export async function startTcpProxy(databaseUrl: string): Promise<TcpProxy> {
  const target = new URL(databaseUrl)
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer((client) => {
        const upstream = connect(Number(target.port || 5432), target.hostname)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => {})
        }
        client.pipe(upstream).pipe(client)
        client.on('close', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
      })
      next.once('error', reject)
      next.listen(port, '127.0.0.1', () => {
        port = (next.address() as { port: number }).port
        server = next
        resolve()
      })
    })

  const stop = async () => {
    const current = server
    server = undefined
    for (const s of sockets) s.destroy()
    // Stops listening at once (new connections are refused); not waiting for the close callback,
    // which also waits for connections a client may still be opening through it.
    current?.close()
    current?.unref()
  }

  await listen()
  const url = new URL(databaseUrl)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return { url: url.toString(), stop, start: listen, close: stop }
}
