import type { Database } from '../../src/db/database.js'

/**
 * Closes a test app's database under it, so every later query fails. The test helper's
 * teardown closes the database again, and a second close() rejects on the embedded backend
 * ("PGlite is closed"), so close() is made idempotent first.
 */
export async function closeDatabaseUnderApp(database: Database): Promise<void> {
  const close = database.close.bind(database)
  let closing: Promise<void> | undefined
  database.close = () => (closing ??= close())
  await database.close()
}
