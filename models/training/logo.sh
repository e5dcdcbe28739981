#!/usr/bin/env bash
# Leave one generator out (LOGO): the detector trained on one talking-head generator, tested on the other.
#
#   bash models/training/logo.sh                       # both folds (renders what is missing; reuses the rest)
#   bash models/training/logo.sh --fold meshgen        # only "meshgen left out" (needs only meshgen heldout)
#   bash models/training/logo.sh --smoke --work DIR    # the same pipeline on a few 4 s clips (writes only DIR)
#
# Fold "meshgen left out": the shipped head (models/manifest.json, trained on talkgen clips) evaluated on the
#   meshgen held-out split -> models/training/figures/logo_meshgen_out.json
# Fold "talkgen left out": a head trained with train.py on meshgen train/val features, evaluated on the
#   talkgen held-out split -> models/training/figures/logo_talkgen_out.json. The head and its manifest stay in
#   WORK/logo_head/ (models/temporal_head.onnx and models/manifest.json are never written).
# Each figure file is `deepfake-guard eval --json`'s object plus "logo" (what was trained on what) and
# "in_generator" (the same head on its own generator's held-out split, for the gap).
#
# Options: --work DIR (default .cache/logo), --jobs N (default: all cores), --fold meshgen|talkgen|both,
# --mg-train N --mg-val N --mg-heldout N --tg-heldout N (clips; default the plan's 400 / 80 / 224 / 224),
# --tg-heldout-dir DIR (a rendered talkgen held-out split; default WORK/talkgen/heldout, or
# .cache/training/heldout when reproduce.sh left it complete with that many clips), --epochs N (30), --seed N,
# --render-only, --no-in-generator (skip the in-generator reference evaluations), --no-build (use the
# target/release/deepfake-guard there is instead of `cargo build --release` first), --bin PATH (use this
# deepfake-guard binary, e.g. one built from a clean checkout; implies --no-build), --bin-note TEXT (where that
# binary comes from, recorded in the figures).
# A user's calibration.json beside a manifest is not applied (DEEPFAKE_GUARD_CALIBRATION=off): the figures are
# the heads' own operating points.
# Resumable: a split is reused when its manifest.csv has the count and .complete is there (a partial one is
# continued: splits.py --resume keeps finished clips); features and the LOGO head when their .complete
# matches their inputs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# The whole script is one function, read before it runs: editing this file while a run is going (renders take
# an hour) cannot change or break that run.
main() {

SMOKE=0
WORK="$ROOT/.cache/logo"
JOBS="$(nproc)"
FOLD=both
MG_TRAIN=400; MG_VAL=80; MG_HELDOUT=224; TG_HELDOUT=224
TG_DIR=""
EPOCHS=30
SEED=0
RENDER_ONLY=0
IN_GEN=1
BUILD=1
BIN=""
BIN_NOTE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --work) WORK="$2"; shift ;;
        --jobs) JOBS="$2"; shift ;;
        --fold) FOLD="$2"; shift ;;
        --mg-train) MG_TRAIN="$2"; shift ;;
        --mg-val) MG_VAL="$2"; shift ;;
        --mg-heldout) MG_HELDOUT="$2"; shift ;;
        --tg-heldout) TG_HELDOUT="$2"; shift ;;
        --tg-heldout-dir) TG_DIR="$2"; shift ;;
        --epochs) EPOCHS="$2"; shift ;;
        --seed) SEED="$2"; shift ;;
        --render-only) RENDER_ONLY=1 ;;
        --no-in-generator) IN_GEN=0 ;;
        --no-build) BUILD=0 ;;
        --bin) BIN="$2"; BUILD=0; shift ;;
        --bin-note) BIN_NOTE="$2"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "logo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$FOLD" in meshgen|talkgen|both) ;; *) echo "logo.sh: --fold meshgen|talkgen|both" >&2; exit 2 ;; esac
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
SECONDS_ARG=()
FIGURES="$ROOT/models/training/figures"
if [ "$SMOKE" = 1 ]; then
    MG_TRAIN=24; MG_VAL=8; MG_HELDOUT=8; TG_HELDOUT=8; EPOCHS=2; SECONDS_ARG=(--seconds 4)
    FIGURES="$WORK/figures"
fi
mkdir -p "$FIGURES"
step() { echo "== logo: $* ($(date +%H:%M:%S))" >&2; }

render() {  # generator split count dir
    local gen="$1" split="$2" n="$3" dir="$4"
    if [ -f "$dir/manifest.csv" ] && [ "$(wc -l < "$dir/manifest.csv")" -eq "$n" ] && [ -f "$dir/.complete" ]; then
        echo "logo: $gen $split ($n clips) already rendered in $dir" >&2
        return
    fi
    step "render $gen $split: $n clips into $dir"
    rm -f "$dir/.complete"
    python3 models/training/splits.py --generator "$gen" --make "$split" --count "$n" --out "$dir" \
        --jobs "$JOBS" --resume "${SECONDS_ARG[@]}"
    touch "$dir/.complete"
}

MG="$WORK/meshgen"
if [ -z "$TG_DIR" ]; then
    TG_DIR="$WORK/talkgen/heldout"
    REP="$ROOT/.cache/training/heldout"
    if [ "$SMOKE" = 0 ] && [ -f "$REP/.complete" ] && [ -f "$REP/manifest.csv" ] && \
       [ "$(wc -l < "$REP/manifest.csv")" -eq "$TG_HELDOUT" ]; then
        TG_DIR="$REP"
    fi
fi
TRAINING=0; [ "$FOLD" != meshgen ] && TRAINING=1
NEED_TG=0; { [ "$TRAINING" = 1 ] || [ "$IN_GEN" = 1 ]; } && NEED_TG=1
render meshgen heldout "$MG_HELDOUT" "$MG/heldout"
if [ "$TRAINING" = 1 ]; then
    render meshgen train "$MG_TRAIN" "$MG/train"
    render meshgen val "$MG_VAL" "$MG/val"
fi
[ "$NEED_TG" = 1 ] && render talkgen heldout "$TG_HELDOUT" "$TG_DIR"
if [ "$RENDER_ONLY" = 1 ]; then
    step "rendered (--render-only)"
    exit 0
fi

BIN="${BIN:-$ROOT/target/release/deepfake-guard}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
if [ "$BUILD" = 1 ]; then
    step "build"
    cargo build --release --quiet
elif [ ! -x "$BIN" ]; then
    echo "logo.sh: --no-build but there is no $BIN" >&2; exit 2
fi
export DEEPFAKE_GUARD_CALIBRATION=off
# a binary built elsewhere (--bin) looks for ONNX Runtime beside its own sources: point it at this checkout's
[ -z "${ORT_DYLIB_PATH:-}" ] && [ -f "$ROOT/.ort/libonnxruntime.so" ] && export ORT_DYLIB_PATH="$ROOT/.ort/libonnxruntime.so"
SHIPPED="$ROOT/models/manifest.json"

# The manifest the features are computed with: the shipped one without any temporal head, model paths made
# absolute (as reproduce.sh does); the LOGO head's manifest is this plus its own temporal_head entry.
BASE="$WORK/base_manifest.json"
python3 - "$SHIPPED" "$BASE" <<'EOF'
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

# evaluate NAME LIST MANIFEST: eval --json into WORK/eval/NAME.json (per clip: NAME_clips.jsonl); reused when
# the list, the manifest (it names the head's sha256) and the binary are the same as last time
evaluate() {
    mkdir -p "$WORK/eval"
    local key
    key="$(cat "$2" "$3" "$BIN" | sha256sum | cut -c1-16)"
    if [ -f "$WORK/eval/$1.json" ] && [ -f "$WORK/eval/$1.key" ] && [ "$(cat "$WORK/eval/$1.key")" = "$key" ]; then
        echo "logo: eval $1 already done ($WORK/eval/$1.json)" >&2
        return
    fi
    step "eval $1: $2 with $3"
    "$BIN" eval "$2" --models "$3" --jobs "$JOBS" --per-clip "$WORK/eval/$1_clips.jsonl" --json > "$WORK/eval/$1.json.part"
    mv "$WORK/eval/$1.json.part" "$WORK/eval/$1.json"
    echo "$key" > "$WORK/eval/$1.key"
}

# figure OUT FOLD TRAINED_ON TESTED_ON MANIFEST TEST_LIST EVAL_NAME IN_GEN_EVAL_NAME TRAIN_REPORT ("" = none)
figure() {
    python3 - "$@" "$WORK" "$BIN" "$BIN_NOTE" <<'EOF'
import hashlib, json, os, sys
import subprocess
out, fold, trained, tested, manifest, test_list, name, in_gen, report, work, binary, bin_note = sys.argv[1:13]
f = json.load(open(os.path.join(work, "eval", name + ".json")))
man = json.load(open(manifest))
head = man["models"]["temporal_head"]
head_file = os.path.join(os.path.dirname(os.path.abspath(manifest)), head["file"])
root = os.getcwd()   # the repository (logo.sh runs there): paths in the figures relative to it
rel = lambda p: os.path.relpath(p, root) if os.path.abspath(p).startswith(root + os.sep) else p
f["logo"] = {"fold": fold, "trained_on": trained, "tested_on": tested,
             "head_sha256": head.get("sha256"), "head_file": rel(head_file), "threshold": head["head"]["threshold"],
             "test_list": rel(test_list), "source": head.get("source"),
             "binary": rel(binary), "binary_note": bin_note or None, "binary_sha256": hashlib.sha256(open(binary, "rb").read()).hexdigest(),
             "repo_head": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
             # uncommitted Rust sources here at the time (they are in the binary only if it was built from here)
             "repo_rust_modified": subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                                                  capture_output=True, text=True).stdout.split("\n")[:-1]}
def by_voice(per_clip, lst):
    """Per voice of the test split (specs.jsonl beside the list): clips, clips called fake, mean score, clip AUC."""
    sp = os.path.join(os.path.dirname(lst), "specs.jsonl")
    if not os.path.exists(sp) or not os.path.exists(per_clip):
        return None
    voice = {json.loads(l)["name"]: json.loads(l)["voice"] for l in open(sp)}
    rows = {}
    for l in open(per_clip):
        c = json.loads(l)
        v = voice.get(os.path.splitext(os.path.basename(c["path"]))[0])
        if v is not None and c.get("score") is not None:
            rows.setdefault(v, []).append(c)
    out = {}
    for v, cs in sorted(rows.items()):
        g = [c for c in cs if c["label"] == 0]
        fk = [c for c in cs if c["label"] == 1]
        pairs = [(a["score"] > b["score"]) + 0.5 * (a["score"] == b["score"]) for a in fk for b in g]
        mean = lambda xs: round(sum(x["score"] for x in xs) / len(xs), 4) if xs else None
        out[v] = {"clips": len(cs), "genuine": len(g), "genuine_flagged_fake": sum(c["verdict"] == "fake" for c in g),
                  "genuine_mean_score": mean(g), "fake": len(fk), "fake_flagged_fake": sum(c["verdict"] == "fake" for c in fk),
                  "fake_mean_score": mean(fk), "auc": round(sum(pairs) / len(pairs), 4) if pairs else None}
    return out
f["by_voice"] = by_voice(os.path.join(work, "eval", name + "_clips.jsonl"), test_list)
if report and os.path.exists(report):
    r = json.load(open(report))
    f["logo"]["training"] = {k: r[k] for k in ("val_auc", "val_offset_mae_ms", "threshold", "val_window_recall",
                                             "train_windows", "val_windows", "seconds") if k in r}
if in_gen:
    g = json.load(open(os.path.join(work, "eval", in_gen + ".json")))
    f["in_generator"] = {"tested_on": f"{trained} heldout", **g}
with open(out, "w") as fh:
    json.dump(f, fh, indent=1, sort_keys=True)
    fh.write("\n")
keys = ["clips", "auc", "window_auc", "accuracy", "recall", "false_positive_rate", "drift_160ms_recall",
        "window_false_positive_rate", "offset_mae_ms", "genuine_minutes", "alerts_raised_on_genuine",
        "false_alerts_per_hour"]
def show(tag, x):
    print(f"{tag}: " + ", ".join(f"{k} {x.get(k)}" for k in keys))
    for gname, v in (x.get("groups") or {}).items():
        print(f"  {gname:8} {v['clips']:4} clips, flagged fake {v['flagged_fake']:4}, mean score {v['mean_score']}")
show(f"LOGO {fold} left out (head trained on {trained}, tested on {tested})", f)
for v, x in (f["by_voice"] or {}).items():
    print(f"  voice {v:18} {x['clips']:3} clips: genuine {x['genuine']:3} (called fake {x['genuine_flagged_fake']}, mean "
          f"{x['genuine_mean_score']}), fake {x['fake']:3} (called fake {x['fake_flagged_fake']}, mean {x['fake_mean_score']}), "
          f"AUC {x['auc']}")
if in_gen:
    show(f"  reference: the same head on {trained} heldout", f["in_generator"])
print(f"  -> {out}")
EOF
}

if [ "$FOLD" != talkgen ]; then
    step "fold: meshgen left out (the shipped head, trained on talkgen)"
    evaluate meshgen_out "$MG/heldout/manifest.csv" "$SHIPPED"
    IG=""
    if [ "$IN_GEN" = 1 ]; then evaluate shipped_on_talkgen "$TG_DIR/manifest.csv" "$SHIPPED"; IG=shipped_on_talkgen; fi
    figure "$FIGURES/logo_meshgen_out.json" meshgen talkgen meshgen "$SHIPPED" "$MG/heldout/manifest.csv" meshgen_out "$IG" ""
fi

if [ "$TRAINING" = 1 ]; then
    step "fold: talkgen left out (a head trained on meshgen)"
    features() {  # split hop
        local list="$MG/$1/manifest.csv" out="$WORK/features/meshgen_$1"
        local key
        key="$(cat "$list" "$BASE" | sha256sum | cut -c1-16) hop $2"
        if [ -f "$out/.complete" ] && [ "$(cat "$out/.complete")" = "$key" ]; then
            echo "logo: features of meshgen $1 already in $out" >&2
            return
        fi
        step "features: meshgen $1 (hop $2 ms)"
        rm -rf "$out"
        "$BIN" features "$list" --out "$out" --hop-ms "$2" --models "$BASE" --jobs "$JOBS"
        echo "$key" > "$out/.complete"
    }
    features train 400
    features val 800
    HEAD_DIR="$WORK/logo_head"
    HEAD="$HEAD_DIR/temporal_head.onnx"; HMAN="$HEAD_DIR/manifest.json"
    key="$(cat "$WORK/features/meshgen_train/.complete" "$WORK/features/meshgen_val/.complete" | sha256sum | cut -c1-16) epochs $EPOCHS seed $SEED"
    if [ -f "$HEAD_DIR/.complete" ] && [ "$(cat "$HEAD_DIR/.complete")" = "$key" ] && [ -f "$HEAD" ] && [ -f "$HMAN" ]; then
        echo "logo: the LOGO head is already trained in $HEAD_DIR" >&2
    else
        step "train on meshgen ($EPOCHS epochs)"
        rm -rf "$HEAD_DIR"; mkdir -p "$HEAD_DIR"
        cp "$BASE" "$HMAN"
        /usr/bin/python3 models/training/train.py --train "$WORK/features/meshgen_train" --val "$WORK/features/meshgen_val" \
            --out "$HEAD" --manifest "$HMAN" --epochs "$EPOCHS" --seed "$SEED" --report "$HEAD_DIR/train.json"
        echo "$key" > "$HEAD_DIR/.complete"
    fi
    "$BIN" check --models "$HMAN" >&2
    evaluate talkgen_out "$TG_DIR/manifest.csv" "$HMAN"
    IG=""
    if [ "$IN_GEN" = 1 ]; then evaluate logo_head_on_meshgen "$MG/heldout/manifest.csv" "$HMAN"; IG=logo_head_on_meshgen; fi
    figure "$FIGURES/logo_talkgen_out.json" talkgen meshgen talkgen "$HMAN" "$TG_DIR/manifest.csv" talkgen_out "$IG" \
        "$HEAD_DIR/train.json"
fi
step "done"
}

main "$@"
