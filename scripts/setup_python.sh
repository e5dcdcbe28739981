#!/usr/bin/env bash
# Creates the project's Python venv at <repo>/.venv and installs scripts/requirements.txt into it.
# Idempotent: it reinstalls only when requirements.txt (or the Python it was built with) changed,
# which it tells by a stamp file holding their sha256.
# Needs python3 with the venv module (Debian: apt-get install -y python3-venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/scripts/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PY="${PYTHON:-python3}"

command -v "$PY" >/dev/null || { echo "setup_python.sh: '$PY' not found; install python3 (Debian: apt-get install -y python3 python3-venv)" >&2; exit 1; }
want="$( { sha256sum "$REQ" | cut -d' ' -f1; "$PY" -c 'import sys; print(sys.version.split()[0])'; } | sha256sum | cut -d' ' -f1)"

# A venv whose interpreter is gone or broken is rebuilt from scratch.
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'pass' 2>/dev/null; then
    echo "setup_python.sh: $VENV is broken, recreating it" >&2
    rm -rf "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" || { echo "setup_python.sh: '$PY -m venv' failed; on Debian: apt-get install -y python3-venv" >&2; exit 1; }
fi
echo "setup_python.sh: installing $(grep -c '^[a-zA-Z]' "$REQ") packages into $VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
