CREATE TABLE "report_daily" (
	"jurisdiction_id" text NOT NULL,
	"service_id" bigint NOT NULL,
	"day" date NOT NULL,
	"department_id" bigint NOT NULL,
	"channel" text NOT NULL,
	"area" text NOT NULL,
	"created" integer NOT NULL,
	"still_open" integer NOT NULL,
	"duplicates" integer NOT NULL,
	"closed" integer NOT NULL,
	"close_seconds" integer[] NOT NULL,
	"close_counts" integer[] NOT NULL,
	"acknowledged" integer NOT NULL,
	"ack_seconds" integer[] NOT NULL,
	"ack_counts" integer[] NOT NULL,
	"completed_with_due" integer NOT NULL,
	"completed_within_due" integer NOT NULL,
	"went_overdue" integer NOT NULL,
	"public_notes" integer NOT NULL,
	"from_template" integer NOT NULL,
	CONSTRAINT "report_daily_jurisdiction_id_day_service_id_department_id_channel_area_pk" PRIMARY KEY("jurisdiction_id","day","service_id","department_id","channel","area")
);
--> statement-breakpoint
CREATE TABLE "report_rollup_pending" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "report_rollup_pending_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"jurisdiction_id" text NOT NULL,
	"service_id" bigint NOT NULL,
	"day" date NOT NULL
);
--> statement-breakpoint
ALTER TABLE "request_updates" ADD COLUMN "is_answer" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "work_orders" ADD COLUMN "acknowledged_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "work_orders" ADD COLUMN "completed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "work_orders" ADD COLUMN "area_name" text;--> statement-breakpoint
CREATE INDEX "service_requests_closed_at_idx" ON "service_requests" USING btree ("closed_at") WHERE "service_requests"."closed_at" is not null;--> statement-breakpoint
CREATE INDEX "work_orders_acknowledged_at_idx" ON "work_orders" USING btree ("acknowledged_at") WHERE acknowledged_at is not null;--> statement-breakpoint
CREATE INDEX "work_orders_completed_at_idx" ON "work_orders" USING btree ("completed_at") WHERE completed_at is not null;--> statement-breakpoint
CREATE INDEX "work_orders_overdue_at_idx" ON "work_orders" USING btree ("overdue_at") WHERE overdue_at is not null;--> statement-breakpoint
CREATE INDEX "work_orders_open_overdue_idx" ON "work_orders" USING btree ("department_id") WHERE overdue_at is not null and state not in ('completed', 'cancelled', 'rejected', 'reassigned');--> statement-breakpoint
-- Hand-written below: backfill, the duration buckets, and the triggers that mark the report
-- cells a write changes (docs/reports.md; src/domain/reports/rollups.ts recomputes them).
--
-- Work orders from before this release: their acknowledgement and completion times were not
-- kept; the department's last event time (else the last change) is the closest record.
UPDATE "work_orders" SET "completed_at" = coalesce("last_event_at", "updated_at") WHERE "state" = 'completed';--> statement-breakpoint
UPDATE "work_orders" SET "acknowledged_at" = coalesce("last_event_at", "updated_at")
  WHERE "state" IN ('accepted', 'scheduled', 'in_progress', 'on_hold', 'completed');--> statement-breakpoint
-- Which earlier history entries were people's answers was not kept either: operators' public
-- entries that are not the server's duplicate lines, and pre-approved answers.
UPDATE "request_updates" SET "is_answer" = true
  WHERE "is_public" AND ("template_id" IS NOT NULL OR ("source" = 'operator' AND "description" NOT LIKE 'Duplicate of %'));--> statement-breakpoint
-- A duration as report histograms keep it: whole seconds rounded down to 3 significant digits
-- (exact below 1000 s, under 1% off above), so that a few hundred values cover seconds to
-- years and medians merge across days. Negative (a department's clock behind ours) counts as 0.
CREATE FUNCTION open311_duration_bucket(p_seconds double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN s < 1000 THEN s ELSE (s / scale) * scale END::integer
  FROM (SELECT least(greatest(floor(p_seconds), 0), 2000000000)::bigint AS s) v,
       LATERAL (SELECT (10 ^ (length(v.s::text) - 3))::bigint AS scale) p
  WHERE p_seconds IS NOT NULL
$$;--> statement-breakpoint
-- Marks the report cells (jurisdiction, service, local day) of the given moments.
CREATE FUNCTION open311_report_mark(p_jurisdiction_id text, p_service_id bigint, p_moments timestamptz[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO report_rollup_pending (jurisdiction_id, service_id, day)
  SELECT DISTINCT p_jurisdiction_id, p_service_id, (m AT TIME ZONE j.time_zone)::date
  FROM unnest(p_moments) m, jurisdictions j
  WHERE j.id = p_jurisdiction_id AND m IS NOT NULL
$$;--> statement-breakpoint
-- Every cell a request contributes to, under the given jurisdiction and service: its creation
-- and closing days, the days its work orders were acknowledged, completed or went overdue, and
-- the days of its public answers. A change to any of them may move all of these (a request's
-- department in reports is its latest work order's).
CREATE FUNCTION open311_report_mark_request(p_request_id bigint, p_jurisdiction_id text, p_service_id bigint) RETURNS void
LANGUAGE sql AS $$
  SELECT open311_report_mark(p_jurisdiction_id, p_service_id,
    ARRAY[r.requested_at, r.closed_at]
    || ARRAY(SELECT unnest(ARRAY[w.acknowledged_at, w.completed_at, w.overdue_at]) FROM work_orders w WHERE w.request_id = r.id)
    || ARRAY(SELECT u.created_at FROM request_updates u
             WHERE u.request_id = r.id AND u.is_public AND u.is_answer))
  FROM service_requests r WHERE r.id = p_request_id
$$;--> statement-breakpoint
CREATE FUNCTION open311_report_request_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- A new request counts on its creation day only (what else it has comes with its own rows).
    PERFORM open311_report_mark(NEW.jurisdiction_id, NEW.service_id, ARRAY[NEW.requested_at, NEW.closed_at]);
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    -- Before the delete, while its work orders and notes are still there to be found.
    PERFORM open311_report_mark_request(OLD.id, OLD.jurisdiction_id, OLD.service_id);
    RETURN OLD;
  END IF;
  PERFORM open311_report_mark_request(NEW.id, NEW.jurisdiction_id, NEW.service_id);
  PERFORM open311_report_mark(OLD.jurisdiction_id, OLD.service_id, ARRAY[OLD.requested_at, OLD.closed_at]);
  IF (NEW.service_id, NEW.jurisdiction_id) IS DISTINCT FROM (OLD.service_id, OLD.jurisdiction_id) THEN
    PERFORM open311_report_mark_request(OLD.id, OLD.jurisdiction_id, OLD.service_id);
  END IF;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER service_requests_report_insert AFTER INSERT ON service_requests
  FOR EACH ROW EXECUTE FUNCTION open311_report_request_changed();--> statement-breakpoint
CREATE TRIGGER service_requests_report_update
  AFTER UPDATE OF status, closed_at, requested_at, channel, parent_request_id, service_id, jurisdiction_id ON service_requests
  FOR EACH ROW EXECUTE FUNCTION open311_report_request_changed();--> statement-breakpoint
CREATE TRIGGER service_requests_report_delete BEFORE DELETE ON service_requests
  FOR EACH ROW EXECUTE FUNCTION open311_report_request_changed();--> statement-breakpoint
CREATE FUNCTION open311_report_work_order_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- The request's cells as they are now (this work order included), and the days this work
  -- order counted on before the change. A work order written in the statement that creates
  -- its request finds no request yet: the request's own trigger marks that day.
  IF TG_OP <> 'DELETE' THEN
    PERFORM open311_report_mark_request(r.id, r.jurisdiction_id, r.service_id) FROM service_requests r WHERE r.id = NEW.request_id;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    PERFORM open311_report_mark(r.jurisdiction_id, r.service_id, ARRAY[OLD.acknowledged_at, OLD.completed_at, OLD.overdue_at])
    FROM service_requests r WHERE r.id = OLD.request_id;
    IF TG_OP = 'DELETE' OR OLD.request_id <> NEW.request_id THEN
      PERFORM open311_report_mark_request(r.id, r.jurisdiction_id, r.service_id) FROM service_requests r WHERE r.id = OLD.request_id;
    END IF;
  END IF;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER work_orders_report_change
  AFTER INSERT OR DELETE OR UPDATE OF state, acknowledged_at, completed_at, overdue_at, due_at, department_id, area_name, request_id ON work_orders
  FOR EACH ROW EXECUTE FUNCTION open311_report_work_order_changed();--> statement-breakpoint
CREATE FUNCTION open311_report_note_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Only public answers are report figures (the templates share).
  IF TG_OP <> 'DELETE' AND NEW.is_public AND NEW.is_answer THEN
    PERFORM open311_report_mark(r.jurisdiction_id, r.service_id, ARRAY[NEW.created_at]) FROM service_requests r WHERE r.id = NEW.request_id;
  END IF;
  IF TG_OP <> 'INSERT' AND OLD.is_public AND OLD.is_answer THEN
    PERFORM open311_report_mark(r.jurisdiction_id, r.service_id, ARRAY[OLD.created_at]) FROM service_requests r WHERE r.id = OLD.request_id;
  END IF;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER request_updates_report_change
  AFTER INSERT OR DELETE OR UPDATE OF is_public, is_answer, template_id, created_at ON request_updates
  FOR EACH ROW EXECUTE FUNCTION open311_report_note_changed();--> statement-breakpoint
-- What is already there: every cell it fills, recomputed by the first refresh.
INSERT INTO report_rollup_pending (jurisdiction_id, service_id, day)
SELECT DISTINCT r.jurisdiction_id, r.service_id, (m AT TIME ZONE j.time_zone)::date
FROM service_requests r JOIN jurisdictions j ON j.id = r.jurisdiction_id,
     LATERAL unnest(ARRAY[r.requested_at, r.closed_at]) m
WHERE m IS NOT NULL;
