#!/usr/bin/env python3
"""How much lip-sync evidence a dubbed clip carries: the timing of the sound that drives the mouth (A)
against the sound the clip plays (B), from the generator itself, for every dubbed clip of a split.

For each dubbed clip of the plan (`splits.py`), A and B are rebuilt exactly as talkgen builds them (same
seed, voices, texts, sox time-scaling) and compared over the speech, with no video and no model:

- local lag: over 0.5 s windows (every 0.1 s, where A's 250-3000 Hz energy moves by >= 3 dB), the shift of B
  against A (5 ms steps, +-200 ms) that correlates best. A genuine clip has 0 everywhere (talkgen drives the
  mouth from the very sound it plays); a drifted one has its offset everywhere; the re-enactment jitter moves
  it by 60-350 ms. One video frame at 25 fps is 40 ms.
- correlation at 25 fps of A's and B's band energy over the speech: what a perfect lip reader, whose lip
  signal followed A exactly, would measure at lag 0 (a genuine clip: 1.0).

No held-out figure of any model comes out of this; it describes the fakes themselves.

    .venv/bin/python models/training/dub_timing.py --split train [--count 400] [--json out.json]
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import splits  # noqa: E402
from talkgen import cli as C, face as F, speech as S  # noqa: E402

ENV_HZ = 200            # fine clock for the local lag (5 ms)
WIN_S, HOP_S, MAX_LAG_S = 0.5, 0.1, 0.2
FLOOR_DB = 40.0          # energies below (peak - 40 dB) count as silence


def envelope(x, hz):
    e = S.band_energy_db(x, hz, int(len(x) / S.SR * hz))
    return np.maximum(e, e.max() - FLOOR_DB)


def local_lags(ea, eb):
    """|best shift| in ms of eb against ea per window (ea's windows that move by >= 3 dB)."""
    W, H, L = int(WIN_S * ENV_HZ), int(HOP_S * ENV_HZ), int(MAX_LAG_S * ENV_HZ)
    out = []
    for s in range(L, len(ea) - W - L, H):
        x = ea[s:s + W] - ea[s:s + W].mean()
        if x.std() < 3.0:
            continue
        seg = np.lib.stride_tricks.sliding_window_view(eb[s - L:s + W + L], W)      # (2L+1, W)
        y = seg - seg.mean(1, keepdims=True)
        c = (y @ x) / (np.linalg.norm(y, axis=1) * np.linalg.norm(x) + 1e-9)
        out.append(abs(int(np.argmax(c)) - L) * 1000.0 / ENV_HZ)
    return out


def clip_streams(spec):
    """(A, B): the mouth's driving speech and the played speech of a dubbed clip, as talkgen makes them."""
    argv = splits.talkgen_cmd(spec, "unused.mp4", "unused.json", sys.executable)[2:]
    a = C.parse(argv)
    _, finfo = F.resolve_face(a.face, a.face_image)
    v = C.variation(a, finfo)
    v["_W"] = a.width
    quiet = lambda *x: None  # noqa: E731
    content, sentences = C.plan_speech(a, v, quiet)
    dub, params, _ = C.dub_audio(a, v, content, sentences, quiet)
    return content, dub, params


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=splits.SPLITS, default="train")
    ap.add_argument("--count", type=int, help="clips of the plan to look through (default: the split's size)")
    ap.add_argument("--json", help="write the per-clip figures here")
    a = ap.parse_args(argv)
    count = a.count or splits.DEFAULT_COUNT[a.split]
    rows = []
    dubbed = [s for s in splits.specs(a.split, count) if s["kind"] == "dubbed"]
    for i, s in enumerate(dubbed):
        A, B, p = clip_streams(s)
        lags = local_lags(envelope(A, ENV_HZ), envelope(B, ENV_HZ))
        ea, eb = envelope(A, splits.FPS), envelope(B, splits.FPS)
        rows.append({"name": s["name"], "mode": p["mode"], "tempo": p["tempo"],
                     "lag_median_ms": float(np.median(lags)) if lags else None,
                     "lag_p90_ms": float(np.percentile(lags, 90)) if lags else None,
                     "share_over_frame": float(np.mean(np.array(lags) > 40.0)) if lags else None,
                     "corr_25fps": float(np.corrcoef(ea, eb)[0, 1])})
        print(f"\r{i + 1}/{len(dubbed)} dubbed clips", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"{a.split}: {len(rows)} dubbed clips")
    print(f"{'mode':6} {'clips':>5} {'|lag| median ms':>16} {'|lag| p90 ms':>13} {'windows > 1 frame':>18} "
          f"{'corr at 25 fps':>15}")
    for mode in ("voice", "text", "both"):
        r = [x for x in rows if x["mode"] == mode and x["lag_median_ms"] is not None]
        if not r:
            continue
        med = lambda k: float(np.median([x[k] for x in r]))  # noqa: E731
        print(f"{mode:6} {len(r):5d} {med('lag_median_ms'):16.0f} {med('lag_p90_ms'):13.0f} "
              f"{100 * med('share_over_frame'):17.0f}% {med('corr_25fps'):15.2f}")
    print("(medians over clips; a genuine clip: 0 ms, 0 %, 1.00)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
