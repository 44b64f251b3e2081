/** Keyset cursors: round trip, bound to their filters, refused when forged or malformed. */
import t from 'tap'
import { DomainError } from '../../src/domain/errors.js'
import { decodeCursor, encodeCursor, filterHash } from '../../src/domain/open-data/cursor.js'

const position = { timeMicros: '1764700000123456', id: 42, horizonMicros: '1764700001000000' }

t.test('a cursor decodes to the position it was made from, with the same filters', async (t) => {
  const hash = filterHash({ service_code: ['pothole', 'graffiti'], status: 'open' })
  const cursor = encodeCursor(position, hash)
  t.match(cursor, /^[A-Za-z0-9_-]+$/, 'base64url: safe in a query string')
  t.same(decodeCursor(cursor, hash), position)
})

t.test('the filter hash ignores key and list order and absent filters', async (t) => {
  t.equal(
    filterHash({ status: 'open', service_code: ['graffiti', 'pothole'], bbox: undefined }),
    filterHash({ service_code: ['pothole', 'graffiti'], status: 'open' }),
  )
  t.not(filterHash({ status: 'open' }), filterHash({ status: 'closed' }))
  t.equal(filterHash({ status: 'open', service_code: [] }), filterHash({ status: 'open' }), 'an empty list is no filter')
  t.equal(filterHash({ service_code: ['graffiti', 'graffiti'] }), filterHash({ service_code: 'graffiti' }), 'a value given twice is given once')
})

t.test('a cursor used with other filters is refused', async (t) => {
  const cursor = encodeCursor(position, filterHash({ status: 'open' }))
  t.throws(() => decodeCursor(cursor, filterHash({ status: 'closed' })), DomainError)
})

t.test('malformed or forged cursors are refused as invalid', async (t) => {
  const hash = filterHash({})
  const forged = (parts: unknown) => Buffer.from(JSON.stringify(parts)).toString('base64url')
  for (const cursor of ['', 'not-a-cursor', forged([1, 2, 3, 4]), forged(['1', -1, '2', hash]), forged(['1e3', 1, '2', hash]), forged(['99999999999999999', 1, '2', hash]), forged(['01', 1, '2', hash])]) {
    try {
      decodeCursor(cursor, hash)
      t.fail(`${JSON.stringify(cursor)}: accepted`)
    } catch (error) {
      t.ok(error instanceof DomainError && error.kind === 'invalid', `${JSON.stringify(cursor)}: refused as invalid`)
    }
  }
})
