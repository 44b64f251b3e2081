-- Hand-written: drizzle-kit does not manage extensions.
-- postgis provides the geography type and spatial indexes; btree_gist lets one GiST index
-- cover (location, requested_at) together.
CREATE EXTENSION IF NOT EXISTS postgis;
--> statement-breakpoint
CREATE EXTENSION IF NOT EXISTS btree_gist;
