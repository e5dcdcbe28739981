#!/usr/bin/env python3
"""Synthetic talking-head clips with a known audio/video offset. Run with the project's venv:
    .venv/bin/python scripts/talkgen.py --face astronaut --seconds 6 --offset-ms 200 --out clip.mp4 --meta clip.json
See scripts/talkgen/README.md."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from talkgen.cli import main
except ImportError as e:  # numpy / pillow / onnxruntime missing: wrong interpreter
    sys.exit(f"talkgen: {e}. Run it with the project's venv: scripts/setup_python.sh, then "
             f".venv/bin/python scripts/talkgen.py ...")

if __name__ == "__main__":
    sys.exit(main())
