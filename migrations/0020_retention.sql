ALTER TABLE "jurisdictions" ADD COLUMN "anonymise_after_days" integer;--> statement-breakpoint
ALTER TABLE "request_reporters" ADD COLUMN "anonymised_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD CONSTRAINT "jurisdictions_anonymise_after_days_check" CHECK (anonymise_after_days > 0 is not false);