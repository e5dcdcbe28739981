#!/usr/bin/env bash
# Run the benchmarks and print a table of medians: the criterion benches of every stage and of the whole
# per-frame path (`benches/stages.rs`, `benches/per_frame.rs`), then the Python + onnxruntime baseline
# (`benches/python_baseline.py`) on the same clips. Idempotent: runs the set-up if it is missing, generates
# the test clips into target/bench-data/ only once.
#
#   bash scripts/bench.sh             short run (20 samples, 1 s warm-up, 5 s per bench; ~3.5 min on 2 cores)
#   bash scripts/bench.sh --full      criterion's defaults (100 samples, 3 s warm-up, 5 s)
#   bash scripts/bench.sh --summary   only print the table of the last run
#   BENCH_FILTER=crop bash scripts/bench.sh   only the benches whose name contains "crop" (no Python baseline)
#
# Everything runs on one thread; on a shared machine the numbers move with the load (see docs/benchmarks.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { echo "bench: $*" >&2; }

MODE=short
case "${1:-}" in
  "") ;;
  --full) MODE=full ;;
  --summary) MODE=summary ;;
  -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
  *) say "unknown option $1 (try --help)"; exit 2 ;;
esac

DATA=target/bench-data
PY=.venv/bin/python
CLIPS=("1280 720 mp4" "1280 720 webm" "640 480 mp4")

if [[ $MODE != summary ]]; then
  # 1. Set-up (ONNX Runtime library, Python venv with onnxruntime, face photos): only when missing.
  if [[ ! -x $PY || ! -e .ort/libonnxruntime.so || ! -e .cache/faces/astronaut.png ]] \
     || ! "$PY" -c 'import numpy, PIL, onnxruntime' 2>/dev/null; then
    say "set-up missing: running scripts/setup.sh"
    bash scripts/setup.sh
  fi

  # 2. Test clips: 8 s talking heads (astronaut photo, seed 3, 25 fps = 200 frames), made once. The benches
  #    would make them too (same names and settings); doing it here keeps it out of their timing.
  mkdir -p "$DATA"
  for c in "${CLIPS[@]}"; do
    read -r w h ext <<<"$c"
    out="$DATA/talk_${w}x${h}.${ext}"
    if [[ ! -s $out ]]; then
      say "generating $out"
      tmp="$DATA/.tmp-$$-talk_${w}x${h}.${ext}"
      "$PY" scripts/talkgen.py --face astronaut --seconds 8 --seed 3 --width "$w" --height "$h" --out "$tmp" --quiet
      mv "$tmp" "$out"
    fi
  done

  # 3. The criterion benches (release build). Results land in target/criterion/.
  if [[ $MODE == short ]]; then
    ARGS=(--sample-size 20 --warm-up-time 1 --measurement-time 5)
  else
    ARGS=(--sample-size 100 --warm-up-time 3 --measurement-time 5)
  fi
  [[ -n ${BENCH_FILTER:-} ]] && ARGS+=("$BENCH_FILTER")
  say "load before the run: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; above ~0.5 the numbers are noisy)"
  touch "$DATA/.run-started"
  cargo bench --bench stages --bench per_frame -- "${ARGS[@]}"

  # 4. The Python baseline on the same clips.
  if [[ -z ${BENCH_FILTER:-} ]]; then
    for c in "1280 720" "640 480"; do
      read -r w h <<<"$c"
      "$PY" benches/python_baseline.py --clip "$DATA/talk_${w}x${h}.mp4" --passes 2 \
        --json "$DATA/python_baseline_${w}x${h}.json"
    done
  fi
  say "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# 5. Summary: criterion medians of this run (results older than its start are ignored) next to the baseline.
"$PY" - "$DATA" <<'PY'
import glob, json, os, sys
data = sys.argv[1]
marker = os.path.join(data, ".run-started")
since = os.path.getmtime(marker) if os.path.exists(marker) else 0
rust = {}
for est in glob.glob("target/criterion/**/new/estimates.json", recursive=True):
    if os.path.getmtime(est) < since:
        continue
    meta = json.load(open(os.path.join(os.path.dirname(est), "benchmark.json")))
    rust[meta["full_id"]] = json.load(open(est))["median"]["point_estimate"] / 1e6  # ms
py = {}
for f in glob.glob(os.path.join(data, "python_baseline_*.json")):
    if os.path.getmtime(f) >= since:
        d = json.load(open(f))
        py[f"{d['width']}x{d['height']}"] = d

def r(key):
    return rust.get(key)

def p(res, key):
    d = py.get(res)
    if d is None:
        return None
    if key in ("per_frame_ms", "decode_cpu_ms_per_frame", "per_frame_analysis_ms"):
        return d[key]
    return d["median_ms"].get(key)

def crop_plus(crop, model):
    a, b = r(crop), r(model)
    return None if a is None or b is None else a + b

rows = [
    ("decode 720p H.264 (one frame)", r("decode/1280x720_h264"), p("1280x720", "decode_cpu_ms_per_frame")),
    ("decode 720p VP8 (one frame)", r("decode/1280x720_vp8"), None),
    ("face detection: letterbox 128 + BlazeFace + NMS", r("face_detection/crop_run_decode"), p("1280x720", "detect")),
    ("  crop: letterbox 128", r("crop/letterbox_128_nhwc"), None),
    ("  BlazeFace model", r("face_detection/model_only"), None),
    ("landmarks: crop 192 + FaceMesh", r("landmarks/crop_run"), (p("1280x720", "crop_192") or 0) + (p("1280x720", "landmarks") or 0) if "1280x720" in py else None),
    ("  crop: face 192", r("crop/face_192_nchw"), p("1280x720", "crop_192")),
    ("  FaceMesh model", r("landmarks/model_only"), p("1280x720", "landmarks")),
    ("backbone int8: crop 224 + model", r("backbone/int8/crop_run"), (p("1280x720", "crop_224") or 0) + (p("1280x720", "backbone") or 0) if "1280x720" in py else None),
    ("  crop: face 224", r("crop/face_224_nchw"), p("1280x720", "crop_224")),
    ("  EfficientNet-Lite0 int8 model", r("backbone/int8/model_only"), p("1280x720", "backbone")),
    ("  EfficientNet-Lite0 fp32 model", r("backbone/fp32/model_only"), p("1280x720", "backbone_fp32")),
    ("backbone fp32: crop 224 + model", r("backbone/fp32/crop_run"), None),
    ("audio features (40 ms pushed + frame query)", r("audio_features/push_40ms_frame_features"), None),
    ("lip-sync assess (3.2 s window, 80 frames)", r("lipsync/assess_3.2s_window"), None),
    ("PER FRAME 1280x720 H.264 (decode + analyse)", r("per_frame/1280x720_h264"), p("1280x720", "per_frame_ms")),
    ("PER FRAME 1280x720 VP8 (decode + analyse)", r("per_frame/1280x720_vp8"), None),
    ("PER FRAME 640x480 H.264 (decode + analyse)", r("per_frame/640x480_h264"), p("640x480", "per_frame_ms")),
]

def fmt(v):
    if v is None:
        return "-"
    return f"{v * 1e3:.1f} us" if v < 0.1 else f"{v:.2f} ms"

lines = ["| stage (median) | Rust | Python baseline |", "|---|---:|---:|"]
for name, a, b in rows:
    if a is None and b is None:
        continue
    lines.append(f"| {name} | {fmt(a)} | {fmt(b)} |")
table = "\n".join(lines)
print()
print(table)
print("\nall criterion medians of this run:")
for k in sorted(rust):
    print(f"  {k:45s} {fmt(rust[k]):>12s}")
for res, d in sorted(py.items()):
    print(f"python baseline {res}: analysis only {d['per_frame_analysis_ms']:.2f} ms/frame, "
          f"decode {d['decode_cpu_ms_per_frame']:.2f} ms/frame (ffmpeg CPU + pipe), {d['frames']} frames")
with open(os.path.join(data, "summary.md"), "w") as f:
    f.write(table + "\n")
PY
