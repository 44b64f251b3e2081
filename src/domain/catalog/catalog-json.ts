/**
 * Catalog text to a value, for the CLI's files and the admin API's bodies alike. JSON.parse does
 * the parsing; when it fails, jsonc-parser (strict: no comments, no trailing commas) finds where,
 * because V8's own message gives a character offset at best (Node 20: none at all for some
 * mistakes), and an operator fixing a file needs the line and column.
 */
import { createRequire } from 'node:module'
import type { ParseError } from 'jsonc-parser'
import type { Catalog } from './catalog-schema.js'
import { CatalogError, validateCatalog } from './validate-catalog.js'

// Required, not imported: the package's main file is UMD, whose names Node's ESM loader cannot
// see, and loaders that read its "module" field (tsx) see no default export.
const jsonc = createRequire(import.meta.url)('jsonc-parser') as typeof import('jsonc-parser')

/** What each syntax error means, in words (jsonc-parser's codes by name). */
const SYNTAX_ERRORS: Record<string, string> = {
  InvalidSymbol: 'this is not JSON (strings and names take double quotes; true, false and null are lower case)',
  InvalidNumberFormat: 'not a valid number',
  PropertyNameExpected: 'a property name in double quotes was expected',
  ValueExpected: 'a value was expected',
  ColonExpected: 'a ":" was expected after the property name',
  CommaExpected: 'a "," was expected between the items',
  CloseBraceExpected: 'a "}" was expected',
  CloseBracketExpected: 'a "]" was expected',
  EndOfFileExpected: 'the document already ended: extra text after it',
  InvalidCommentToken: 'comments are not allowed in JSON',
  UnexpectedEndOfComment: 'comments are not allowed in JSON',
  UnexpectedEndOfString: 'the text ends inside a string (a missing closing quote?)',
  UnexpectedEndOfNumber: 'the text ends inside a number',
  InvalidUnicode: 'an invalid \\u escape (four hex digits follow \\u)',
  InvalidEscapeCharacter: 'an invalid escape (JSON knows \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX)',
  InvalidCharacter: 'a control character (a tab or a line break) inside a string: write it as \\t or \\n',
}

/** Parses catalog text; a syntax error is a CatalogError at `(file)` with its line and column. */
export function parseCatalogJson(text: string, source: string): unknown {
  // Editors on Windows start UTF-8 files with a byte-order mark, which JSON.parse refuses.
  const json = text.startsWith('\uFEFF') ? text.slice(1) : text
  if (json.trim() === '') throw new CatalogError(source, [{ field: '(file)', detail: 'is empty: expected a catalog (JSON)' }])
  try {
    return JSON.parse(json)
  } catch (err) {
    throw new CatalogError(source, [{ field: '(file)', detail: `is not valid JSON: ${locateSyntaxError(json) ?? (err as Error).message}` }])
  }
}

/** Parses and validates catalog text: every problem, or the catalog with its defaults. */
export function readCatalog(text: string, source: string): Catalog {
  return validateCatalog(parseCatalogJson(text, source), source)
}

function locateSyntaxError(json: string): string | undefined {
  const errors: ParseError[] = []
  jsonc.parse(json, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const first = errors[0]
  if (!first) return undefined
  const code = jsonc.printParseErrorCode(first.error)
  const found = json.slice(first.offset, first.offset + Math.max(first.length, 1))
  const what = found ? `found ${JSON.stringify(found)}` : 'found the end of the text'
  const trailingComma = /,\s*$/.test(json.slice(0, first.offset)) && /^[}\]]/.test(found) ? ' (a comma before a closing bracket is not allowed)' : ''
  // Lines as editors count them (\r\n, \r or \n); columns in characters, from 1.
  const lines = json.slice(0, first.offset).split(/\r\n|\r|\n/)
  return `line ${lines.length}, column ${lines.at(-1)!.length + 1}: ${SYNTAX_ERRORS[code] ?? code}, ${what}${trailingComma}`
}
