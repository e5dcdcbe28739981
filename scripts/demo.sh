#!/usr/bin/env bash
# The main job, until the live bot lands: set up, build, make two sample clips with the talking-head generator
# (a genuine one and one whose audio lags the lips by 300 ms, both of the held-out identity), and scan them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
cargo build --release --quiet
SAMPLES="$ROOT/.cache/samples"
mkdir -p "$SAMPLES"
gen() { # name offset_ms
  [[ -s "$SAMPLES/$1.mp4" ]] || .venv/bin/python scripts/talkgen.py --face grace_hopper --seconds 10 --seed 7 \
      --offset-ms "$2" --out "$SAMPLES/$1.mp4" --meta "$SAMPLES/$1.json" --quiet
}
gen genuine 0
gen lipsync-300ms 300
for clip in genuine lipsync-300ms; do
  echo
  echo "== deepfake-guard scan .cache/samples/$clip.mp4"
  ./target/release/deepfake-guard scan "$SAMPLES/$clip.mp4"
done
