import type { FastifyInstance } from 'fastify'
import { resolveJurisdiction } from '../../../domain/jurisdictions.js'
import { MINIMUM_CELL, publicStats, type StatsRequest } from '../../../domain/open-data/stats.js'
import { PUBLIC_STATS } from '../../../domain/reports/reports.js'
import { sendReportCsv } from '../../report-csv.js'
import { errorResponses } from '../../schemas/errors.js'
import { reportAnswerSchema, statsQuerystring } from '../../schemas/reports.js'

/**
 * `GET /open-data/v1/stats.{json,csv}`: the public aggregate of the managers' reports — counts
 * and medians per period and service, small cells suppressed (src/domain/open-data/stats.ts).
 */
export default async function statsRoutes(app: FastifyInstance) {
  app.get<{ Params: { format: 'json' | 'csv' }; Querystring: StatsRequest & { jurisdiction_id?: string } }>(
    '/stats.:format',
    {
      schema: {
        tags: ['Open data'],
        summary: 'Statistics: requests, closings and median times per period and service',
        description:
          `Public requests only, from the daily rollups; no request-level data. A count from 1 to ${MINIMUM_CELL - 1}, and a median ` +
          `over fewer than ${MINIMUM_CELL} values, is null and the row's \`suppressed\` is true. Default: the last 365 days by month. docs/open-data.md.`,
        params: { type: 'object', required: ['format'], properties: { format: { type: 'string', enum: ['json', 'csv'] } } },
        querystring: statsQuerystring,
        response: {
          200: {
            description: 'The statistics',
            content: {
              'application/json': { schema: reportAnswerSchema(PUBLIC_STATS.figures, true, { suppressed: { type: 'boolean' } }) },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { jurisdiction_id, ...asked } = request.query
      const jurisdiction = await resolveJurisdiction(app.db, jurisdiction_id)
      const { query, report } = await publicStats(app.db, jurisdiction, asked)
      // Figures of past days settle; today's move all day. Five minutes, as the catalogs.
      reply.header('cache-control', 'public, max-age=300')
      if (request.params.format === 'csv') return sendReportCsv(reply, report, `stats-${query.from}-${query.to}`)
      return {
        report: 'stats',
        jurisdiction_id: jurisdiction.id,
        time_zone: jurisdiction.timeZone,
        from: query.from,
        to: query.to,
        group: query.group,
        by: query.by,
        filters: query.asked,
        columns: report.columns,
        rows: report.rows,
      }
    },
  )
}
