import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import pg from 'pg'
import { type Database, openDatabase } from '../../src/db/database.js'
import { embeddedTemplatePath, templateDatabaseName, testDatabaseUrl, withDatabaseName } from './template.js'

const quiet = { warn: () => {}, info: () => {}, error: () => {} }

export interface TestDatabase {
  database: Database
  /** The connection string of this test's own database (PostgreSQL backend only). */
  url?: string
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A fresh, migrated database for one test, cloned from the run's template and dropped after it. */
export async function createTestDatabase(t: Teardown): Promise<TestDatabase> {
  const databaseUrl = testDatabaseUrl()
  if (!databaseUrl) {
    const loadDataDir = new Blob([await readFile(await embeddedTemplatePath())])
    const database = await openDatabase({ loadDataDir, logger: quiet })
    t.teardown(() => database.close())
    return { database }
  }
  const name = `open311_test_${process.pid}_${randomBytes(4).toString('hex')}`
  await adminQuery(
    databaseUrl,
    `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(await templateDatabaseName(databaseUrl))}`,
  )
  const url = withDatabaseName(databaseUrl, name)
  const database = await openDatabase({ databaseUrl: url, logger: quiet, poolSize: 5 })
  t.teardown(async () => {
    await database.close().catch(() => {})
    await adminQuery(databaseUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
  })
  return { database, url }
}

async function adminQuery(databaseUrl: string, sql: string) {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/**
 * For tests that run the CLI or server as a child process on the embedded backend: a data
 * directory pre-loaded from the template, so the child skips the cold PostGIS set-up.
 */
export async function createEmbeddedDataDir(dataDir: string): Promise<void> {
  const loadDataDir = new Blob([await readFile(await embeddedTemplatePath())])
  const database = await openDatabase({ dataDir: `${dataDir}/pglite`, loadDataDir, logger: quiet })
  await database.close()
}
