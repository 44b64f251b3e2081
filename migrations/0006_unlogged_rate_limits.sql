-- Hand-written: rate-limit counters are ephemeral (a minute's window). Unlogged, they skip the
-- WAL and its fsync, which would otherwise cost every POST two extra durable commits; after a
-- crash they are simply empty.
ALTER TABLE "rate_limit_counters" SET UNLOGGED;
