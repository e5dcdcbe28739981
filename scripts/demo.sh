#!/usr/bin/env bash
# The main job: set up, build, and run a whole call on this machine with `deepfake-guard demo`: a private Janus
# room, the guard, a genuine and a lip-sync-fake publisher (headless Chromium playing generated clips) and a
# viewer whose page shows the guard's verified badges (saved as a screenshot). Arguments go to `demo`
# (e.g. --seconds 90, --codec h264, --no-netns).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
cargo build --release --quiet
exec ./target/release/deepfake-guard demo "$@"
