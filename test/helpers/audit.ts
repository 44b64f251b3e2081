/**
 * The audit trail as tests read it: an entry as the admin API answers it (AuditEventView, with
 * its time as JSON text), and a reader of the entries added to the table since its last call.
 */
import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../src/db/database.js'
import type { AuditEventView } from '../../src/domain/audit/audit-log.js'

export type AuditEntry = Omit<AuditEventView, 'occurred_at' | 'actor_kind'> & { occurred_at: string; actor_kind: string }

/** `newEntries()`: the entries written since the previous call (all, the first time), oldest first. */
export function auditEntriesSince(db: Db) {
  let seen = 0
  return async function newEntries(): Promise<AuditEntry[]> {
    const added = await queryRows<AuditEntry>(
      db,
      sql`select a.id::int as id, a.occurred_at, actor_kind, actor_key_id::int as actor_key_id, actor_department_id::int as actor_department_id,
                 actor_name, action, entity_type, entity_id, r.public_id as service_request_id, a.jurisdiction_id, changes
          from audit_events a left join service_requests r on r.id = a.request_id where a.id > ${seen} order by a.id`,
    )
    seen = added.at(-1)?.id ?? seen
    return added
  }
}
