#!/usr/bin/env bash
# A real streaming replica of the test primary, for the read-replica tests (DATABASE_READ_URL):
# a second local cluster made with `pg_basebackup -R`, in hot standby, streaming from the primary.
# Prints the replica's connection URL on stdout (everything else goes to stderr), so a caller
# can write TEST_REPLICA_URL=$(test/setup/streaming-replica.sh).
#
# Idempotent: a replica already streaming on REPLICA_PORT is reused as it is (a second or so).
# A leftover data directory that is not streaming is rebuilt rather than restarted: a base
# backup of the test primary takes about a second, while a standby restarted after the primary
# recycled its WAL could never catch up (there is deliberately no replication slot: a slot would
# make a shared primary keep WAL for a dead replica until its disk fills).
#
# Needs: the primary on PRIMARY_HOST:PRIMARY_PORT with user postgres and trust auth over TCP,
# wal_level replica or logical (PostgreSQL's default), max_wal_senders > 0 (default 10); the
# PostgreSQL binaries; run as root (switches to the postgres user) or as postgres. If the primary
# refuses replication connections and its pg_hba.conf is a local file we can write, one line
# allowing them from 127.0.0.1 for the postgres user is appended and the primary reloaded —
# nothing else on the primary changes.
#
# Usage: test/setup/streaming-replica.sh [start|stop]   (default: start)
set -euo pipefail

PRIMARY_HOST=${PRIMARY_HOST:-127.0.0.1}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
REPLICA_DIR=${REPLICA_DIR:-/var/lib/postgresql/open311-replica-$REPLICA_PORT}
REPLICA_URL="postgres://postgres@127.0.0.1:$REPLICA_PORT/postgres"

log() { printf 'streaming-replica: %s\n' "$*" >&2; }
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
primary_sql() { psql -X -q -At -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -d postgres -c "$1"; }
replica_sql() { psql -X -q -At -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -c "$1" 2>/dev/null; }

# Streaming, not merely in recovery: a standby that lost its primary also says it is in recovery.
replica_streaming() {
  [ "$(replica_sql "select pg_is_in_recovery() and exists (select 1 from pg_stat_wal_receiver where status = 'streaming')")" = t ]
}

stop_replica() {
  if [ -f "$REPLICA_DIR/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w stop >&2 || true
  fi
}

if [ "${1:-start}" = stop ]; then
  stop_replica
  exit 0
fi

if replica_streaming; then
  log "reusing the replica streaming on port $REPLICA_PORT ($REPLICA_DIR)"
  echo "$REPLICA_URL"
  exit 0
fi
if pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT" && [ ! -f "$REPLICA_DIR/postmaster.pid" ]; then
  log "port $REPLICA_PORT is taken by a server that is not this replica; set REPLICA_PORT"
  exit 1
fi

# The primary must accept a physical replication connection: pg_hba's `all` does not cover it
# (it does cover replication=database, which is why the check uses replication=true).
replication_allowed() {
  psql -X -q -At "host=$PRIMARY_HOST port=$PRIMARY_PORT user=postgres replication=true" -c IDENTIFY_SYSTEM >/dev/null 2>&1
}
if ! replication_allowed; then
  hba_file=$(primary_sql 'show hba_file')
  if [ "$PRIMARY_HOST" != 127.0.0.1 ] || [ ! -w "$hba_file" ]; then
    log "the primary refuses replication connections and $hba_file is not writable here; allow"
    log "  host replication postgres 127.0.0.1/32 trust"
    exit 1
  fi
  log "allowing replication from 127.0.0.1 in $hba_file and reloading the primary"
  printf '\n# Added by open311-server test/setup/streaming-replica.sh: the test read replica streams from here.\nhost replication postgres 127.0.0.1/32 trust\n' >>"$hba_file"
  primary_sql 'select pg_reload_conf()' >/dev/null
  for _ in $(seq 1 20); do replication_allowed && break; sleep 0.25; done
  replication_allowed || { log "replication connections are still refused after the reload"; exit 1; }
fi

stop_replica
rm -rf "$REPLICA_DIR"
mkdir -p "$(dirname "$REPLICA_DIR")"
# --checkpoint=fast: the default spread checkpoint can make the backup wait for minutes.
log "pg_basebackup from $PRIMARY_HOST:$PRIMARY_PORT into $REPLICA_DIR"
as_postgres "$PG_BIN/pg_basebackup" -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -D "$REPLICA_DIR" -R -X stream --checkpoint=fast

# Debian keeps the primary's postgresql.conf and pg_hba.conf in /etc, outside the base backup,
# so the replica gets its own. A hot standby refuses to start unless these limits are at least
# the primary's, hence copied from it.
limits=""
for setting in max_connections max_worker_processes max_wal_senders max_prepared_transactions max_locks_per_transaction; do
  limits+="$setting = $(primary_sql "show $setting")"$'\n'
done
as_postgres tee "$REPLICA_DIR/postgresql.conf" >/dev/null <<EOF
# The open311-server test read replica (test/setup/streaming-replica.sh).
port = $REPLICA_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '/tmp'
hot_standby = on
# Tests read right after writing; feedback keeps the primary's vacuum from cancelling their queries.
hot_standby_feedback = on
# Small: it holds only test databases, on a shared machine.
shared_buffers = 32MB
$limits
EOF
as_postgres tee "$REPLICA_DIR/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
as_postgres touch "$REPLICA_DIR/pg_ident.conf"

as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/replica.log" -w -t 60 start >&2
for _ in $(seq 1 120); do replica_streaming && break; sleep 0.25; done
if ! replica_streaming; then
  log "the replica started but is not streaming; its log:"
  tail -n 30 "$REPLICA_DIR/replica.log" >&2
  exit 1
fi
log "replica streaming on port $REPLICA_PORT"
echo "$REPLICA_URL"
