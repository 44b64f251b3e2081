/**
 * Creating a service request: the request, its reporter's personal data (apart), its first
 * history entry, its work orders (one per routed department, with their outbox events) and,
 * for batch/blackbox services, its token — all in one transaction.
 */
import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/database.js'
import { requestReporters, requestTokens, requestUpdates, serviceRequests } from '../../db/schema.js'
import { badRequest } from '../../open311/errors.js'
import type { StoredService } from '../catalog/catalog.js'
import type { Jurisdiction } from '../jurisdictions.js'
import { openWorkOrders } from '../work-orders/work-orders.js'
import type { Submission } from './submission.js'

/** NOTIFY channel that wakes the token acceptor. */
export const TOKEN_PENDING_CHANNEL = 'open311_token_pending'

export interface CreatedRequest {
  serviceRequestId: string
  token?: string
  serviceNotice: string | null
  accountId: string | null
}

export interface NewRequest {
  jurisdiction: Jurisdiction
  service: StoredService
  submission: Submission
  apiKeyId?: number
  channel: string
}

/** Refuses a point outside the jurisdiction's boundary, when it has one. */
export async function assertInsideJurisdiction(db: Db, jurisdiction: Jurisdiction, submission: Submission) {
  if (!jurisdiction.boundary || submission.lat === undefined || submission.long === undefined) return
  const [row] = await queryRows<{ inside: boolean }>(
    db,
    sql`select ST_Covers(boundary, ST_SetSRID(ST_MakePoint(${submission.long}, ${submission.lat}), 4326)::geography) as inside
        from jurisdictions where id = ${jurisdiction.id}`,
  )
  if (!row?.inside) throw badRequest('lat/long: the location is outside the jurisdiction')
}

/** Must run inside the caller's transaction. */
export async function insertServiceRequest(tx: Db, input: NewRequest): Promise<CreatedRequest> {
  const { submission, service } = input
  const location =
    submission.lat !== undefined && submission.long !== undefined
      ? sql`ST_SetSRID(ST_MakePoint(${submission.long}, ${submission.lat}), 4326)::geography`
      : null
  const [row] = await tx
    .insert(serviceRequests)
    .values({
      jurisdictionId: input.jurisdiction.id,
      serviceId: service.id,
      description: submission.description ?? null,
      address: submission.addressString ?? null,
      addressId: submission.addressId ?? null,
      zipcode: submission.zipcode ?? null,
      location: location as unknown as string,
      mediaUrls: submission.mediaUrls,
      attributes: submission.attributes,
      channel: input.channel,
      submittedByKeyId: input.apiKeyId ?? null,
    })
    .returning({ id: serviceRequests.id, publicId: serviceRequests.publicId, serviceNotice: serviceRequests.serviceNotice })

  const { reporter } = submission
  if (Object.keys(reporter).length > 0) await tx.insert(requestReporters).values({ requestId: row!.id, ...reporter })
  await tx.insert(requestUpdates).values({
    requestId: row!.id,
    status: 'open',
    detailedStatus: 'submitted',
    description: 'Request received',
    source: 'citizen',
  })

  // Work orders and their outbox events commit with the request, or not at all.
  await openWorkOrders(tx, { id: row!.id, serviceId: service.id })

  const created: CreatedRequest = {
    serviceRequestId: row!.publicId,
    serviceNotice: row!.serviceNotice,
    accountId: reporter.accountId ?? null,
  }
  if (service.type !== 'realtime') {
    created.token = randomBytes(16).toString('base64url')
    await tx.insert(requestTokens).values({ token: created.token, requestId: row!.id })
    await tx.execute(sql`select pg_notify(${TOKEN_PENDING_CHANNEL}, '')`)
  }
  return created
}
