ALTER TABLE "jurisdictions" ADD COLUMN "default_locale" text DEFAULT 'en' NOT NULL;--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD COLUMN "locales" text[] DEFAULT '{en}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "request_updates" ADD COLUMN "description_translations" jsonb;--> statement-breakpoint
ALTER TABLE "response_templates" ADD COLUMN "translations" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "service_attributes" ADD COLUMN "translations" jsonb;--> statement-breakpoint
ALTER TABLE "services" ADD COLUMN "translations" jsonb;--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD CONSTRAINT "jurisdictions_default_locale_check" CHECK (default_locale = any(locales));