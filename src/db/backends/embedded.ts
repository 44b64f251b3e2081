/**
 * The embedded default: PGlite (PostgreSQL compiled to WASM) with PostGIS, persisted under
 * DATA_DIR. PGlite is one connection; it runs one statement or transaction at a time and
 * queues the rest, so concurrent HTTP requests are serialised without any locking here.
 */
import { mkdir } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import { btree_gist } from '@electric-sql/pglite/contrib/btree_gist'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate } from 'drizzle-orm/pglite/migrator'
import type { Database, DatabaseOptions } from '../database.js'
import { MIGRATIONS_FOLDER } from '../migrations-folder.js'
import { trackOutages } from '../outages.js'
import * as schema from '../schema.js'
import { lockDataDir } from './data-dir-lock.js'
import { postgisCore } from './postgis-core.js'

// PostGIS without its raster and topology libraries, which every start would otherwise compile.
const EXTENSIONS = { postgis: postgisCore, btree_gist }

export async function openEmbedded(options: DatabaseOptions): Promise<Database> {
  let unlock = async () => {}
  if (options.dataDir) {
    await mkdir(options.dataDir, { recursive: true })
    unlock = await lockDataDir(options.dataDir)
  }
  let client: PGlite
  try {
    client = await PGlite.create({
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      extensions: EXTENSIONS,
    })
  } catch (err) {
    await unlock()
    throw err
  }
  const db = drizzle({ client, schema })
  const ping = async () => {
    await client.query('select 1')
  }
  // In-process, so never unreachable; kept for the same answer to the same errors as PostgreSQL's backend.
  const outages = trackOutages({ logger: options.logger, ping })
  let closing: Promise<void> | undefined

  return {
    db,
    outages,
    ping,
    async migrate() {
      await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })
    },
    async listen(channel, onNotify) {
      return client.listen(channel, onNotify)
    },
    poolStats: () => ({ max: 1, open: client.closed ? 0 : 1 }),
    close() {
      outages.stop()
      closing ??= (async () => {
        try {
          await client.close()
        } finally {
          await unlock()
        }
      })()
      return closing
    },
  }
}

/** A migrated embedded database as a tarball, to clone per test file instead of migrating each time. */
export async function dumpEmbeddedTemplate(options: DatabaseOptions): Promise<Blob> {
  const client = await PGlite.create({ extensions: EXTENSIONS })
  try {
    await migrate(drizzle({ client, schema }), { migrationsFolder: MIGRATIONS_FOLDER })
    return await client.dumpDataDir('none')
  } finally {
    await client.close()
  }
}
