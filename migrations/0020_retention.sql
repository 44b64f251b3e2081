ALTER TABLE "jurisdictions" ADD COLUMN "anonymise_after_days" integer;--> statement-breakpoint
ALTER TABLE "request_reporters" ADD COLUMN "anonymised_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "request_reporters_not_anonymised_idx" ON "request_reporters" USING btree ("request_id") WHERE anonymised_at is null;--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD CONSTRAINT "jurisdictions_anonymise_after_days_check" CHECK (anonymise_after_days > 0 is not false);