/**
 * Operator alerts (`GET /admin/v1/alerts`): what a person at the 311 desk must look at — a
 * department's endpoint disabled, deliveries dead-lettered, work gone past its deadline.
 * Written in the transaction of the change they report, so an alert exists exactly when it did.
 */
import { sql } from 'drizzle-orm'
import type { Db } from '../db/database.js'

export type AlertKind = 'endpoint_disabled' | 'delivery_dead_lettered' | 'work_order_overdue'

export async function raiseOperatorAlert(tx: Db, kind: AlertKind, departmentId: number, message: string) {
  await tx.execute(sql`insert into operator_alerts (kind, department_id, message) values (${kind}, ${departmentId}, ${message})`)
}
