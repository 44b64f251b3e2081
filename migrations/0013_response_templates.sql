CREATE TABLE "response_templates" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "response_templates_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"jurisdiction_id" text NOT NULL,
	"code" text NOT NULL,
	"public_text" text NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"service_id" bigint,
	"department_status_code" text,
	"detailed_status" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "response_templates_code_check" CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$')
);
--> statement-breakpoint
ALTER TABLE "request_updates" ADD COLUMN "template_id" bigint;--> statement-breakpoint
ALTER TABLE "response_templates" ADD CONSTRAINT "response_templates_jurisdiction_id_jurisdictions_id_fk" FOREIGN KEY ("jurisdiction_id") REFERENCES "public"."jurisdictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "response_templates" ADD CONSTRAINT "response_templates_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "response_templates_code_key" ON "response_templates" USING btree ("jurisdiction_id","code");--> statement-breakpoint
ALTER TABLE "request_updates" ADD CONSTRAINT "request_updates_template_id_response_templates_id_fk" FOREIGN KEY ("template_id") REFERENCES "public"."response_templates"("id") ON DELETE no action ON UPDATE no action;