/**
 * LISTEN on PostgreSQL: one dedicated connection per process for every channel (LISTEN is
 * per session; a pooled client would lose it). When that connection is lost — a database
 * restart, pg_terminate_backend, a network cut — it reconnects with backoff and LISTENs again.
 * Notifications sent while it was away are lost, so after every reconnect each subscriber is
 * called once with an empty payload, to look for work it may have missed.
 */
import pg from 'pg'
import type { DatabaseLogger } from '../database.js'

const FIRST_RETRY_MS = 100
const MAX_RETRY_MS = 5_000

type Subscriber = (payload: string) => void

export interface PostgresListener {
  listen(channel: string, onNotify: Subscriber): Promise<() => Promise<void>>
  close(): Promise<void>
}

/** `logger` should leave outages to the tracker (quietDuringOutages): a restart would otherwise log every retry. */
export function createPostgresListener(options: { databaseUrl: string; logger: DatabaseLogger }): PostgresListener {
  const subscribers = new Map<string, Set<Subscriber>>()
  let client: pg.Client | undefined
  let connecting: Promise<pg.Client> | undefined
  let connectedBefore = false
  let retryTimer: NodeJS.Timeout | undefined
  let retryMs = FIRST_RETRY_MS
  let closed = false

  const escape = (channel: string) => pg.escapeIdentifier(channel)

  /** One connection at a time, LISTENing on every channel subscribed so far; a reconnection also wakes every subscriber. */
  const connect = (): Promise<pg.Client> => {
    connecting ??= (async () => {
      // A connect timeout and TCP keepalive: a host that drops packets fails the attempt (and the
      // retry follows) instead of hanging it, and a silently dead connection is noticed.
      const next = new pg.Client({
        connectionString: options.databaseUrl,
        application_name: 'open311-server listen',
        connectionTimeoutMillis: 10_000,
        keepAlive: true,
      })
      next.on('notification', (msg) => {
        for (const subscriber of subscribers.get(msg.channel) ?? []) subscriber(msg.payload ?? '')
      })
      // 'error' comes first on a lost connection, then 'end'; both lead to one reconnect.
      next.on('error', (err) => options.logger.warn({ err }, 'listen connection failed'))
      next.on('end', () => {
        if (client === next) client = undefined
        scheduleReconnect()
      })
      try {
        await next.connect()
        for (const channel of subscribers.keys()) await next.query(`LISTEN ${escape(channel)}`)
        if (closed) throw new Error('listener closed while connecting')
      } catch (err) {
        await next.end().catch(() => {})
        throw err
      }
      client = next
      retryMs = FIRST_RETRY_MS
      if (connectedBefore) {
        options.logger.info({ channels: [...subscribers.keys()] }, 'listening again after a lost connection')
        for (const set of subscribers.values()) for (const subscriber of set) subscriber('')
      }
      connectedBefore = true
      return next
    })().finally(() => (connecting = undefined))
    return connecting
  }

  const scheduleReconnect = () => {
    if (closed || retryTimer || client || subscribers.size === 0) return
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      if (closed || client) return
      connect().catch((err: unknown) => {
        options.logger.warn({ err }, 'listen connection could not be restored; retrying')
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS)
        scheduleReconnect()
      })
    }, retryMs)
    retryTimer.unref()
  }

  const unsubscribe = async (channel: string, set: Set<Subscriber>, onNotify: Subscriber) => {
    set.delete(onNotify)
    if (set.size > 0 || subscribers.get(channel) !== set) return
    subscribers.delete(channel)
    if (subscribers.size > 0) {
      await client?.query(`UNLISTEN ${escape(channel)}`).catch(() => {})
      return
    }
    const last = client
    client = undefined
    await last?.end().catch(() => {})
  }

  return {
    async listen(channel, onNotify) {
      let set = subscribers.get(channel)
      const first = !set
      if (!set) subscribers.set(channel, (set = new Set()))
      set.add(onNotify)
      try {
        // LISTEN twice is a no-op, so this holds whether or not a connection made meanwhile already listened.
        if (first) await (client ?? (await connect())).query(`LISTEN ${escape(channel)}`)
      } catch (err) {
        await unsubscribe(channel, set, onNotify)
        throw err
      }
      return () => unsubscribe(channel, set, onNotify)
    },
    async close() {
      closed = true
      clearTimeout(retryTimer)
      await connecting?.catch(() => {})
      const last = client
      client = undefined
      await last?.end().catch(() => {})
    },
  }
}
