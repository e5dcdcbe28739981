#!/usr/bin/env python3
"""Talking-face clips from a FaceMesh landmark mesh animated by phoneme visemes (a second generator, independent
of talkgen's). Run with the project's venv:
    .venv/bin/python scripts/meshgen.py --face astronaut --seconds 6 --seed 1 --out clip.mp4 --meta clip.json
See scripts/meshgen/README.md."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from meshgen.cli import main
except ImportError as e:  # numpy / opencv / onnxruntime missing: wrong interpreter
    print(f"meshgen: {e}; run it with the project's venv (scripts/setup_python.sh, then .venv/bin/python "
          f"scripts/meshgen.py ...)", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main())
