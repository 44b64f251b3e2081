/**
 * How a request came in — web, app, phone, chat, … (REQUEST_CHANNELS) — for the reports that
 * group by it and the feeds that publish it. Every API key has a default channel (a mobile
 * app's key: `app`; a chat desk's: `chat`), set when the key is created. Only a key trusted to
 * say how each report arrived — a desk's or an operator's, holding `requests:set-channel` or
 * `admin` — may name another in the form's `channel` field: a plain client key could otherwise
 * file its reports under any channel and skew what managers staff by.
 */
import { REQUEST_CHANNELS, type RequestChannel } from '../../db/schema.js'
import type { ApiKeyScope } from '../api-keys/api-keys.js'
import { type DomainProblem, forbidden, invalid } from '../errors.js'
import { type FormFields, single } from './submission.js'

export { REQUEST_CHANNELS, type RequestChannel }

/** What a key is created with when nobody names a channel: GeoReport clients are mostly apps. */
export const DEFAULT_KEY_CHANNEL: RequestChannel = 'app'

/** The scope that lets a key name the channel of each request it submits. */
export const SET_CHANNEL_SCOPE = 'requests:set-channel' satisfies ApiKeyScope

export const isRequestChannel = (value: string): value is RequestChannel => (REQUEST_CHANNELS as readonly string[]).includes(value)

/** Whether a key with these scopes may name the channel (operators' `admin` keys may too). */
export const mayChooseChannel = (scopes: readonly string[]) => scopes.includes(SET_CHANNEL_SCOPE) || scopes.includes('admin')

/**
 * The channel a new request is stored with: the form's `channel` from a key that may choose
 * one, else the key's default. A key that may not choose is refused (forbidden) whatever value
 * it sent — before the value or the rest of the report is looked at, as a key's refusal comes
 * before validation — so nothing is created under a channel it was not trusted to name.
 */
export function requestChannel(fields: FormFields, key: { scopes: readonly string[]; default_channel: RequestChannel }): RequestChannel {
  const problems: DomainProblem[] = []
  const given = single(fields, 'channel', problems)
  if (given === undefined) return key.default_channel
  if (!mayChooseChannel(key.scopes)) {
    throw forbidden(
      `channel: this API key may not set the channel (its requests are recorded as "${key.default_channel}"); ` +
        `a desk or operator key needs the ${SET_CHANNEL_SCOPE} scope`,
    )
  }
  if (problems.length > 0) throw invalid(problems)
  if (!isRequestChannel(given)) throw invalid(`channel: "${given}" is not one of ${REQUEST_CHANNELS.join(', ')}`)
  return given
}
