CREATE TABLE "audit_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "audit_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor_kind" text NOT NULL,
	"actor_key_id" bigint,
	"actor_name" text NOT NULL,
	"action" text NOT NULL,
	"entity_type" text NOT NULL,
	"entity_id" text NOT NULL,
	"request_id" bigint,
	"jurisdiction_id" text,
	"changes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "audit_events_actor_kind_check" CHECK (actor_kind in ('key', 'cli', 'system')),
	CONSTRAINT "audit_events_key_actor_check" CHECK ((actor_kind = 'key') = (actor_key_id is not null))
);
--> statement-breakpoint
CREATE INDEX "audit_events_occurred_at_idx" ON "audit_events" USING btree ("occurred_at","id");--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "audit_events" USING btree ("actor_key_id","id");--> statement-breakpoint
CREATE INDEX "audit_events_request_idx" ON "audit_events" USING btree ("request_id","id") WHERE request_id is not null;--> statement-breakpoint
CREATE INDEX "audit_events_entity_idx" ON "audit_events" USING btree ("entity_type","entity_id","id");--> statement-breakpoint
-- Hand-written below: the audit trail is append-only whatever role writes (docs/audit.md).
-- The server's role owns its tables, so grants alone cannot stop it (an owner may always
-- grant itself back); a trigger refuses every UPDATE, DELETE and TRUNCATE instead, and
-- ENABLE ALWAYS makes it fire under session_replication_role = replica too, which a superuser
-- may set to skip ordinary triggers. Changing the schema (a migration) stays possible.
CREATE FUNCTION open311_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'audit entries are never changed or removed';
END $$;
--> statement-breakpoint
CREATE TRIGGER audit_events_append_only
  BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION open311_audit_append_only();
--> statement-breakpoint
-- TRUNCATE fires no row trigger: a statement trigger of its own.
CREATE TRIGGER audit_events_no_truncate
  BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION open311_audit_append_only();
--> statement-breakpoint
ALTER TABLE audit_events ENABLE ALWAYS TRIGGER audit_events_append_only;
--> statement-breakpoint
ALTER TABLE audit_events ENABLE ALWAYS TRIGGER audit_events_no_truncate;
--> statement-breakpoint
-- For the record (PUBLIC holds none of these by default): no role gains them through PUBLIC.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;
