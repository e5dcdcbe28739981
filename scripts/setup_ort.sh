#!/usr/bin/env bash
# Fetch libonnxruntime.so from the PyPI `onnxruntime` wheel (the only network this needs is PyPI), check its
# sha256 and put it in <repo>/.ort/ (gitignored). `ort`'s load-dynamic finds it through ORT_DYLIB_PATH, which
# .cargo/config.toml sets for cargo run/test, or through the path compiled into the binary. Idempotent.
set -euo pipefail
ORT_VERSION="1.31.1"
SO_SHA256="fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"  # libonnxruntime.so.1.31.1, x86_64
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.ort"
SO="$DEST/libonnxruntime.so.$ORT_VERSION"

if [[ -f "$SO" ]] && echo "$SO_SHA256  $SO" | sha256sum -c --status; then
  ln -sfn "libonnxruntime.so.$ORT_VERSION" "$DEST/libonnxruntime.so.1"
  ln -sfn "libonnxruntime.so.1" "$DEST/libonnxruntime.so"
  exit 0
fi
[[ "$(uname -m)" == x86_64 ]] || { echo "setup_ort.sh: only x86_64 is pinned here; set ORT_DYLIB_PATH to your own libonnxruntime.so" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
echo "setup_ort.sh: fetching onnxruntime $ORT_VERSION from PyPI" >&2
# The .so inside is the same for every cp3xx wheel: pin the tag so any local python/pip works.
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
  "onnxruntime==$ORT_VERSION" -d "$tmp"
mkdir -p "$DEST"
python3 - "$tmp"/onnxruntime-*.whl "$SO" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(whl)
name = next(n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so."))
open(out, "wb").write(z.read(name))
PY
echo "$SO_SHA256  $SO" | sha256sum -c --quiet || { rm -f "$SO"; echo "setup_ort.sh: sha256 mismatch for $SO" >&2; exit 1; }
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$DEST/libonnxruntime.so.1"
ln -sfn "libonnxruntime.so.1" "$DEST/libonnxruntime.so"
echo "setup_ort.sh: onnxruntime $ORT_VERSION -> $DEST/libonnxruntime.so" >&2
