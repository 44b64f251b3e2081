-- Hand-written: what drizzle-kit cannot express.

-- Routing areas are WGS84 multipolygons (wards, districts), matched by containment.
ALTER TABLE "service_routes" ALTER COLUMN "area" TYPE geography(MultiPolygon,4326);
--> statement-breakpoint
CREATE INDEX "service_routes_area_gist" ON "service_routes" USING gist ("area");
--> statement-breakpoint

-- The invariant above all: a service request is never closed while a work order for it is
-- still open. Enforced here so that no code path, present or future, can close early.
-- The function is VOLATILE, so its query sees work orders committed by concurrent
-- transactions once the row lock is held.
CREATE FUNCTION open311_close_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'closed' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'closed') THEN
    IF EXISTS (
      SELECT 1 FROM work_orders w
      WHERE w.request_id = NEW.id AND w.state NOT IN ('completed', 'cancelled', 'rejected', 'reassigned')
    ) THEN
      RAISE EXCEPTION 'service request % cannot be closed while work orders are open', NEW.public_id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'service_requests_close_guard';
    END IF;
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER service_requests_close_guard
  BEFORE INSERT OR UPDATE OF status ON service_requests
  FOR EACH ROW EXECUTE FUNCTION open311_close_guard();
--> statement-breakpoint

-- The other side of the same invariant: no open work order may appear on (or return to) a
-- closed request. FOR SHARE waits for a concurrent close to commit and then reads its result.
CREATE FUNCTION open311_work_order_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  request_status text;
BEGIN
  IF NEW.state NOT IN ('completed', 'cancelled', 'rejected', 'reassigned') THEN
    SELECT status INTO request_status FROM service_requests WHERE id = NEW.request_id FOR SHARE;
    IF request_status = 'closed' THEN
      RAISE EXCEPTION 'work order % cannot be open on a closed service request', NEW.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'work_orders_open_on_closed_request';
    END IF;
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER work_orders_open_on_closed_request
  BEFORE INSERT OR UPDATE OF state ON work_orders
  FOR EACH ROW EXECUTE FUNCTION open311_work_order_guard();
