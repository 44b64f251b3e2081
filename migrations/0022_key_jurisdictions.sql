ALTER TABLE "api_keys" ADD COLUMN "jurisdiction_ids" text[];--> statement-breakpoint
CREATE INDEX "audit_events_jurisdiction_idx" ON "audit_events" USING btree ("jurisdiction_id","id");--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_jurisdiction_ids_check" CHECK (jurisdiction_ids is null or cardinality(jurisdiction_ids) > 0);--> statement-breakpoint
-- A department's key acts only in its department's jurisdiction (what it could reach before).
UPDATE "api_keys" SET "jurisdiction_ids" = ARRAY[d."jurisdiction_id"] FROM "departments" d WHERE d."id" = "api_keys"."department_id";
