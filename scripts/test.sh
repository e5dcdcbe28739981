#!/usr/bin/env bash
# Every test: set up (idempotent), then the whole workspace's tests in release mode (the engine runs real
# models on real clips; release keeps that fast and shares the build with the main command).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
cargo test --release --workspace "$@"
