/**
 * The port, taken before anything slow: the embedded database takes seconds to open (a first
 * start much longer) and a busy port found only at `listen` wasted them and had seeded the
 * demo for nothing. The reservation holds the port while the database opens, so nothing
 * takes it meanwhile, and is released just before Fastify listens on it; connections that
 * arrive in between are closed at once (the server is not ready).
 */
import { createServer, type Server } from 'node:net'

export interface PortReservation {
  release(): Promise<void>
}

/** Binds `host:port` now; rejects with Node's EADDRINUSE (or EACCES, EADDRNOTAVAIL) error when it cannot. Port 0 (any free port) reserves nothing. */
export async function reservePort(port: number, host: string): Promise<PortReservation> {
  if (port === 0) return { release: async () => {} }
  const server: Server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return {
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
