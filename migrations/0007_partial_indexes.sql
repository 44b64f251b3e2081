DROP INDEX "request_updates_external_key";--> statement-breakpoint
DROP INDEX "service_requests_parent_idx";--> statement-breakpoint
CREATE UNIQUE INDEX "request_updates_external_key" ON "request_updates" USING btree ("department_id","external_update_id") WHERE "request_updates"."external_update_id" is not null;--> statement-breakpoint
CREATE INDEX "service_requests_parent_idx" ON "service_requests" USING btree ("parent_request_id") WHERE "service_requests"."parent_request_id" is not null;