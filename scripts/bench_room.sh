#!/usr/bin/env bash
# The live guard in a real Janus room with 1, 2 and 4 genuine publishers (headless Chromium playing generated
# clips), measured from outside: the bot's CPU time and resident memory (/proc, every 0.5 s) and its own
# /metrics (frames analysed, dropped). Each count is a fresh call: scripts/e2e/run.sh room.
#
#   bash scripts/bench_room.sh            # COUNTS="1 2 4" ROOM_SECONDS=40 VCODEC=vp8; writes out/bench-room/summary.json
#
# On a 2-core machine the publishers' browsers share the cores with the guard: the guard's CPU time is its own,
# but with 4 publishers it competes for the CPU (frames it had no time for show as dropped, reason `behind`).
# Needs root (network namespace) and what scripts/setup.sh installs; build first: cargo build --release.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/out/bench-room}"
COUNTS="${COUNTS:-1 2 4}"
export ROOM_SECONDS="${ROOM_SECONDS:-40}" VCODEC="${VCODEC:-vp8}"
[[ -x target/release/deepfake-guard ]] || { echo "bench_room.sh: build first: cargo build --release" >&2; exit 2; }
mkdir -p "$OUT"
for n in $COUNTS; do
  echo "== $n publisher(s), $ROOM_SECONDS s"
  rm -rf "$OUT/n$n"
  WORK="$OUT/n$n" ROOM_PUBLISHERS="$n" bash scripts/e2e/run.sh room | grep -E "publisher\(s\) in the room|ok|FAIL|done" || true
done
/usr/bin/python3 - "$OUT" $COUNTS <<'PY'
import json, os, re, sys
out, counts = sys.argv[1], [int(c) for c in sys.argv[2:]]
rows = []
for n in counts:
    d = os.path.join(out, f"n{n}")
    try:
        lines = open(os.path.join(d, "bot-usage.csv")).read().split("\n")
        hz = int(lines[0].split("hz=")[1])
        samples = [tuple(int(x) for x in l.split(",")) for l in lines[1:] if l.count(",") == 3 and "" not in l.split(",")]
        opening = int(open(os.path.join(d, "room-opening")).read())
        started = int(open(os.path.join(d, "room-started")).read())
        ended = int(open(os.path.join(d, "room-ended")).read())
    except (OSError, ValueError, IndexError) as e:
        print(f"n={n}: no measurement ({e}); see {d}")
        continue
    base = [s for s in samples if s[0] < opening]
    steady = [s for s in samples if started + 5000 <= s[0] <= ended]
    if not base or len(steady) < 2:
        print(f"n={n}: too few samples; see {d}")
        continue
    (t0, c0, _, _), (t1, c1, _, _) = steady[0], steady[-1]
    cores = (c1 - c0) / hz / ((t1 - t0) / 1000)
    metrics = open(os.path.join(d, "metrics.txt")).read() if os.path.exists(os.path.join(d, "metrics.txt")) else ""
    def metric(name):
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", metrics, re.M)
        return float(m.group(1)) if m else None
    rows.append({
        "publishers": n,
        "cpu_cores": round(cores, 3),
        "cpu_per_participant_pct": round(100 * cores / n, 1),
        "rss_baseline_mb": round(base[-1][2] / 1024, 1),
        "rss_steady_mb": round(max(s[2] for s in steady) / 1024, 1),
        "rss_peak_mb": round(max(s[3] for s in samples) / 1024, 1),
        "measured_s": round((t1 - t0) / 1000, 1),
        "frames_analysed": metric("deepfake_guard_video_frames_analysed_total"),
        "frames_dropped_behind": metric('deepfake_guard_video_frames_dropped_total{reason="behind"}'),
        "frames_dropped_queue_full": metric('deepfake_guard_video_frames_dropped_total{reason="queue_full"}'),
    })
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=1)
print("\npublishers | CPU per participant (% of a core) | RSS baseline -> in call (peak) | frames analysed / dropped behind / queue full")
for r in rows:
    print(f"{r['publishers']:>10} | {r['cpu_per_participant_pct']:>5} % ({r['cpu_cores']} cores over {r['measured_s']} s) | "
          f"{r['rss_baseline_mb']} -> {r['rss_steady_mb']} MB ({r['rss_peak_mb']}) | "
          f"{r['frames_analysed']} / {r['frames_dropped_behind']} / {r['frames_dropped_queue_full']}")
print(f"written: {os.path.join(out, 'summary.json')}")
PY
