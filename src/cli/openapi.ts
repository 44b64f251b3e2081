import { fileURLToPath } from 'node:url'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'
import type { Database } from '../db/database.js'

export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi/openapi.json', import.meta.url))

/** Documents the routes without a database: generation must not depend on any data. */
const noDatabase: Database = new Proxy({} as Database, {
  get(_target, property) {
    throw new Error(`OpenAPI generation touched the database (${String(property)})`)
  },
})

export async function renderOpenApiDocument(): Promise<string> {
  // A throwaway secrets key, so generating the document never writes one under DATA_DIR.
  const config = loadConfig({ LOG_LEVEL: 'silent', SECRETS_KEY: Buffer.alloc(32).toString('base64') })
  const app = await buildApp({ config, database: noDatabase })
  try {
    await app.ready()
    return `${JSON.stringify(app.swagger(), null, 2)}\n`
  } finally {
    await app.close()
  }
}
