import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify'
import { type ApiKeySummary, verifyApiKey, verifyDepartmentOrClientKey } from '../domain/api-keys/api-keys.js'
import { keyActsIn, resolveKeyJurisdiction } from '../domain/api-keys/key-jurisdictions.js'
import { type AuditActor, keyActor } from '../domain/audit/audit.js'
import type { PhotoReader } from '../domain/media/media-store.js'
import type { Jurisdiction } from '../domain/jurisdictions.js'
import type { Reader } from '../domain/requests/sensitive-location.js'
import { forbidden } from '../open311/errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKeySummary
  }
  interface FastifyContextConfig {
    /** An admin route that changes nothing, open to `admin:read` keys as well (requireAdminKey). */
    adminRead?: boolean
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null
  return match?.[1]
}

/**
 * The admin API's key check (onRequest, before any body is read): a key with the `admin` scope,
 * or on a route marked `config: { adminRead: true }` one with `admin:read`.
 */
export const requireAdminKey: onRequestAsyncHookHandler = async function requireAdminKey(request) {
  const key = await verifyApiKey(request.server.db, bearerToken(request), ['admin', 'admin:read'])
  if (!key) throw forbidden('a bearer API key with the "admin" scope is required')
  if (!key.scopes.includes('admin') && !request.routeOptions.config.adminRead) {
    throw forbidden('this key has the read-only "admin:read" scope; this call changes something and needs the "admin" scope')
  }
  request.apiKey = key
}

/**
 * The jurisdiction a keyed call (admin, a client's or a department's write) acts in: the one it
 * names or the key's only one, which the key must act in (domain/api-keys/key-jurisdictions.ts).
 * Every keyed route resolves its jurisdiction through this, never through resolveJurisdiction alone.
 */
export function callerJurisdiction(request: FastifyRequest, requestedId: string | undefined): Promise<Jurisdiction> {
  if (!request.apiKey) throw new Error('callerJurisdiction: the request has no authenticated key')
  return resolveKeyJurisdiction(request.server.db, request.apiKey, requestedId)
}

/**
 * Who an audit entry names for this request's changes: the key that authenticated it. Only
 * routes behind a key check call it; one without a key is a bug, refused rather than
 * recorded as nobody.
 */
export function auditActorOf(request: FastifyRequest): AuditActor {
  if (!request.apiKey) throw new Error('auditActorOf: the request has no authenticated key')
  return keyActor(request.apiKey)
}

/**
 * Who reads a GeoReport GET of `jurisdiction`: an operator when it carries `Authorization:
 * Bearer` with a valid admin key acting in that jurisdiction, and sees sensitive services'
 * requests as they are; otherwise the public, who sees them generalised. GETs need no key, so a
 * missing, invalid, revoked or other city's key is not refused: it reads as the public. Only
 * the header counts: a key in a URL ends up in logs and histories.
 */
export async function readerOf(request: FastifyRequest, reply: FastifyReply, jurisdiction: Jurisdiction): Promise<Reader> {
  const token = bearerToken(request)
  const key = token ? await verifyApiKey(request.server.db, token, 'admin') : null
  if (!key || !keyActsIn(key, jurisdiction.id)) return 'public'
  // An operator's answer holds what the public must not see: no cache may keep it for another.
  reply.header('cache-control', 'private, no-store')
  return 'operator'
}

/**
 * Who asks for a photo: an operator (an admin key: of every jurisdiction, or of its own, where
 * it sees what an operator sees and elsewhere what the public sees), a department with its own
 * key (Bearer: the photos of its work orders' requests), else the public. Like readerOf, a key
 * that is not valid reads as the public, and a keyed answer is kept from shared caches.
 */
export async function photoReaderOf(request: FastifyRequest, reply: FastifyReply): Promise<PhotoReader> {
  const token = bearerToken(request)
  if (!token) return 'public'
  const key = await verifyApiKey(request.server.db, token, ['admin', 'department'])
  if (!key) return 'public'
  reply.header('cache-control', 'private, no-store')
  if (key.scopes.includes('admin')) return key.jurisdiction_ids === null ? 'operator' : { operatorOf: key.jurisdiction_ids }
  return key.department_id == null ? 'public' : { departmentId: key.department_id }
}

/**
 * POST Service Request's key: `api_key` in the form body or the query (as the spec's
 * clients send it) or `Authorization: Bearer`. Missing or invalid → 403, before validation.
 */
export const requireClientKey: preValidationAsyncHookHandler = async function requireClientKey(request) {
  const key = await verifyApiKey(request.server.db, offeredKey(request), 'requests:write')
  if (!key) throw forbidden()
  request.apiKey = key
}

/** The key a client offers: Authorization: Bearer, else `api_key` in the body (or the fields read so far), else in the query. */
function offeredKey(request: FastifyRequest, body = request.body as Record<string, unknown> | undefined): string | undefined {
  const fromBody = body?.api_key
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.api_key
  return [bearerToken(request), fromBody, fromQuery].find((v) => typeof v === 'string' && v !== '') as string | undefined
}

/**
 * Whether a multipart body's photos may be read: the caller's requests:write key, from the header,
 * the query or a form field sent before the first photo. Checked before any photo byte is held,
 * so a caller without a key cannot make the server buffer megabytes (requireClientKey runs only
 * once the whole body is read).
 */
export async function mayUploadPhotos(request: FastifyRequest, fieldsSoFar: Record<string, unknown>): Promise<boolean> {
  return (await verifyApiKey(request.server.db, offeredKey(request, fieldsSoFar), 'requests:write')) !== null
}

/**
 * POST servicerequestupdates serves two callers: a department (its inbound key) reporting
 * progress, or a client app (a requests:write key) adding a citizen's comment. One key
 * lookup decides which; a department key gets its department attached to the request.
 */
export const requireDepartmentOrClientKey: preValidationAsyncHookHandler = async function requireDepartmentOrClientKey(request) {
  const caller = await verifyDepartmentOrClientKey(request.server.db, offeredKey(request))
  if (!caller) throw forbidden()
  if (caller.department) request.department = caller.department
  request.apiKey = caller.key
}
