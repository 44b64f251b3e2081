-- Hand-written: drizzle-kit cannot emit parameterised geography types, so the columns are
-- created as plain geography by 0001 and narrowed here. Points and boundaries are WGS84.
ALTER TABLE "service_requests" ALTER COLUMN "location" TYPE geography(Point,4326);
--> statement-breakpoint
ALTER TABLE "jurisdictions" ALTER COLUMN "boundary" TYPE geography(MultiPolygon,4326);
