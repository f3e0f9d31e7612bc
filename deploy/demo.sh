#!/usr/bin/env bash
# The main job: bring up the local stack and run the end-to-end demo against it.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/local-stack.sh
exec cargo run --release --locked -p claimledger -- demo "$@"
