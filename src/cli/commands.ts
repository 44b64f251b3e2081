import { readFile, writeFile } from 'node:fs/promises'
import type { AppConfig } from '../config.js'
import { configuredDatabase, type Database, openDatabase } from '../db/database.js'
import { API_KEY_SCOPES, type ApiKeyScope, createApiKey, listApiKeys, revokeApiKey } from '../domain/api-keys/api-keys.js'
import { type ImportOptions, type ImportSummary, importCatalog, loadCatalogServices } from '../domain/catalog/catalog.js'
import { readCatalog } from '../domain/catalog/catalog-json.js'
import { CatalogError } from '../domain/catalog/validate-catalog.js'
import { loadDemoCatalog } from '../domain/demo/seed-demo.js'
import { DEFAULT_KEY_CHANNEL, isRequestChannel, REQUEST_CHANNELS } from '../domain/requests/channels.js'
import { resolveJurisdiction } from '../domain/jurisdictions.js'
import { CLI_ACTOR, recordAudit } from '../domain/audit/audit.js'
import { replayDeliveries } from '../domain/departments/deliveries.js'
import {
  createDepartment,
  findDepartment,
  listDepartments,
  ROUTES_DOCUMENT_SHAPE,
  type RouteInput,
  type RoutesDocument,
  rotateSecret,
  routeInputs,
  setServiceRoutes,
} from '../domain/departments/departments.js'
import { rebuildRollups } from '../domain/reports/rollups.js'
import { RETENTION_STEPS, runRetention } from '../domain/retention/retention.js'
import { createWebhookContext } from '../integrations/webhooks/context.js'
import { OPENAPI_PATH, renderOpenApiDocument } from './openapi.js'

export class UsageError extends Error {}

export interface CommandContext {
  args: string[]
  options: {
    name?: string
    scope?: string[]
    channel?: string
    'jurisdiction-id'?: string
    json: boolean
    check: boolean
    code?: string
    'webhook-url'?: string
    'receives-contact'?: boolean
    'overlap-hours'?: string
    department?: string[]
    file?: string
    event?: string
    'failed-since'?: string
    from?: string
    to?: string
    yes?: boolean
    'dry-run'?: boolean
  }
  /** Runs `work` with the migrated database (the CLI opens the configured one and closes it after). */
  withDatabase: <T>(work: (database: Database, config: AppConfig) => Promise<T>) => Promise<T>
  out: (line: string) => void
  /** A file argument as a path to read: relative to where the operator ran the CLI (a server running the command has its own working directory). */
  path: (file: string) => string
}

interface Command {
  name: string
  synopsis: string
  /** false: the command never opens the database (runs in the CLI process even while a server holds it). */
  usesDatabase?: false
  run(context: CommandContext): Promise<void>
}

/** A list for people: a header row, then tab-separated rows (still one record a line for `cut` and scripts; --json for programs). */
function printTable(context: CommandContext, header: string[], rows: string[][]) {
  for (const row of [header, ...rows]) context.out(row.join('\t'))
}

/** Opens the configured database, brings it up to date, runs `work`, and always closes it. */
export async function openConfiguredDatabase<T>(config: AppConfig, work: (database: Database, config: AppConfig) => Promise<T>): Promise<T> {
  const database = await openDatabase({
    ...configuredDatabase(config),
    // One command at a time: two connections are plenty.
    poolSize: 2,
    logger: { warn: () => {}, info: () => {}, error: () => {} },
  })
  try {
    await database.migrate()
    return await work(database, config)
  } finally {
    await database.close()
  }
}

/** An import adding a jurisdiction beside others needs --yes (it makes jurisdiction_id required for every client). */
const confirmation = (context: CommandContext): ImportOptions => ({
  newJurisdiction: { confirmed: context.options.yes === true, howToConfirm: 'run the command again with --yes' },
})

function printImport(context: CommandContext, summary: ImportSummary) {
  for (const warning of summary.warnings ?? []) context.out(`warning: ${warning}`)
  context.out(
    `jurisdiction ${summary.jurisdiction}: ${summary.created.length} created, ` +
      `${summary.updated.length} updated, ${summary.unchanged.length} unchanged`,
  )
}

export const COMMANDS: Command[] = [
  {
    name: 'migrate',
    synopsis: 'migrate                      apply pending database migrations',
    async run(context) {
      await context.withDatabase(async () => context.out('migrations applied'))
    },
  },
  {
    name: 'demo',
    synopsis: 'demo [--yes]                 load the demo jurisdiction and catalog (idempotent)',
    async run(context) {
      await context.withDatabase(async ({ db }) => printImport(context, await loadDemoCatalog(db, confirmation(context), CLI_ACTOR)))
    },
  },
  {
    name: 'services import',
    synopsis: 'services import <file> [--yes]   upsert a catalog file (see README "Catalog format"); --yes: it may add a jurisdiction',
    async run(context) {
      const file = context.args[0]
      if (!file) throw new UsageError('services import needs a file')
      // Validate the whole file before touching the database: a bad file changes nothing.
      let text: string
      try {
        text = await readFile(context.path(file), 'utf8')
      } catch (err) {
        throw new CatalogError(file, [{ field: '(file)', detail: `cannot be read: ${(err as Error).message}` }])
      }
      const catalog = readCatalog(text, file)
      await context.withDatabase(async ({ db }) => printImport(context, await importCatalog(db, catalog, confirmation(context), CLI_ACTOR)))
    },
  },
  {
    name: 'services list',
    synopsis: 'services list [--jurisdiction-id ID] [--json]',
    async run(context) {
      await context.withDatabase(async ({ db }) => {
        const jurisdiction = await resolveJurisdiction(db, context.options['jurisdiction-id'])
        const services = await loadCatalogServices(db, jurisdiction.id, { includeInactive: true })
        if (context.options.json) return context.out(JSON.stringify(services, null, 2))
        printTable(
          context,
          ['service_code', 'type', 'state', 'attributes', 'service_name'],
          services.map((s) => [s.service_code, s.type, s.active ? 'active' : 'inactive', `${s.attributes.length} attributes`, s.service_name]),
        )
      })
    },
  },
  {
    name: 'keys create',
    synopsis:
      `keys create --name NAME [--scope S ...] [--channel C] [--jurisdiction-id ID[,ID…]]   scopes: ${API_KEY_SCOPES.join(', ')}; ` +
      `C: its requests' default channel (${DEFAULT_KEY_CHANNEL}); ID: the jurisdictions it acts in (default: every one); prints the key last`,
    async run(context) {
      const name = context.options.name?.trim()
      if (!name) throw new UsageError('keys create needs --name')
      const scopes = context.options.scope ?? []
      const unknown = scopes.filter((s) => !(API_KEY_SCOPES as readonly string[]).includes(s))
      if (unknown.length) throw new UsageError(`unknown scope ${unknown.join(', ')}; known: ${API_KEY_SCOPES.join(', ')}`)
      const channel = context.options.channel
      if (channel !== undefined && !isRequestChannel(channel)) {
        throw new UsageError(`unknown channel ${channel}; known: ${REQUEST_CHANNELS.join(', ')}`)
      }
      // Jurisdiction ids are domain names: a comma never occurs in one.
      const jurisdictionIds = context.options['jurisdiction-id']?.split(',').map((id) => id.trim()).filter(Boolean) ?? null
      await context.withDatabase(async ({ db }) => {
        const key = await createApiKey(db, { name, scopes: scopes as ApiKeyScope[], defaultChannel: channel, jurisdictionIds }, CLI_ACTOR)
        context.out(
          `created API key ${key.id} "${key.name}" with scopes ${key.scopes.join(', ')} and default channel ${key.default_channel}, ` +
            `acting in ${key.jurisdiction_ids?.join(', ') ?? 'every jurisdiction'}; it is shown only once:`,
        )
        context.out(key.key)
      })
    },
  },
  {
    name: 'keys list',
    synopsis: 'keys list [--json]',
    async run(context) {
      await context.withDatabase(async ({ db }) => {
        const keys = await listApiKeys(db)
        if (context.options.json) return context.out(JSON.stringify(keys, null, 2))
        printTable(
          context,
          ['id', 'key_id', 'name', 'scopes', 'channel', 'jurisdictions', 'created', 'last_used', 'state'],
          keys.map((k) => [
            String(k.id),
            k.key_id,
            k.name,
            k.scopes.join(','),
            k.default_channel,
            k.jurisdiction_ids?.join(',') ?? 'all',
            k.created_at.toISOString(),
            k.last_used_at?.toISOString() ?? 'never',
            k.revoked_at ? `revoked ${k.revoked_at.toISOString()}` : 'active',
          ]),
        )
      })
    },
  },
  {
    name: 'keys revoke',
    synopsis: 'keys revoke <id>',
    async run(context) {
      const id = Number(context.args[0])
      if (!Number.isInteger(id) || id < 1) throw new UsageError('keys revoke needs a numeric key id (see keys list)')
      await context.withDatabase(async ({ db }) => {
        const revoked = await revokeApiKey(db, id, CLI_ACTOR)
        if (!revoked) throw new Error(`API key ${id} does not exist`)
        context.out(`API key ${id} revoked`)
      })
    },
  },
  {
    name: 'departments create',
    synopsis: 'departments create --code C --name N [--webhook-url URL] [--receives-contact]   prints secret and key once',
    async run(context) {
      const { code, name } = context.options
      if (!code || !name) throw new UsageError('departments create needs --code and --name')
      await context.withDatabase(async ({ db }, config) => {
        const jurisdiction = await resolveJurisdiction(db, context.options['jurisdiction-id'])
        const webhooks = await createWebhookContext(config)
        try {
          const created = await createDepartment(db, webhooks, {
            jurisdictionId: jurisdiction.id,
            code,
            name,
            webhookUrl: context.options['webhook-url'] ?? null,
            receivesContact: context.options['receives-contact'] ?? false,
          }, CLI_ACTOR)
          context.out(`department ${code} registered; these are shown only once:`)
          context.out(`signing secret (verify our deliveries, sign your callbacks): ${created.signingSecret}`)
          context.out(`inbound api_key (POST servicerequestupdates): ${created.inboundKey}`)
        } finally {
          await webhooks.agent.close()
        }
      })
    },
  },
  {
    name: 'departments list',
    synopsis: 'departments list [--json]',
    async run(context) {
      await context.withDatabase(async ({ db }) => {
        const jurisdiction = await resolveJurisdiction(db, context.options['jurisdiction-id'])
        const list = await listDepartments(db, jurisdiction.id)
        if (context.options.json) return context.out(JSON.stringify(list, null, 2))
        printTable(
          context,
          ['code', 'name', 'webhook_url', 'state'],
          list.map((d) => [d.code, d.name, d.webhookUrl ?? '(no webhook)', d.enabled ? 'enabled' : `disabled (${d.disabledReason ?? 'by an operator'})`]),
        )
      })
    },
  },
  {
    name: 'departments rotate-secret',
    synopsis: 'departments rotate-secret <code> [--overlap-hours 24]   old and new secrets both sign during the overlap',
    async run(context) {
      const code = context.args[0]
      if (!code) throw new UsageError('departments rotate-secret needs a department code')
      const overlap = Number(context.options['overlap-hours'] ?? 24)
      if (!Number.isInteger(overlap) || overlap < 0 || overlap > 720) throw new UsageError('--overlap-hours must be a whole number from 0 to 720')
      await context.withDatabase(async ({ db }, config) => {
        const jurisdiction = await resolveJurisdiction(db, context.options['jurisdiction-id'])
        const webhooks = await createWebhookContext(config)
        try {
          const secret = await rotateSecret(db, webhooks, await findDepartment(db, jurisdiction.id, code), overlap, CLI_ACTOR)
          context.out(`new signing secret for ${code} (the old one keeps signing for ${overlap} h), shown once:`)
          context.out(secret)
        } finally {
          await webhooks.agent.close()
        }
      })
    },
  },
  {
    name: 'routes set',
    synopsis: 'routes set <service_code> (--department D ... | --file routes.json)   see docs/department-integration.md',
    async run(context) {
      const serviceCode = context.args[0]
      if (!serviceCode) throw new UsageError('routes set needs a service code')
      let routes: RouteInput[]
      if (context.options.file) {
        const file = context.options.file
        let document: RoutesDocument
        try {
          document = JSON.parse(await readFile(context.path(file), 'utf8')) as RoutesDocument
        } catch (err) {
          throw new Error(`${file}: ${(err as Error).message}`)
        }
        if (!Array.isArray(document) && !Array.isArray((document as { departments?: unknown } | null)?.departments)) {
          throw new Error(`${file}: must be ${ROUTES_DOCUMENT_SHAPE}`)
        }
        routes = routeInputs(document)
      } else if (context.options.department?.length) {
        routes = context.options.department.map((department) => ({ department }))
      } else {
        throw new UsageError('routes set needs --department (repeatable) or --file')
      }
      await context.withDatabase(async ({ db }) => {
        const jurisdiction = await resolveJurisdiction(db, context.options['jurisdiction-id'])
        for (const r of await setServiceRoutes(db, jurisdiction.id, serviceCode, routes, CLI_ACTOR)) {
          context.out(`${serviceCode} → ${r.department}${r.has_area ? ` within ${r.area_name ?? 'an area'}` : ' (default)'}`)
        }
      })
    },
  },
  {
    name: 'deliveries replay',
    synopsis: 'deliveries replay (--event ID | --failed-since 2026-01-31T00:00:00Z)   requeue dead-lettered deliveries',
    async run(context) {
      const { event } = context.options
      const since = context.options['failed-since']
      if (!event && !since) throw new UsageError('deliveries replay needs --event or --failed-since')
      const failedSince = since ? new Date(since) : undefined
      if (failedSince && Number.isNaN(failedSince.getTime())) throw new UsageError('--failed-since must be a datetime')
      await context.withDatabase(async ({ db }) => {
        const jurisdiction = await resolveJurisdiction(db, context.options['jurisdiction-id'])
        const replayed = await replayDeliveries(db, CLI_ACTOR, jurisdiction.id, { ...(event ? { eventId: event } : {}), ...(failedSince ? { failedSince } : {}) })
        context.out(`${replayed.length} deliveries requeued${replayed.length ? `: ${replayed.join(', ')}` : ''}`)
      })
    },
  },
  {
    name: 'reports rebuild',
    synopsis: 'reports rebuild [--from 2026-01-01] [--to 2026-12-31]   recompute the report rollups from the requests (local days; default: all)',
    async run(context) {
      const { from, to } = context.options
      for (const [option, value] of [['--from', from], ['--to', to]] as const) {
        if (value !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(value)) throw new UsageError(`${option} must be a date, YYYY-MM-DD`)
      }
      if (from && to && from > to) throw new UsageError('--from is after --to')
      await context.withDatabase(async ({ db }) => {
        const started = performance.now()
        const rebuilt = await rebuildRollups(db, { ...(from ? { from } : {}), ...(to ? { to } : {}) })
        // A month per transaction (rollups.ts), none of them the whole rebuild's: its entry is
        // written once every month has committed, so it says the rebuild finished.
        await recordAudit(db, CLI_ACTOR, {
          action: 'report_rollups.rebuilt',
          entityType: 'report_rollups',
          entityId: `${from ?? 'first'}..${to ?? 'today'}`,
          changes: { from: { before: null, after: from ?? null }, to: { before: null, after: to ?? null }, days: { before: null, after: rebuilt.days }, cells: { before: null, after: rebuilt.cells } },
        }, { keepUnchanged: true })
        context.out(`rebuilt ${rebuilt.days} days (${rebuilt.cells} cells) in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      })
    },
  },
  {
    name: 'retention run',
    synopsis: 'retention run [--dry-run]      anonymise reporters past their jurisdiction\'s policy and prune expired copies (dry: only count)',
    async run(context) {
      const dryRun = context.options['dry-run'] === true
      await context.withDatabase(async ({ db }, config) => {
        const started = performance.now()
        const summary = await runRetention(db, {
          periods: config.retention,
          dryRun,
          // An operator's act, recorded as the CLI's.
          actor: CLI_ACTOR,
          // A line per batch: a first run on years of requests takes a while.
          progress: (step, done) => context.out(`  ${step}: ${done} so far`),
        })
        for (const step of RETENTION_STEPS) context.out(`${step}: ${summary[step]} ${dryRun ? 'would be done' : 'done'}`)
        context.out(`${dryRun ? 'dry run, nothing changed' : 'retention run finished'} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      })
    },
  },
  {
    name: 'openapi',
    usesDatabase: false,
    synopsis: 'openapi [--check]            write openapi/openapi.json from the routes; --check fails when stale',
    async run(context) {
      const document = await renderOpenApiDocument()
      if (context.options.check) {
        const committed = await readFile(OPENAPI_PATH, 'utf8').catch(() => '')
        if (committed !== document) throw new Error(`${OPENAPI_PATH} is stale: run npm run openapi and commit it`)
        return context.out(`${OPENAPI_PATH} is up to date`)
      }
      await writeFile(OPENAPI_PATH, document)
      context.out(`wrote ${OPENAPI_PATH}`)
    },
  },
]

export function usage(): string {
  return `usage: open311 <command>   (npm run cli -- <command>)\n\n${COMMANDS.map((c) => `  ${c.synopsis}`).join('\n')}\n\nConfiguration comes from the same environment variables as the server (DATABASE_URL, DATA_DIR, ...).\nOn the embedded database, a server running on the same DATA_DIR runs the command for you.\n`
}
