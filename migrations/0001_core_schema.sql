CREATE SEQUENCE "public"."service_request_number" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 100001 CACHE 1;--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "api_keys_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"key_id" text NOT NULL,
	"name" text NOT NULL,
	"secret_hash" text NOT NULL,
	"scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"api_key_id" bigint NOT NULL,
	"key" text NOT NULL,
	"request_fingerprint" text NOT NULL,
	"response_status" integer NOT NULL,
	"response_body" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_api_key_id_key_pk" PRIMARY KEY("api_key_id","key")
);
--> statement-breakpoint
CREATE TABLE "jurisdictions" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"time_zone" text NOT NULL,
	"boundary" "geography",
	"contact" text DEFAULT '' NOT NULL,
	"key_service" text DEFAULT '' NOT NULL,
	"catalog_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "request_reporters" (
	"request_id" bigint PRIMARY KEY NOT NULL,
	"email" text,
	"first_name" text,
	"last_name" text,
	"phone" text,
	"device_id" text,
	"account_id" text
);
--> statement-breakpoint
CREATE TABLE "request_tokens" (
	"token" text PRIMARY KEY NOT NULL,
	"request_id" bigint NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"failure_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resolved_at" timestamp with time zone,
	CONSTRAINT "request_tokens_state_check" CHECK (state in ('pending', 'accepted', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "request_updates" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "request_updates_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"update_id" text NOT NULL,
	"request_id" bigint NOT NULL,
	"status" text NOT NULL,
	"detailed_status" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"is_public" boolean DEFAULT true NOT NULL,
	"media_urls" text[] DEFAULT '{}'::text[] NOT NULL,
	"external_status_code" text,
	"source" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "request_updates_status_check" CHECK (status in ('open', 'closed')),
	CONSTRAINT "request_updates_source_check" CHECK (source in ('citizen', 'operator', 'department', 'system'))
);
--> statement-breakpoint
CREATE TABLE "service_attributes" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "service_attributes_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"service_id" bigint NOT NULL,
	"code" text NOT NULL,
	"position" integer NOT NULL,
	"variable" boolean DEFAULT true NOT NULL,
	"datatype" text NOT NULL,
	"required" boolean DEFAULT false NOT NULL,
	"datatype_description" text DEFAULT '' NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"values" jsonb,
	CONSTRAINT "service_attributes_datatype_check" CHECK (datatype in ('string', 'number', 'datetime', 'text', 'singlevaluelist', 'multivaluelist')),
	CONSTRAINT "service_attributes_position_positive" CHECK (position > 0)
);
--> statement-breakpoint
CREATE TABLE "service_requests" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "service_requests_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"public_id" text DEFAULT nextval('service_request_number')::text NOT NULL,
	"jurisdiction_id" text NOT NULL,
	"service_id" bigint NOT NULL,
	"status" text DEFAULT 'open' NOT NULL,
	"detailed_status" text DEFAULT 'submitted' NOT NULL,
	"status_notes" text,
	"agency_responsible" text,
	"service_notice" text,
	"description" text,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expected_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"address" text,
	"address_id" text,
	"zipcode" text,
	"location" "geography",
	"media_urls" text[] DEFAULT '{}'::text[] NOT NULL,
	"attributes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"channel" text,
	"parent_request_id" bigint,
	"is_public" boolean DEFAULT true NOT NULL,
	"submitted_by_key_id" bigint,
	CONSTRAINT "service_requests_status_check" CHECK (status in ('open', 'closed')),
	CONSTRAINT "service_requests_closed_at_matches_status" CHECK ((status = 'closed') = (closed_at is not null)),
	CONSTRAINT "service_requests_not_own_parent" CHECK (parent_request_id is null or parent_request_id <> id)
);
--> statement-breakpoint
CREATE TABLE "services" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "services_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"jurisdiction_id" text NOT NULL,
	"service_code" text NOT NULL,
	"service_name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"type" text DEFAULT 'realtime' NOT NULL,
	"keywords" text[] DEFAULT '{}'::text[] NOT NULL,
	"service_group" text DEFAULT '' NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "services_type_check" CHECK (type in ('realtime', 'batch', 'blackbox')),
	CONSTRAINT "services_code_url_safe" CHECK (service_code ~ '^[A-Za-z0-9_-]{1,64}$')
);
--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_api_key_id_api_keys_id_fk" FOREIGN KEY ("api_key_id") REFERENCES "public"."api_keys"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_reporters" ADD CONSTRAINT "request_reporters_request_id_service_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."service_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_tokens" ADD CONSTRAINT "request_tokens_request_id_service_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."service_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_updates" ADD CONSTRAINT "request_updates_request_id_service_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."service_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_attributes" ADD CONSTRAINT "service_attributes_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_requests" ADD CONSTRAINT "service_requests_jurisdiction_id_jurisdictions_id_fk" FOREIGN KEY ("jurisdiction_id") REFERENCES "public"."jurisdictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_requests" ADD CONSTRAINT "service_requests_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_requests" ADD CONSTRAINT "service_requests_submitted_by_key_id_api_keys_id_fk" FOREIGN KEY ("submitted_by_key_id") REFERENCES "public"."api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "services" ADD CONSTRAINT "services_jurisdiction_id_jurisdictions_id_fk" FOREIGN KEY ("jurisdiction_id") REFERENCES "public"."jurisdictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_id_key" ON "api_keys" USING btree ("key_id");--> statement-breakpoint
CREATE UNIQUE INDEX "request_tokens_request_key" ON "request_tokens" USING btree ("request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "request_updates_update_id_key" ON "request_updates" USING btree ("update_id");--> statement-breakpoint
CREATE INDEX "request_updates_request_idx" ON "request_updates" USING btree ("request_id","created_at");--> statement-breakpoint
CREATE INDEX "request_updates_created_at_idx" ON "request_updates" USING btree ("created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "service_attributes_service_code_key" ON "service_attributes" USING btree ("service_id","code");--> statement-breakpoint
CREATE UNIQUE INDEX "service_attributes_service_position_key" ON "service_attributes" USING btree ("service_id","position");--> statement-breakpoint
CREATE UNIQUE INDEX "service_requests_public_id_key" ON "service_requests" USING btree ("public_id");--> statement-breakpoint
CREATE INDEX "service_requests_location_requested_at_gist" ON "service_requests" USING gist ("location","requested_at");--> statement-breakpoint
CREATE INDEX "service_requests_requested_at_idx" ON "service_requests" USING btree ("requested_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "service_requests_updated_at_idx" ON "service_requests" USING btree ("updated_at","id");--> statement-breakpoint
CREATE INDEX "service_requests_service_idx" ON "service_requests" USING btree ("service_id");--> statement-breakpoint
CREATE INDEX "service_requests_parent_idx" ON "service_requests" USING btree ("parent_request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "services_jurisdiction_code_key" ON "services" USING btree ("jurisdiction_id","service_code");