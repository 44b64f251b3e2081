import type { FastifyInstance } from 'fastify'
import { callerJurisdiction } from '../../auth.js'
import { type ReportDimension, type ReportPeriod, resolveReportQuery } from '../../../domain/reports/report-query.js'
import { type ReportName, REPORT_NAMES, REPORTS, runReport } from '../../../domain/reports/reports.js'
import type { RequestChannel } from '../../../domain/requests/channels.js'
import { sendReportCsv } from '../../report-csv.js'
import { adminErrors } from '../../schemas/admin.js'
import { reportAnswerSchema, reportQuerystring } from '../../schemas/reports.js'

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
        config: { adminRead: true },
        schema: {
          tags: ['Reports'],
          summary: `Report: ${name}`,
          description: `${DESCRIPTIONS[name]}. From the daily rollups; figures, periods and grouping: docs/reports.md.`,
          params: { type: 'object', required: ['format'], properties: { format: { type: 'string', enum: ['json', 'csv'] } } },
          querystring: reportQuerystring,
          response: {
            200: {
              description: 'The report',
              content: { 'application/json': { schema: reportAnswerSchema(REPORTS[name].figures, REPORTS[name].periods) }, 'text/csv': { schema: { type: 'string' } } },
            },
            ...adminErrors,
          },
        },
      },
      async (request, reply) => {
        const { jurisdiction_id, by, ...asked } = request.query
        const jurisdiction = await callerJurisdiction(request, jurisdiction_id)
        const query = await resolveReportQuery(
          app.db,
          jurisdiction,
          { ...asked, ...(by !== undefined ? { by: by.split(',') as ReportDimension[] } : {}) },
          { by: REPORTS[name].defaultBy },
        )
        const report = await runReport(app.db, name, query)
        if (request.params.format === 'csv') {
          return sendReportCsv(reply, report, `${name}-${query.from}-${query.to}`)
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
