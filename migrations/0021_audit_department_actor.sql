-- A department as an actor (docs/audit.md): its reports through either door (signed webhook,
-- mySociety's POST with its inbound key) are recorded as the department, its id copied like a
-- key's (no foreign key: an entry outlives what it names). Only columns and checks: no row is
-- rewritten, so the append-only triggers of 0019 are not involved.
ALTER TABLE "audit_events" DROP CONSTRAINT "audit_events_actor_kind_check";--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "actor_department_id" bigint;--> statement-breakpoint
ALTER TABLE "audit_events" ADD CONSTRAINT "audit_events_department_actor_check" CHECK ((actor_kind = 'department') = (actor_department_id is not null));--> statement-breakpoint
ALTER TABLE "audit_events" ADD CONSTRAINT "audit_events_actor_kind_check" CHECK (actor_kind in ('key', 'department', 'cli', 'system'));