import { Readable } from 'node:stream'
import { stringify } from 'csv-stringify'
import type { FastifyReply } from 'fastify'

/**
 * A report (or any table of rows: the audit trail) as RFC 4180 CSV (CRLF, a header row with
 * the JSON rows' keys), streamed row by row; booleans are `true`/`false` as in the open-data
 * feeds; a text cell that a spreadsheet would run as a formula (= + - @) is prefixed with `'`.
 */
export function sendReportCsv(reply: FastifyReply, report: { columns: string[]; rows: Iterable<Record<string, unknown>> }, filename: string) {
  reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${filename}.csv"`)
  return Readable.from(report.rows).pipe(stringify({ header: true, columns: report.columns, record_delimiter: '\r\n', escape_formulas: true, cast: { boolean: String } }))
}
