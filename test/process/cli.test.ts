import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { inProcessCli } from '../helpers/cli.js'
import { createEmbeddedDataDir, createTestDatabase } from '../helpers/database.js'
import { lines, type RunResult, runCli } from '../helpers/process.js'

const RAW_KEY = /^o311_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/


const tmp = await mkdtemp(join(tmpdir(), 'open311-cli-'))
t.teardown(() => rm(tmp, { recursive: true, force: true }))

// The commands run in-process against one database this file holds open (subtests share it and
// run in order): each embedded CLI process would pay seconds of PGlite + PostGIS start-up. The
// last subtest runs the real bin as a process, so argv, exit codes and opening the configured
// database are covered too.
const { database, url } = await createTestDatabase(t)
// The last subtest's processes each pay seconds of PGlite + PostGIS start-up when embedded.
if (!url) t.setTimeout(480_000)
const config = loadConfig({ DATA_DIR: join(tmp, 'in-process'), ...(url ? { DATABASE_URL: url } : {}) })

const cli = inProcessCli(database, config)
/** Runs a command line in-process, as a server does for a CLI process (`cwd`: where that process ran). */
const cliIn = (cwd: string, ...args: string[]) => inProcessCli(database, config, { cwd })(...args)
const describe = (r: Pick<RunResult, 'code' | 'stderr'>) => `exit ${r.code}; stderr: ${r.stderr.trim() || '(empty)'}`

const demoCatalog = JSON.parse(await readFile(new URL('../../src/domain/demo/demo-catalog.json', import.meta.url), 'utf8')) as {
  jurisdiction: Record<string, string>
  services: { service_code: string }[]
}
let demoServiceCount = 0

t.test('demo loads the catalog, and a second run changes nothing', async (t) => {
  const first = await cli('demo')
  t.equal(first.code, 0, describe(first))
  const created = /^jurisdiction demo\.open311\.city: (\d+) created, 0 updated, 0 unchanged\n$/.exec(first.stdout)
  t.ok(created, `first run creates the catalog: ${first.stdout}`)
  demoServiceCount = Number(created?.[1])
  t.equal(demoServiceCount, demoCatalog.services.length, 'every demo service is created')
  t.ok(demoServiceCount >= 12)

  const second = await cli('demo')
  t.equal(second.code, 0, describe(second))
  t.equal(second.stdout, `jurisdiction demo.open311.city: 0 created, 0 updated, ${demoServiceCount} unchanged\n`)
  t.equal(second.stderr, '')
})

t.test('services list shows the catalog, one service a line', async (t) => {
  const list = await cli('services', 'list')
  t.equal(list.code, 0, describe(list))
  const [header, ...rows] = lines(list.stdout).map((line) => line.split('\t'))
  t.same(header, ['service_code', 'type', 'state', 'attributes', 'service_name'], 'a header row names the columns')
  t.equal(rows.length, demoServiceCount)
  t.match(
    rows.find((row) => row[0] === 'pothole'),
    ['pothole', 'realtime', 'active', /^[1-9]\d* attributes$/, 'Pothole'],
  )
  t.same(rows.map((row) => row[0]).sort(), demoCatalog.services.map((s) => s.service_code).sort())
})

t.test('keys: create prints the raw key last, list never shows it, revoke marks it', async (t) => {
  const [noName, created] = await Promise.all([
    cli('keys', 'create', '--scope', 'requests:write'),
    cli('keys', 'create', '--name', 'app', '--scope', 'requests:write'),
  ])
  t.equal(noName.code, 2, 'a missing --name is a usage error')
  t.match(noName.stderr, /^error: keys create needs --name\n\nusage: open311 <command>/)
  t.equal(noName.stdout, '')

  t.equal(created.code, 0, describe(created))
  const out = lines(created.stdout)
  t.equal(out.length, 2)
  const rawKey = out.at(-1) ?? ''
  const match = RAW_KEY.exec(rawKey)
  t.ok(match, `the last line is the raw key: ${rawKey}`)
  const header = /^created API key (\d+) "app" with scopes requests:write and default channel app, acting in every jurisdiction; it is shown only once:$/.exec(out[0] ?? '')
  t.ok(header, `the first line describes the key: ${out[0]}`)
  const id = header?.[1] ?? ''
  const keyId = match?.[1] ?? ''
  const secret = match?.[2] ?? ''

  const list = await cli('keys', 'list')
  t.equal(list.code, 0, describe(list))
  const [columns, ...keys] = lines(list.stdout).map((line) => line.split('\t'))
  t.same(columns, ['id', 'key_id', 'name', 'scopes', 'channel', 'jurisdictions', 'created', 'last_used', 'state'], 'a header row names the columns')
  t.match(keys, [[id, keyId, 'app', 'requests:write', 'app', 'all', ISO_TIME, 'never', 'active']], 'the new key is the only one (the failed create made none)')
  t.equal(keys.length, 1)
  t.notOk(list.stdout.includes(secret), 'keys list never prints the secret part')
  t.notOk(list.stdout.includes(rawKey), 'keys list never prints the raw key')

  const revoked = await cli('keys', 'revoke', id)
  t.equal(revoked.code, 0, describe(revoked))
  t.equal(revoked.stdout, `API key ${id} revoked\n`)

  const after = await cli('keys', 'list')
  t.equal(after.code, 0, describe(after))
  const rows = lines(after.stdout).map((line) => line.split('\t')).slice(1)
  t.equal(rows.length, 1)
  t.match(rows[0], [id, keyId, 'app', 'requests:write', 'app', 'all', ISO_TIME, 'never', /^revoked \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/])
  t.notOk(after.stdout.includes(secret), 'still no secret after revocation')

  const missing = await cli('keys', 'revoke', '99999')
  t.equal(missing.code, 1, 'revoking an unknown key fails')
  t.equal(missing.stderr, 'error: API key 99999 does not exist\n')
  t.equal(missing.stdout, '')

  const elsewhere = await cli('keys', 'create', '--name', 'far', '--jurisdiction-id', 'nowhere.example')
  t.equal(elsewhere.code, 1, 'a key for a jurisdiction the server does not serve is refused')
  t.match(elsewhere.stderr, /^error: jurisdiction_ids: nowhere\.example is not served here/)
})

t.test('an unknown command says so on stderr with the usage, and exits 2', async (t) => {
  const result = await cli('frobnicate')
  t.equal(result.code, 2)
  t.match(result.stderr, /^error: unknown command "frobnicate"\n\nusage: open311 <command>/)
  t.equal(result.stdout, '')
  for (const command of ['migrate', 'demo', 'services import <file>', 'services list', 'keys create', 'keys list', 'keys revoke <id>']) {
    t.ok(result.stderr.includes(`  ${command}`), `usage lists ${command}`)
  }

  const group = await cli('keys', 'rotate')
  t.equal(group.code, 2)
  t.match(group.stderr, /^error: "keys rotate" is not a command; keys takes one of: create, list, revoke\n\nusage: /)

  const bare = await cli()
  t.equal(bare.code, 2, 'no command at all is a usage error too')
  t.match(bare.stdout, /^usage: open311 <command>/)

  const help = await cli('--help')
  t.equal(help.code, 0)
  t.match(help.stdout, /^usage: open311 <command>/)
  // The usage points only at documents that exist, and at sections they have.
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  for (const [, section] of help.stdout.matchAll(/README "([^"]+)"/g)) t.match(readme, new RegExp(`^#+ ${section}$`, 'm'), `README has "${section}"`)
  for (const [doc] of help.stdout.matchAll(/docs\/[\w-]+\.md/g)) t.ok(existsSync(new URL(`../../${doc}`, import.meta.url)), `${doc} exists`)
})

const newService = {
  service_code: 'bench-repair',
  service_name: 'Park bench repair',
  description: 'A broken or damaged bench in a park or on a sidewalk.',
  group: 'Parks',
  keywords: ['bench', 'park'],
  attributes: [
    {
      code: 'damage',
      datatype: 'singlevaluelist',
      description: 'What is wrong with the bench?',
      values: [
        { key: 'BROKEN', name: 'Broken slats or frame' },
        { key: 'GRAFFITI', name: 'Graffiti' },
      ],
    },
  ],
}

let beforeServices: { service_code: string }[] = []

t.test('services import: a bad file fails with its path and field', async (t) => {
  const before = await cli('services', 'list', '--json')
  t.equal(before.code, 0, describe(before))
  beforeServices = JSON.parse(before.stdout) as { service_code: string }[]
  t.equal(beforeServices.length, demoServiceCount)

  const notJson = join(tmp, 'not-json.json')
  await writeFile(notJson, '{ "jurisdiction": { "id": "demo.open311.city", ')
  const badDatatype = join(tmp, 'bad-datatype.json')
  await writeFile(
    badDatatype,
    JSON.stringify({
      jurisdiction: demoCatalog.jurisdiction,
      // A valid new service and a change to an existing one before the bad attribute: neither may land.
      services: [
        newService,
        {
          service_code: 'pothole',
          service_name: 'Pothole (renamed)',
          attributes: [{ code: 'shade', datatype: 'colour', description: 'Which colour is the paint?' }],
        },
      ],
    }),
  )
  const missing = join(tmp, 'no-such-dir', 'catalog.json')

  const cases: [file: string, expected: RegExp][] = [
    [notJson, /: \(file\) is not valid JSON: line 1, column 48: /],
    [badDatatype, /: services\[1\]\.attributes\[0\]\.datatype must be one of string, number, datetime, text, singlevaluelist, multivaluelist \(got "colour"\)\n$/],
    [missing, /: \(file\) cannot be read: ENOENT/],
  ]
  const results = await Promise.all(cases.map(([file]) => cli('services', 'import', file)))
  for (const [i, [file, expected]] of cases.entries()) {
    const result = results[i]!
    t.equal(result.code, 1, `${file}: exit 1`)
    t.ok(result.stderr.startsWith(`error: ${file}: `), `names the file: ${result.stderr.trim()}`)
    t.match(result.stderr, expected, 'names the offending field')
    t.equal(result.stdout, '', 'reports no import')
  }
})

t.test('services import: a valid file creates its new service, re-importing changes nothing, the bad files changed nothing', async (t) => {
  const file = join(tmp, 'one-more.json')
  await writeFile(file, JSON.stringify({ jurisdiction: demoCatalog.jurisdiction, services: [newService] }))

  const first = await cli('services', 'import', file)
  t.equal(first.code, 0, describe(first))
  // bench-repair was also the valid first service of the rejected bad-datatype file: it is new here.
  t.equal(first.stdout, 'jurisdiction demo.open311.city: 1 created, 0 updated, 0 unchanged\n')

  // A relative path is read from the working directory the command line came with.
  const again = await cliIn(tmp, 'services', 'import', 'one-more.json')
  t.equal(again.code, 0, describe(again))
  t.equal(again.stdout, 'jurisdiction demo.open311.city: 0 created, 0 updated, 1 unchanged\n')

  const after = await cli('services', 'list', '--json')
  t.equal(after.code, 0, describe(after))
  const afterServices = JSON.parse(after.stdout) as { service_code: string; service_name: string; attributes: { code: string }[] }[]
  t.equal(afterServices.length, demoServiceCount + 1, 'one service more, none lost')
  t.same(
    afterServices.filter((s) => s.service_code !== 'bench-repair'),
    beforeServices,
    'every other service is exactly as before the bad imports (pothole was not renamed)',
  )
  t.match(
    afterServices.find((s) => s.service_code === 'bench-repair'),
    { service_name: 'Park bench repair', active: true, attributes: [{ code: 'damage' }] },
  )
})

t.test('services import: a file with several faults lists them all, one a line, and imports nothing', async (t) => {
  const file = join(tmp, 'several-faults.json')
  const text = [
    '{',
    `  "jurisdiction": ${JSON.stringify(demoCatalog.jurisdiction)},`,
    '  "services": [',
    '    { "service_code": "bench repair", "service_name": "Bench", "type": "weekly" },',
    '    { "service_code": "pothole", "service_name": "", "privacy": "secret",',
    '      "attributes": [{ "code": "size", "datatype": "singlevaluelist", "description": "How big?" }] }',
    '  ]',
    '}',
  ]
  await writeFile(file, text.join('\n'))
  const result = await cli('services', 'import', file)
  t.equal(result.code, 1)
  t.equal(result.stdout, '')
  t.same(result.stderr.split('\n'), [
    `error: ${file}: 5 problems`,
    '  services[0].service_code must be 1 to 64 letters, digits, "_" or "-" (clients put it in URLs unescaped) (got "bench repair")',
    '  services[0].type must be one of realtime, batch, blackbox (got "weekly")',
    '  services[1].service_name must be text of 1 to 200 characters (got "")',
    '  services[1].privacy must be one of standard, sensitive (got "secret")',
    '  services[1].attributes[0].values is required for datatype singlevaluelist: a list of {"key", "name"} choices',
    '',
  ])
  const after = await cli('services', 'list', '--json')
  t.equal(JSON.parse(after.stdout).length, demoServiceCount + 1, 'nothing was imported')
})

t.test('services import of a new jurisdiction beside the demo: refused without --yes, warned with it', async (t) => {
  const file = join(tmp, 'second-city.json')
  await writeFile(file, JSON.stringify({ jurisdiction: { id: 'second.example', name: 'Second City', time_zone: 'UTC' }, services: [newService] }))
  const refused = await cli('services', 'import', file)
  t.equal(refused.code, 1, describe(refused))
  t.equal(refused.stdout, '')
  t.match(
    refused.stderr,
    /^error: the catalog adds jurisdiction "second\.example" beside demo\.open311\.city: once this server serves several jurisdictions, every GeoReport request must name its jurisdiction_id \(one of demo\.open311\.city, second\.example\); requests without one are refused\. Nothing was imported; to add it, run the command again with --yes\n$/,
  )
  const stillOne = await cli('services', 'list')
  t.equal(stillOne.code, 0, `still one jurisdiction: services list needs no --jurisdiction-id (${describe(stillOne)})`)

  const confirmed = await cli('services', 'import', file, '--yes')
  t.equal(confirmed.code, 0, describe(confirmed))
  t.same(lines(confirmed.stdout), [
    'warning: jurisdiction "second.example" was added beside demo.open311.city: once this server serves several jurisdictions, ' +
      'every GeoReport request must name its jurisdiction_id (one of demo.open311.city, second.example); requests without one are refused',
    'jurisdiction second.example: 1 created, 0 updated, 0 unchanged',
  ])
  const ambiguous = await cli('services', 'list')
  t.equal(ambiguous.code, 1)
  t.equal(ambiguous.stderr, 'error: jurisdiction_id is required: this server serves several jurisdictions (demo.open311.city, second.example)\n')
  const again = await cli('services', 'import', file)
  t.equal(again.code, 0, 're-importing a served jurisdiction needs no --yes')
  t.equal(again.stdout, 'jurisdiction second.example: 0 created, 0 updated, 1 unchanged\n')
})

t.test('the bin as a process: writes to the configured database, reads it back, and exits 0, 1 or 2', async (t) => {
  let env: Record<string, string>
  if (url) {
    env = { DATABASE_URL: url }
  } else {
    const dataDir = join(tmp, 'process')
    await createEmbeddedDataDir(dataDir)
    env = { DATA_DIR: dataDir }
  }
  const run = (...args: string[]) => runCli(args, { env, timeoutMs: 120_000 })

  // The unknown command never opens the database, so it can run beside the first real one.
  const [unknown, created] = await Promise.all([run('frobnicate'), run('keys', 'create', '--name', 'from-a-process', '--scope', 'requests:write')])
  t.equal(unknown.code, 2, 'an unknown command exits 2')
  t.match(unknown.stderr, /^error: unknown command "frobnicate"\n\nusage: open311 <command>/)
  t.equal(created.code, 0, describe(created))
  const keyId = RAW_KEY.exec(lines(created.stdout).at(-1) ?? '')?.[1]
  t.ok(keyId, `the last line is the raw key: ${created.stdout}`)

  // A second process finds the key: the first one migrated, wrote and closed the configured
  // database (on the embedded backend, the data directory DATA_DIR names).
  const listed = await run('keys', 'list')
  t.equal(listed.code, 0, describe(listed))
  t.equal(listed.stderr, '')
  t.match(
    lines(listed.stdout).map((line) => line.split('\t')).find((row) => row[1] === keyId),
    [/^\d+$/, keyId, 'from-a-process', 'requests:write', 'app', 'all', ISO_TIME, 'never', 'active'],
    'the key created by the other process is listed',
  )

  const missing = await run('keys', 'revoke', '99999')
  t.equal(missing.code, 1, 'a failing command exits 1')
  t.equal(missing.stderr, 'error: API key 99999 does not exist\n')
  t.equal(missing.stdout, '')

  const elsewhere = await cli('keys', 'create', '--name', 'far', '--jurisdiction-id', 'nowhere.example')
  t.equal(elsewhere.code, 1, 'a key for a jurisdiction the server does not serve is refused')
  t.match(elsewhere.stderr, /^error: jurisdiction_ids: nowhere\.example is not served here/)
})
