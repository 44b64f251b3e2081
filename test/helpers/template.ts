/**
 * The migrated template every test file clones its own database from:
 * - PostgreSQL (DATABASE_URL set): a database `<name>_template` next to the one in the URL,
 *   cloned with CREATE DATABASE … TEMPLATE (graphile-worker's isolation idiom);
 * - embedded: a PGlite data-dir dump, cached by a hash of migrations/, loaded per test file.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { MIGRATIONS_FOLDER } from '../../src/db/migrations-folder.js'

const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/open311-test', import.meta.url))

export const testDatabaseUrl = (): string | undefined => process.env.DATABASE_URL || undefined

/** Named by the migrations' hash, so concurrent runs share a template and a schema change gets a new one. */
export async function templateDatabaseName(databaseUrl: string): Promise<string> {
  const base = new URL(databaseUrl).pathname.replace(/^\//, '') || 'postgres'
  return `${base}_o311_tpl_${await migrationsHash()}`.toLowerCase()
}

/** A URL equal to `databaseUrl` but naming another database. */
export function withDatabaseName(databaseUrl: string, name: string): string {
  const url = new URL(databaseUrl)
  url.pathname = `/${name}`
  return url.toString()
}

async function migrationsHash(): Promise<string> {
  const hash = createHash('sha256')
  for (const file of (await readdir(MIGRATIONS_FOLDER, { recursive: true })).sort()) {
    if (file.endsWith('.sql') || file.endsWith('.json')) hash.update(file).update(await readFile(join(MIGRATIONS_FOLDER, file)))
  }
  return hash.digest('hex').slice(0, 16)
}

export async function embeddedTemplatePath(): Promise<string> {
  return join(CACHE_DIR, `pglite-template-${await migrationsHash()}.tar.gz`)
}

export async function prepareEmbeddedTemplate(): Promise<string> {
  const path = await embeddedTemplatePath()
  if (existsSync(path)) return path
  const { dumpEmbeddedTemplate } = await import('../../src/db/backends/embedded.js')
  const blob = await dumpEmbeddedTemplate({ logger: console })
  await mkdir(CACHE_DIR, { recursive: true })
  // Write then rename, so a concurrent reader never sees half a file.
  const partial = `${path}.${process.pid}.partial`
  await writeFile(partial, Buffer.from(await blob.arrayBuffer()))
  await rename(partial, path)
  return path
}

export async function preparePostgresTemplate(databaseUrl: string): Promise<string> {
  const template = await templateDatabaseName(databaseUrl)
  const building = `${template}_${process.pid}`
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  try {
    const exists = await admin.query('select 1 from pg_database where datname = $1', [template])
    if (exists.rowCount) return template
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(building)}`)
    const { openDatabase } = await import('../../src/db/database.js')
    const database = await openDatabase({ databaseUrl: withDatabaseName(databaseUrl, building), logger: console, poolSize: 1 })
    try {
      await database.migrate()
    } finally {
      await database.close()
    }
    // Built under a private name and renamed, so a concurrent run never clones half a template.
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(building)} RENAME TO ${pg.escapeIdentifier(template)}`).catch(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(building)}`)
    })
    return template
  } finally {
    await admin.end()
  }
}
