CREATE TABLE "department_service_levels" (
	"department_id" bigint NOT NULL,
	"service_id" bigint NOT NULL,
	"sla_hours" integer,
	"sla_business_days" integer,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "department_service_levels_department_id_service_id_pk" PRIMARY KEY("department_id","service_id"),
	CONSTRAINT "department_service_levels_sla_check" CHECK (num_nonnulls(sla_hours, sla_business_days) = 1 and sla_hours > 0 is not false and sla_business_days > 0 is not false)
);
--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD COLUMN "working_days" smallint[] DEFAULT '{1,2,3,4,5}'::smallint[] NOT NULL;--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD COLUMN "opens_at" time DEFAULT '08:00' NOT NULL;--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD COLUMN "closes_at" time DEFAULT '17:00' NOT NULL;--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD COLUMN "holidays" date[] DEFAULT '{}'::date[] NOT NULL;--> statement-breakpoint
ALTER TABLE "services" ADD COLUMN "sla_hours" integer;--> statement-breakpoint
ALTER TABLE "services" ADD COLUMN "sla_business_days" integer;--> statement-breakpoint
ALTER TABLE "work_orders" ADD COLUMN "due_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "work_orders" ADD COLUMN "overdue_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "department_service_levels" ADD CONSTRAINT "department_service_levels_department_id_departments_id_fk" FOREIGN KEY ("department_id") REFERENCES "public"."departments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "department_service_levels" ADD CONSTRAINT "department_service_levels_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "work_orders_due_idx" ON "work_orders" USING btree ("due_at") WHERE overdue_at is null and due_at is not null and state not in ('completed', 'cancelled', 'rejected', 'reassigned');--> statement-breakpoint
ALTER TABLE "jurisdictions" ADD CONSTRAINT "jurisdictions_calendar_check" CHECK (cardinality(working_days) > 0 and working_days <@ '{1,2,3,4,5,6,7}'::smallint[] and closes_at > opens_at);--> statement-breakpoint
ALTER TABLE "services" ADD CONSTRAINT "services_sla_check" CHECK (num_nonnulls(sla_hours, sla_business_days) <= 1 and sla_hours > 0 is not false and sla_business_days > 0 is not false);--> statement-breakpoint
-- Business time (docs/service-levels.md): `minutes` of working time added to `start`, counted
-- only inside the working hours of working days that are not holidays, in the jurisdiction's
-- time zone (wall-clock hours: a DST change does not shorten or lengthen a working day).
-- A start outside working hours begins counting at the next opening. NULL when ten years hold
-- no working time (a calendar cannot express that, but the loop must end).
CREATE OR REPLACE FUNCTION open311_add_business_minutes(
  p_start timestamptz, p_minutes integer, p_time_zone text,
  p_working_days smallint[], p_opens_at time, p_closes_at time, p_holidays date[]
) RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE
  local_start timestamp := p_start AT TIME ZONE p_time_zone;
  day date := (p_start AT TIME ZONE p_time_zone)::date;
  remaining numeric := p_minutes;
  window_start timestamp;
  window_end timestamp;
  available numeric;
BEGIN
  FOR i IN 1..3700 LOOP
    IF extract(isodow FROM day)::smallint = ANY (p_working_days) AND NOT day = ANY (p_holidays) THEN
      window_start := greatest(local_start, day + p_opens_at);
      window_end := day + p_closes_at;
      IF window_end > window_start THEN
        available := extract(epoch FROM window_end - window_start) / 60;
        IF available >= remaining THEN
          RETURN (window_start + remaining * interval '1 minute') AT TIME ZONE p_time_zone;
        END IF;
        remaining := remaining - available;
      END IF;
    END IF;
    day := day + 1;
  END LOOP;
  RETURN NULL;
END $$;
--> statement-breakpoint
-- When a work order opened at `p_opened` for `p_service_id` at `p_department_id` is due: the
-- department's own service level for the service when it has one, else the service's; hours are
-- clock hours, a business day is one working day's hours of business time. NULL: no deadline.
CREATE OR REPLACE FUNCTION open311_work_order_due(p_opened timestamptz, p_service_id bigint, p_department_id bigint)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT CASE
           WHEN t.hours IS NOT NULL THEN p_opened + t.hours * interval '1 hour'
           WHEN t.business_days IS NOT NULL THEN open311_add_business_minutes(
             p_opened, t.business_days * (extract(epoch FROM j.closes_at - j.opens_at) / 60)::integer,
             j.time_zone, j.working_days, j.opens_at, j.closes_at, j.holidays)
         END
  FROM services s
  JOIN jurisdictions j ON j.id = s.jurisdiction_id
  LEFT JOIN department_service_levels l ON l.service_id = s.id AND l.department_id = p_department_id
  CROSS JOIN LATERAL (
    SELECT CASE WHEN l.service_id IS NOT NULL THEN l.sla_hours ELSE s.sla_hours END AS hours,
           CASE WHEN l.service_id IS NOT NULL THEN l.sla_business_days ELSE s.sla_business_days END AS business_days
  ) t
  WHERE s.id = p_service_id
$$;
