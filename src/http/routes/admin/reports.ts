import { Readable } from 'node:stream'
import { stringify } from 'csv-stringify'
import type { FastifyInstance } from 'fastify'
import { REQUEST_CHANNELS } from '../../../db/schema.js'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import {
  REPORT_DIMENSIONS,
  REPORT_PERIODS,
  type ReportDimension,
  type ReportPeriod,
  resolveReportQuery,
} from '../../../domain/reports/report-query.js'
import { type ReportName, REPORT_NAMES, REPORTS, runReport } from '../../../domain/reports/reports.js'
import type { RequestChannel } from '../../../domain/requests/channels.js'
import { adminErrors } from '../../schemas/admin.js'

interface ReportQuerystring {
  jurisdiction_id?: string
  from?: string
  to?: string
  group?: ReportPeriod
  by?: string
  service?: string
  department?: string
  channel?: RequestChannel
  area?: string
}

const DIMENSION = `(${REPORT_DIMENSIONS.join('|')})`

const reportQuerystring = {
  type: 'object',
  properties: {
    jurisdiction_id: { type: 'string' },
    from: { type: 'string', format: 'date', description: 'First local day (YYYY-MM-DD); default: 29 days before `to`' },
    to: { type: 'string', format: 'date', description: 'Last local day, included; default: today in the jurisdiction' },
    group: { type: 'string', enum: REPORT_PERIODS, default: 'day', description: 'Rows per day, ISO week (from Monday) or month' },
    by: {
      type: 'string',
      pattern: `^${DIMENSION}(,${DIMENSION}){0,3}$`,
      description: `Grouping, comma-separated: ${REPORT_DIMENSIONS.join(', ')}`,
    },
    service: { type: 'string', maxLength: 64, description: 'Only this service code' },
    department: { type: 'string', maxLength: 64, description: 'Only this department code' },
    channel: { type: 'string', enum: REQUEST_CHANNELS, description: 'Only requests that came in this way' },
    area: { type: 'string', maxLength: 200, description: 'Only this routing area (a route’s area_name)' },
  },
} as const

const figure = { type: ['number', 'null'] } as const
const text = { type: ['string', 'null'] } as const

function reportAnswerSchema(name: ReportName) {
  const { figures, periods } = REPORTS[name]
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
          },
        },
      },
    },
  }
}

const DESCRIPTIONS: Record<ReportName, string> = {
  volume: 'Requests created, closed and still open (of those created), and created by channel',
  timeliness: 'Time to acknowledge and to close (median, p90, seconds), SLA compliance, breaches, overdue now',
  backlog: 'Open requests now by age: 0–2, 3–7, 8–30 and over 30 days (a snapshot: no range, no periods)',
  duplicates: 'Requests created and how many of them are duplicates',
  templates: 'Public notes by operators and departments, and the share from pre-approved answers',
}

/**
 * The managers' reports, `GET /admin/v1/reports/{name}.{json,csv}`: the same rows in both
 * formats (docs/reports.md). CSV is streamed row by row as it is rendered.
 */
export default async function adminReportRoutes(app: FastifyInstance) {
  for (const name of REPORT_NAMES) {
    app.get<{ Params: { format: 'json' | 'csv' }; Querystring: ReportQuerystring }>(
      `/reports/${name}.:format`,
      {
        schema: {
          tags: ['Reports'],
          summary: `Report: ${name}`,
          description: `${DESCRIPTIONS[name]}. From the daily rollups; figures, periods and grouping: docs/reports.md.`,
          params: { type: 'object', required: ['format'], properties: { format: { type: 'string', enum: ['json', 'csv'] } } },
          querystring: reportQuerystring,
          response: {
            200: {
              description: 'The report',
              content: { 'application/json': { schema: reportAnswerSchema(name) }, 'text/csv': { schema: { type: 'string' } } },
            },
            ...adminErrors,
          },
        },
      },
      async (request, reply) => {
        const { jurisdiction_id, by, ...asked } = request.query
        const jurisdiction = await resolveJurisdiction(app.db, jurisdiction_id)
        const query = await resolveReportQuery(
          app.db,
          jurisdiction,
          { ...asked, ...(by !== undefined ? { by: by.split(',') as ReportDimension[] } : {}) },
          REPORTS[name].defaultBy,
        )
        const report = await runReport(app.db, name, query)
        if (request.params.format === 'csv') {
          reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}-${query.from}-${query.to}.csv"`)
          return Readable.from(report.rows).pipe(stringify({ header: true, columns: report.columns, record_delimiter: '\r\n', escape_formulas: true }))
        }
        const periods = REPORTS[name].periods
        return {
          report: name,
          jurisdiction_id: jurisdiction.id,
          time_zone: jurisdiction.timeZone,
          from: periods ? query.from : null,
          to: periods ? query.to : null,
          group: periods ? query.group : null,
          by: query.by,
          filters: query.asked,
          columns: report.columns,
          rows: report.rows,
        }
      },
    )
  }
}
