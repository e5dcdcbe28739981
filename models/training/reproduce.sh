#!/usr/bin/env bash
# Reproduce the temporal head from scratch on this machine: render the train / val / held-out splits with the
# talking-head generator, export the head's inputs with the Rust runtime, train, export to ONNX, write the
# manifest entry, and evaluate on the held-out split through the Rust runtime.
#
#   bash models/training/reproduce.sh                      # the shipped head's recipe (46 min on 2 cores)
#   bash models/training/reproduce.sh --smoke --work DIR   # a few minutes; writes only under DIR (CI)
#
# Options: --work DIR (default .cache/training; rendered clips and features are kept there and reused when
# complete), --jobs N (default: all cores), --epochs N, --seed N.
# The shipped run writes models/temporal_head.onnx, its entry in models/manifest.json and
# models/training/figures/{train,heldout}.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SMOKE=0
WORK="$ROOT/.cache/training"
JOBS="$(nproc)"
EPOCHS=""
SEED=0
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --work) WORK="$2"; shift ;;
        --jobs) JOBS="$2"; shift ;;
        --epochs) EPOCHS="$2"; shift ;;
        --seed) SEED="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "reproduce.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

if [ "$SMOKE" = 1 ]; then
    TRAIN=24; VAL=8; HELDOUT=8; EPOCHS="${EPOCHS:-3}"; SECONDS_ARG=(--seconds 4)
    OUT="$WORK/temporal_head.onnx"; MANIFEST="$WORK/manifest.json"; FIGURES="$WORK/figures"; FP32_MANIFEST=()
else
    TRAIN=400; VAL=80; HELDOUT=224; EPOCHS="${EPOCHS:-30}"; SECONDS_ARG=()   # 30 epochs: as the shipped head (its manifest entry)
    OUT="$ROOT/models/temporal_head.onnx"; MANIFEST="$ROOT/models/manifest.json"
    FP32_MANIFEST=(--manifest "$ROOT/models/manifest.fp32.json")   # the reference manifest uses the same head
    FIGURES="$ROOT/models/training/figures"
fi
mkdir -p "$FIGURES"
step() { echo "== reproduce: $* ($(date +%H:%M:%S))" >&2; }

step "build"
cargo build --release --quiet
BIN="$ROOT/target/release/deepfake-guard"

# The manifest the features are computed with: the shipped one without any temporal head (an old head
# trained on another feature set must not stop the export), model paths made absolute.
BASE="$WORK/base_manifest.json"
python3 - "$ROOT/models/manifest.json" "$BASE" <<'EOF'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
m = json.load(open(src))
m["models"].pop("temporal_head", None)
for e in m["models"].values():
    e["file"] = os.path.join(os.path.dirname(os.path.abspath(src)), e["file"])
    if e.get("card"):
        e["card"] = os.path.join(os.path.dirname(os.path.abspath(src)), e["card"])
json.dump(m, open(dst, "w"), indent=2)
EOF
[ "$SMOKE" = 1 ] && cp "$BASE" "$MANIFEST"

render() {  # split count
    local dir="$WORK/$1"
    if [ -f "$dir/manifest.csv" ] && [ "$(wc -l < "$dir/manifest.csv")" -eq "$2" ] && [ -f "$dir/.complete" ]; then
        echo "reproduce: $1 ($2 clips) already rendered in $dir" >&2
        return
    fi
    step "render $1: $2 clips"
    rm -rf "$dir"
    python3 models/training/splits.py --make "$1" --count "$2" --out "$dir" --jobs "$JOBS" "${SECONDS_ARG[@]}"
    touch "$dir/.complete"
}
render train "$TRAIN"
render val "$VAL"
render heldout "$HELDOUT"

step "features: train (hop 400 ms) and val (hop 800 ms)"
"$BIN" features "$WORK/train/manifest.csv" --out "$WORK/features/train" --hop-ms 400 --models "$BASE" --jobs "$JOBS"
"$BIN" features "$WORK/val/manifest.csv" --out "$WORK/features/val" --hop-ms 800 --models "$BASE" --jobs "$JOBS"

step "train ($EPOCHS epochs)"
/usr/bin/python3 models/training/train.py --train "$WORK/features/train" --val "$WORK/features/val" --out "$OUT" \
    --manifest "$MANIFEST" "${FP32_MANIFEST[@]}" --epochs "$EPOCHS" --seed "$SEED" --report "$FIGURES/train.json"

step "check and evaluate on the held-out split (Rust runtime)"
"$BIN" check --models "$MANIFEST" >&2
"$BIN" eval "$WORK/heldout/manifest.csv" --models "$MANIFEST" --jobs "$JOBS" --per-clip "$WORK/heldout_clips.jsonl" \
    --json > "$FIGURES/heldout.json"
python3 - "$FIGURES/heldout.json" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
keys = ["clips", "auc", "accuracy", "recall", "false_positive_rate", "drift_160ms_recall", "window_false_positive_rate",
        "offset_mae_ms", "head_offset_mae_ms", "genuine_minutes", "alerts_raised_on_genuine", "false_alerts_per_hour"]
print("held-out: " + ", ".join(f"{k} {f[k]}" for k in keys))
for g, v in f["groups"].items():
    print(f"  {g:8} {v['clips']:4} clips, flagged fake {v['flagged_fake']:4}, mean score {v['mean_score']}")
EOF
step "done: $OUT, $MANIFEST, $FIGURES"
if [ "$SMOKE" = 0 ] && git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    if git -C "$ROOT" diff --quiet HEAD -- models/temporal_head.onnx; then
        echo "reproduce: the head is byte-identical to the committed one" >&2
    else
        echo "reproduce: the head differs from the committed one (see the model card, Reproduce);" \
             "'git checkout models/' restores the shipped head and its manifest entries" >&2
    fi
fi
