import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify'
import { type ApiKeyScope, type ApiKeySummary, verifyApiKey, verifyDepartmentOrClientKey } from '../domain/api-keys/api-keys.js'
import { type AuditActor, keyActor } from '../domain/audit/audit.js'
import type { PhotoReader } from '../domain/media/media-store.js'
import type { Reader } from '../domain/requests/sensitive-location.js'
import { forbidden } from '../open311/errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKeySummary
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null
  return match?.[1]
}

/** A preHandler that admits only a valid, unrevoked `Authorization: Bearer` key holding `scope`. */
export function requireBearerScope(scope: ApiKeyScope): onRequestAsyncHookHandler {
  return async function checkScope(request) {
    const key = await verifyApiKey(request.server.db, bearerToken(request), scope)
    if (!key) throw forbidden(`a bearer API key with the "${scope}" scope is required`)
    request.apiKey = key
  }
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
 * Who reads a GeoReport GET: an operator when it carries `Authorization: Bearer` with a valid
 * admin key, and sees sensitive services' requests as they are; otherwise the public, who sees
 * them generalised. GETs need no key, so a missing, invalid or revoked one is not refused: it
 * reads as the public. Only the header counts: a key in a URL ends up in logs and histories.
 */
export async function readerOf(request: FastifyRequest, reply: FastifyReply): Promise<Reader> {
  const token = bearerToken(request)
  if (!token || !(await verifyApiKey(request.server.db, token, 'admin'))) return 'public'
  // An operator's answer holds what the public must not see: no cache may keep it for another.
  reply.header('cache-control', 'private, no-store')
  return 'operator'
}

/**
 * Who asks for a photo: an operator (readerOf), a department with its own key (Bearer: the
 * photos of its work orders' requests), else the public. Like readerOf, a key that is not
 * valid reads as the public, and a keyed answer is kept from shared caches.
 */
export async function photoReaderOf(request: FastifyRequest, reply: FastifyReply): Promise<PhotoReader> {
  if ((await readerOf(request, reply)) === 'operator') return 'operator'
  const key = await verifyApiKey(request.server.db, bearerToken(request), 'department')
  if (key?.department_id == null) return 'public'
  reply.header('cache-control', 'private, no-store')
  return { departmentId: key.department_id }
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
