#!/usr/bin/env python3
"""How an exported temporal head holds up when a live sender loses frames: scores the windows of a features
folder (from `deepfake-guard features`) through the ONNX head as they are, then with frames lost the way the
runtime's grid shows them (models/training/augment.py: in every window 1 to MOST slots, runs of 1 to 3).

    .venv/bin/python models/training/robustness.py --features .cache/training/features/val \
        --manifest models/manifest.json [--most 4] [--seed 0] [--json]

Prints, for both conditions: window AUC, the share of genuine windows at or above the head's operating
threshold (the false positives a window would raise), the mean genuine score and the fake recall. Needs
numpy and onnxruntime (the project's .venv)."""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment import add_carry, drop_frames  # noqa: E402
from featureset import auc, load  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", required=True, help="features folder (deepfake-guard features --out)")
    ap.add_argument("--manifest", default="models/manifest.json", help="manifest with the temporal_head entry")
    ap.add_argument("--most", type=int, default=4, help="at most this many slots lost per window (default 4: the "
                    "runtime scores windows with up to 5 %% of 80 slots lost)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import onnxruntime as ort

    man = json.load(open(a.manifest))
    entry = man["models"]["temporal_head"]
    head = os.path.join(os.path.dirname(os.path.abspath(a.manifest)), entry["file"])
    threshold = entry["head"]["threshold"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(head, opts, providers=["CPUExecutionProvider"])
    _, rows, zero, windows, idx = load(a.features)
    sync = np.asarray([w["sync"] for w in windows], np.float32)
    label = np.asarray([w["label"] for w in windows], np.float32)

    def scores(ix, carry):
        out = np.empty(len(ix), np.float32)
        for i in range(len(ix)):
            x = rows[ix[i]][None].copy()
            if len(carry):
                c = carry[carry[:, 0] == i].copy()
                c[:, 0] = 0
                add_carry(x, rows, c)
            out[i] = sess.run(None, {"frames": x, "sync": sync[i:i + 1]})[0].reshape(-1)[0]
        return out

    res = {}
    lost_idx, carry = drop_frames(idx, zero, np.random.default_rng(a.seed), 1.0, a.most)
    for name, ix, c in (("as recorded", idx, np.zeros((0, 3), np.int64)), (f"1-{a.most} frames lost", lost_idx, carry)):
        p = scores(ix, c)
        g, f = p[label < 0.5], p[label > 0.5]
        res[name] = {"windows": len(p), "auc": round(auc(p, label), 4),
                     "genuine_at_threshold": round(float((g >= threshold).mean()), 4),
                     "genuine_mean": round(float(g.mean()), 4), "fake_recall": round(float((f >= threshold).mean()), 4)}
    if a.json:
        print(json.dumps({"head": entry["sha256"], "threshold": threshold, "results": res}))
    else:
        print(f"head {os.path.basename(head)} ({entry['sha256'][:12]}), threshold {threshold}")
        for k, v in res.items():
            print(f"{k:>20}: {v['windows']} windows, AUC {v['auc']:.4f}, genuine >= threshold "
                  f"{v['genuine_at_threshold']:.2%}, genuine mean {v['genuine_mean']:.3f}, fake recall {v['fake_recall']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
