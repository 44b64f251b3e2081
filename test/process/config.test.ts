import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { SUPPORTED_NODE, unsupportedNodeMessage } from '../../src/startup/supported-node.js'
import { runNode } from '../helpers/process.js'

t.test('loadConfig: defaults for an empty environment', async (t) => {
  const config = loadConfig({})
  // t.has, not t.same: the configuration grows; these are the defaults this test is about.
  t.has(config, {
    port: 8080,
    host: '0.0.0.0',
    databasePoolSize: 10,
    dataDir: './data',
    logLevel: 'info',
    publicBaseUrl: 'http://localhost:8080',
    seedDemo: true,
    trustProxy: false,
  })
  t.notOk('databaseUrl' in config, 'no DATABASE_URL selects the embedded database')
})

t.test('loadConfig: DATABASE_URL turns the demo seed off unless SEED_DEMO says otherwise', async (t) => {
  const url = 'postgres://user:pw@db.internal:5432/open311'
  const withUrl = loadConfig({ DATABASE_URL: url })
  t.equal(withUrl.databaseUrl, url)
  t.equal(withUrl.seedDemo, false)
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://db/x' }).databaseUrl, 'postgresql://db/x', 'postgresql:// is accepted too')
  t.equal(loadConfig({ DATABASE_URL: url, SEED_DEMO: 'true' }).seedDemo, true)
  t.equal(loadConfig({ SEED_DEMO: 'false' }).seedDemo, false)
})

t.test('loadConfig: values are coerced, trimmed, and empty means unset', async (t) => {
  const config = loadConfig({
    PORT: ' 9000 ',
    DATA_DIR: '/var/lib/open311',
    LOG_LEVEL: 'warn',
    TRUST_PROXY: 'true',
    DATABASE_POOL_SIZE: '25',
    DATABASE_URL: '',
    SEED_DEMO: '   ',
  })
  t.equal(config.port, 9000)
  t.equal(config.publicBaseUrl, 'http://localhost:9000', 'the default base URL follows PORT')
  t.equal(config.dataDir, '/var/lib/open311')
  t.equal(config.logLevel, 'warn')
  t.equal(config.trustProxy, true)
  t.equal(config.databasePoolSize, 25)
  t.notOk('databaseUrl' in config, 'an empty DATABASE_URL counts as unset')
  t.equal(config.seedDemo, true, 'a blank SEED_DEMO counts as unset')
  t.equal(
    loadConfig({ PUBLIC_BASE_URL: 'https://311.example.gov/api/' }).publicBaseUrl,
    'https://311.example.gov/api',
    'trailing slashes are dropped from PUBLIC_BASE_URL',
  )
})

t.test('loadConfig: DATABASE_PREPARED_STATEMENTS is on unless set false', async (t) => {
  t.equal(loadConfig({}).databasePreparedStatements, true, 'on by default')
  t.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }).databasePreparedStatements, false)
  t.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'true' }).databasePreparedStatements, true)
})

t.test('loadConfig: DATABASE_READ_URL names a replica of DATABASE_URL, and needs it', async (t) => {
  const primary = 'postgres://app@db-primary:5432/open311'
  const replica = 'postgres://app@db-replica:5432/open311'
  const config = loadConfig({ DATABASE_URL: primary, DATABASE_READ_URL: ` ${replica} ` })
  t.equal(config.databaseUrl, primary)
  t.equal(config.databaseReadUrl, replica, 'trimmed like every value')
  t.notOk('databaseReadUrl' in loadConfig({ DATABASE_URL: primary }), 'unset: reads go to the primary')
  t.notOk('databaseReadUrl' in loadConfig({ DATABASE_URL: primary, DATABASE_READ_URL: '' }), 'empty counts as unset')
  t.throws(
    () => loadConfig({ DATABASE_READ_URL: replica }),
    { name: 'ConfigError', variable: 'DATABASE_READ_URL', message: /^Invalid configuration: DATABASE_READ_URL needs DATABASE_URL/ },
    'the embedded database has no replicas: refused, not ignored',
  )
})

t.test('loadConfig: OPEN_DATA_* say what the data catalogs publish, with open defaults', async (t) => {
  t.same(loadConfig({}).openData, { license: 'https://opendatacommons.org/licenses/pddl/1-0/' }, 'PDDL; publisher and contact from the jurisdiction')
  t.same(
    loadConfig({
      OPEN_DATA_LICENSE: ' https://creativecommons.org/licenses/by/4.0/ ',
      OPEN_DATA_PUBLISHER: 'Riverton Department of Innovation',
      OPEN_DATA_CONTACT_EMAIL: 'open-data_team+311@riverton.example.gov',
    }).openData,
    {
      license: 'https://creativecommons.org/licenses/by/4.0/',
      publisher: 'Riverton Department of Innovation',
      contactEmail: 'open-data_team+311@riverton.example.gov',
    },
  )
  t.same(loadConfig({ OPEN_DATA_PUBLISHER: '', OPEN_DATA_CONTACT_EMAIL: ' ' }).openData, { license: 'https://opendatacommons.org/licenses/pddl/1-0/' }, 'empty counts as unset')
})

t.test('loadConfig: METRICS is off unless on, and on only with METRICS_TOKEN', async (t) => {
  const token = 'k2Xv9mQ4tR7wY1zA3cE5gI8jL0nP6sU+/b=='
  t.same(loadConfig({}).metrics, { enabled: false }, 'off by default')
  t.same(loadConfig({ METRICS_TOKEN: token }).metrics, { enabled: false }, 'a token alone does not turn it on')
  t.same(loadConfig({ METRICS: 'on', METRICS_TOKEN: ` ${token} ` }).metrics, { enabled: true, token }, 'trimmed like every value')
  t.throws(
    () => loadConfig({ METRICS: 'on' }),
    { name: 'ConfigError', variable: 'METRICS_TOKEN', message: /^Invalid configuration: METRICS_TOKEN is required with METRICS=on/ },
    'never served without a token',
  )
})

const BAD_VALUES: [variable: string, value: string, message: RegExp][] = [
  ['PORT', 'abc', /integer/],
  ['PORT', '70000', /65535/],
  ['LOG_LEVEL', 'loud', /must be one of: fatal, error, warn, info, debug, trace, silent/],
  ['DATABASE_URL', 'mysql://x', /postgres:\/\/ or postgresql:\/\//],
  ['DATABASE_READ_URL', 'mysql://x', /postgres:\/\/ or postgresql:\/\//],
  ['PUBLIC_BASE_URL', 'notaurl', /absolute http:\/\/ or https:\/\/ URL/],
  ['SEED_DEMO', 'maybe', /boolean/],
  ['DATABASE_PREPARED_STATEMENTS', 'sometimes', /boolean/],
  ['OPEN_DATA_LICENSE', 'PDDL', /licence's absolute http:\/\/ or https:\/\/ URL/],
  ['OPEN_DATA_PUBLISHER', 'x'.repeat(201), /must NOT have more than 200 characters/],
  ['OPEN_DATA_CONTACT_EMAIL', 'Open Data <data@city.example>', /must be a plain email address .*DCAT-US hasEmail/],
  // DCAT-US's hasEmail wants a dot in the domain: refused here rather than by every harvester.
  ['OPEN_DATA_CONTACT_EMAIL', 'data@localhost', /must be a plain email address/],
  ['OPEN_DATA_CONTACT_EMAIL', 'mailto:data@city.example', /must be a plain email address/],
  ['METRICS', 'true', /must be one of: off, on/],
  ['METRICS_TOKEN', 'short', /at least 32 characters without spaces/],
  ['METRICS_TOKEN', `${'x'.repeat(20)} ${'y'.repeat(20)}`, /at least 32 characters without spaces/],
]

for (const [variable, value, message] of BAD_VALUES) {
  t.test(`loadConfig: ${variable}=${value} is a ConfigError naming ${variable}`, async (t) => {
    let caught: unknown
    try {
      loadConfig({ [variable]: value })
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError, 'throws a ConfigError')
    const err = caught as ConfigError
    t.equal(err.variable, variable)
    t.match(err.message, new RegExp(`^Invalid configuration: ${variable} `))
    t.match(err.message, message)
  })
}

t.test('the server process refuses a bad PORT with exit code 1 and a message naming it', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'open311-config-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const result = await runNode(['src/server.ts'], { env: { PORT: 'abc', DATA_DIR: dataDir }, timeoutMs: 30_000 })
  t.equal(result.timedOut, false)
  t.equal(result.code, 1, 'exit code 1')
  t.match(result.stderr, /^open311-server failed to start: Invalid configuration: PORT must be integer\n$/)
  t.equal(result.stdout, '', 'nothing is logged before the configuration is valid')
})

t.test('the server process fails fast with one clear line when the database is unreachable', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'open311-config-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const result = await runNode(['src/server.ts'], {
    env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nope', DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' },
    timeoutMs: 30_000,
  })
  t.equal(result.timedOut, false)
  t.equal(result.code, 1, 'exit code 1')
  t.match(result.stderr, /open311-server failed to start: cannot reach the database at 127\.0\.0\.1:1 \(ECONNREFUSED\); check DATABASE_URL/)
  t.equal(result.stderr.trim().split('\n').length, 1, 'one line, no stack trace')
  t.ok(result.durationMs < 10_000, `exits quickly (${Math.round(result.durationMs)} ms)`)
})

t.test('the Node.js versions: the range is package.json engines; older versions get one line saying what is needed', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }
  t.equal(pkg.engines.node, SUPPORTED_NODE, 'engines and the start-up check say the same')
  for (const version of ['20.19.0', '20.20.2', '22.12.0', '23.0.0', '24.11.1', '25.2.0']) t.equal(unsupportedNodeMessage(version), null, `${version} runs`)
  for (const version of ['18.20.4', '20.18.1', '21.7.3', '22.11.0']) {
    t.equal(
      unsupportedNodeMessage(version),
      `open311-server needs Node.js 20.19 or later on 20, or 22.12 or later (this is Node.js ${version}): ` +
        'its dependencies load ES modules with require(), which older versions cannot. Install Node.js 22 or 24 (LTS).',
      `${version} is refused`,
    )
  }
})
