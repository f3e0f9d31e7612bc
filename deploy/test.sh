#!/usr/bin/env bash
# The whole test suite: local services, formatting, lints, and every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/local-stack.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
