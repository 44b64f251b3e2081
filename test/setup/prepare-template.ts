/** tap's `before` step: migrate the template once per run; test files clone it. */
import { prepareEmbeddedTemplate, preparePostgresTemplate, testDatabaseUrl } from '../helpers/template.js'

const started = performance.now()
const databaseUrl = testDatabaseUrl()
if (databaseUrl) await preparePostgresTemplate(databaseUrl)
else await prepareEmbeddedTemplate()
console.log(`# test template ready (${databaseUrl ? 'postgres' : 'embedded'}) in ${Math.round(performance.now() - started)} ms`)
