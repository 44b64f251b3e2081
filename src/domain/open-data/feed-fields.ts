/**
 * A feed's columns and how PostgreSQL renders a row of them: a CRLF-terminated RFC 4180 CSV
 * line, or a JSON object as text. Rendering in SQL (C code) instead of Node leaves Node only
 * joining strings, which is what lets a feed keep pace with COPY.
 */
export type FieldType = 'string' | 'number' | 'datetime' | 'boolean' | 'list' | 'object'

export interface FeedField {
  name: string
  type: FieldType
  description: string
  /** SQL for the value (constant text; never built from input). */
  value: string
}

/** Lists in CSV cells (the Data Package describes it). */
export const LIST_SEPARATOR = '; '

/** Datetimes in UTC with microseconds: exact, so a harvester's `updated_after` round-trips. */
export const isoText = (value: string) => `to_char(${value} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
const quoted = (text: string) => `'"' || replace(${text}, '"', '""') || '"'`

/**
 * One RFC 4180 cell: text is always quoted (so an empty string and a missing value differ:
 * `""` and nothing), numbers, datetimes and booleans are not.
 */
function csvCell(field: FeedField): string {
  switch (field.type) {
    case 'string':
      return `coalesce(${quoted(field.value)}, '')`
    case 'number':
      return `coalesce((${field.value})::text, '')`
    case 'datetime':
      return `coalesce(${isoText(field.value)}, '')`
    case 'boolean':
      return `case when ${field.value} then 'true' else 'false' end`
    case 'list':
      return `coalesce(${quoted(`array_to_string(${field.value}, '${LIST_SEPARATOR}')`)}, '')`
    case 'object':
      return quoted(`(${field.value})::text`)
  }
}

function jsonValue(field: FeedField): string {
  switch (field.type) {
    case 'datetime':
      return isoText(field.value)
    case 'list':
      return `coalesce(to_json(${field.value}), '[]'::json)`
    default:
      return field.value
  }
}

export const csvHeader = (fields: readonly FeedField[]) => `${fields.map((f) => f.name).join(',')}\r\n`

/** SQL for one CRLF-terminated CSV line. */
export const csvLine = (fields: readonly FeedField[]) => `${fields.map(csvCell).join(` || ',' || `)} || E'\\r\\n'`

/** SQL for one JSON object, as text. */
export const jsonObject = (fields: readonly FeedField[]) =>
  `json_build_object(${fields.map((f) => `'${f.name}', ${jsonValue(f)}`).join(', ')})`
