/** Schemas of the reports (admin) and of the open-data stats built from the same rollups (docs/reports.md). */
import { REQUEST_CHANNELS } from '../../db/schema.js'
import { REPORT_DIMENSIONS, REPORT_PERIODS } from '../../domain/reports/report-query.js'

const DIMENSION = `(${REPORT_DIMENSIONS.join('|')})`

/** What every report takes: the range of local days, the period, the service. */
const rangeProperties = {
  jurisdiction_id: { type: 'string' },
  from: { type: 'string', format: 'date', description: 'First local day (YYYY-MM-DD); default: counted back from `to`' },
  to: { type: 'string', format: 'date', description: 'Last local day, included; default: today in the jurisdiction' },
  service: { type: 'string', maxLength: 64, description: 'Only this service code' },
} as const

export const reportQuerystring = {
  type: 'object',
  properties: {
    ...rangeProperties,
    group: { type: 'string', enum: REPORT_PERIODS, default: 'day', description: 'Rows per day, ISO week (from Monday) or month' },
    by: {
      type: 'string',
      pattern: `^${DIMENSION}(,${DIMENSION}){0,3}$`,
      description: `Grouping, comma-separated: ${REPORT_DIMENSIONS.join(', ')}`,
    },
    department: { type: 'string', maxLength: 64, description: 'Only this department code' },
    channel: { type: 'string', enum: REQUEST_CHANNELS, description: 'Only requests that came in this way' },
    area: { type: 'string', maxLength: 200, description: 'Only this routing area (a route’s area_name)' },
  },
} as const

export const statsQuerystring = {
  type: 'object',
  properties: {
    ...rangeProperties,
    group: { type: 'string', enum: REPORT_PERIODS, default: 'month', description: 'Rows per day, ISO week (from Monday) or month' },
  },
} as const

const figure = { type: ['number', 'null'] } as const
const text = { type: ['string', 'null'] } as const

/** A report's JSON answer: the request as understood, then columns and rows with those keys. */
export function reportAnswerSchema(figures: readonly string[], periods: boolean, extra: Record<string, object> = {}) {
  return {
    type: 'object',
    properties: {
      report: { type: 'string' },
      jurisdiction_id: { type: 'string' },
      time_zone: { type: 'string' },
      from: text,
      to: text,
      group: text,
      by: { type: 'array', items: { type: 'string' } },
      filters: { type: 'object', additionalProperties: { type: 'string' } },
      columns: { type: 'array', items: { type: 'string' } },
      rows: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            ...(periods ? { period: { type: 'string', format: 'date' } } : {}),
            service_code: text,
            department_code: text,
            channel: text,
            area: text,
            ...Object.fromEntries(figures.map((f) => [f, figure])),
            ...extra,
          },
        },
      },
    },
  }
}
