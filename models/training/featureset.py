"""A features folder written by `deepfake-guard features` (numpy only: train.py and the onnxruntime scripts
read it the same way), and the window AUC both report."""
import json
import os

import numpy as np


def load(folder, min_face_ratio=0.5, clip_filter=None):
    """Returns (meta, rows, zero, windows, idx): `rows` holds every kept clip's rows back to back plus one zero
    row at index `zero` (where empty slots point); `windows` the scored windows' records from windows.jsonl
    (those with a face in at least `min_face_ratio` of their frames, as the runtime scores them) and `idx`
    [len(windows), slots] the row of each of their slots. `clip_filter(clip_record)` keeps only some clips."""
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    clips = [json.loads(x) for x in open(os.path.join(folder, "clips.jsonl"))]
    if clip_filter:
        clips = [c for c in clips if clip_filter(c)]
    blocks, base, n = [], {}, 0
    for c in clips:
        r = np.load(os.path.join(folder, "rows", f"{c['clip']:06d}.npy"))
        assert r.shape[1] == meta["dim"], (c, r.shape)
        base[c["clip"]] = n
        n += r.shape[0]
        blocks.append(r)
    rows = np.concatenate(blocks + [np.zeros((1, meta["dim"]), np.float32)]).astype(np.float32)
    windows, idx = [], []
    for line in open(os.path.join(folder, "windows.jsonl")):
        w = json.loads(line)
        if w["clip"] not in base or w["face_ratio"] < min_face_ratio:
            continue  # the runtime does not score windows without a face
        s = np.asarray(w["seqs"], np.int64)
        idx.append(np.where(s >= 0, s + base[w["clip"]], n))
        windows.append(w)
    return meta, rows, n, windows, np.stack(idx)


def auc(scores, labels):
    """Area under the ROC curve (ties count half); nan without both classes."""
    order = np.argsort(scores, kind="mergesort")
    s, l = scores[order], labels[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    pos = l > 0.5
    npos, nneg = pos.sum(), (~pos).sum()
    if npos == 0 or nneg == 0:
        return float("nan")
    return float((ranks[pos].sum() - npos * (npos + 1) / 2) / (npos * nneg))
