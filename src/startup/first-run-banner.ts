/**
 * What the first start on an empty database hands over, as plain text on stderr at any log
 * level: where things are, and the demo's two keys, which exist nowhere else in readable form
 * (the database keeps hashes). Never logged: log lines are shipped and kept, these keys must not be.
 */
import type { DemoSeed } from '../domain/demo/seed-demo.js'

export interface BannerContext {
  baseUrl: string
  seed: DemoSeed
  /** How an operator runs the CLI here: `npm run cli --` in a checkout, `node dist/cli/main.js` when built. */
  cli: string
}

export function firstRunBanner({ baseUrl, seed, cli }: BannerContext): string {
  const rule = '─'.repeat(78)
  return [
    '',
    rule,
    `open311-server is running with the demo city (${seed.catalog.jurisdiction}, ${seed.catalog.created.length} request types)`,
    '',
    `  GeoReport v2 services  ${baseUrl}/open311/v2/services.json`,
    `  discovery              ${baseUrl}/open311/v2/discovery.json`,
    `  API docs (try it out)  ${baseUrl}/docs`,
    `  open data catalog      ${baseUrl}/open-data/v1/data.json`,
    `  every public request   ${baseUrl}/open-data/v1/requests.csv`,
    '',
    'Demo keys, shown this once only (the database keeps only their hashes):',
    `  client key (requests:write, POST requests): ${seed.clientKey.key}`,
    `  admin key  (admin, the /admin/v1 API):      ${seed.adminKey.key}`,
    '',
    'New keys at any time, also while this server runs (on this machine, same DATA_DIR):',
    `  ${cli} keys create --name my-app`,
    `  ${cli} keys create --name ops --scope admin`,
    `  ${cli} keys list       (and keys revoke <id>)`,
    `or POST ${baseUrl}/admin/v1/keys with an admin key (see the API docs).`,
    rule,
    '',
  ].join('\n')
}
