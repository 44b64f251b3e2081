/**
 * Reading /metrics as Prometheus would: over HTTP, each sample line parsed by the text format's
 * grammar (name, `{label="value",…}` with its escapes, value) and histograms grouped by their
 * labels, never by matching our own output's lines. (parse-prometheus-text-format, the parser on
 * npm, drops the labels of labelled histograms, which are what this test is about.)
 */

export interface Sample {
  labels?: Record<string, string>
  /** Counters and gauges. */
  value?: string
  /** Histograms: the cumulative count at each upper bound (`le`), `+Inf` included. */
  buckets?: Record<string, string>
  count?: string
  sum?: string
}

export interface MetricFamily {
  name: string
  type: string
  metrics: Sample[]
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
const unescape = (value: string) => value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))

function parse(text: string): MetricFamily[] {
  const families = new Map<string, MetricFamily>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) families.set(type[1]!, { name: type[1]!, type: type[2]!.toUpperCase(), metrics: [] })
    const sample = SAMPLE_LINE.exec(line)
    if (!sample || line.startsWith('#')) continue
    const [, name, labelText = '', value] = sample as unknown as [string, string, string | undefined, string]
    const labels = Object.fromEntries([...labelText.matchAll(LABEL)].map((m) => [m[1]!, unescape(m[2]!)]))
    const histogram = /^(.*)_(bucket|sum|count)$/.exec(name)
    const family = histogram && families.get(histogram[1]!)?.type === 'HISTOGRAM' ? families.get(histogram[1]!)! : families.get(name)
    if (!family) throw new Error(`sample ${name} before its # TYPE line`)
    if (family.type !== 'HISTOGRAM') {
      family.metrics.push({ ...(Object.keys(labels).length > 0 ? { labels } : {}), value })
      continue
    }
    const { le, ...series } = labels
    const key = JSON.stringify(series)
    let entry = family.metrics.find((m) => JSON.stringify(m.labels ?? {}) === key)
    if (!entry) family.metrics.push((entry = { labels: series, buckets: {} }))
    if (histogram![2] === 'bucket') entry.buckets![le!] = value
    else entry[histogram![2] as 'sum' | 'count'] = value
  }
  return [...families.values()]
}

export class Exposition {
  readonly families: Map<string, MetricFamily>

  constructor(readonly text: string) {
    this.families = new Map(parse(text).map((family) => [family.name, family]))
  }

  family(name: string): MetricFamily {
    const family = this.families.get(name)
    if (!family) throw new Error(`no metric ${name} in the exposition`)
    return family
  }

  /** The samples of `name` whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.family(name).metrics.filter((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))
  }

  /** The one sample of `name` with `labels`, as a number (NaN included); undefined when there is none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const [sample, ...more] = this.samples(name, labels)
    if (more.length > 0) throw new Error(`${name} ${JSON.stringify(labels)}: ${more.length + 1} samples`)
    return sample?.value === undefined ? undefined : Number(sample.value)
  }
}

/** GET /metrics over real HTTP with the bearer token; throws unless it answers 200. */
export async function scrape(baseUrl: string, token: string): Promise<Exposition> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text}`)
  return new Exposition(text)
}
