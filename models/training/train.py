#!/usr/bin/env python3
"""Train the temporal head (issue 3) on features exported by `deepfake-guard features`, export it to ONNX and
write its manifest entry.

    python3 models/training/train.py --train DIR --val DIR --out models/temporal_head.onnx \
        --manifest models/manifest.json [--epochs 40] [--seed 0]

Inputs per window, exactly as the Rust runtime builds them (src/analysis/temporal.rs):
  frames [1, 80, AUX + E]: per 40 ms grid slot the frame's features (face, lips, change cues, audio) and
                           the frozen backbone embedding (E = 1280 for EfficientNet-Lite0); zero rows for
                           empty slots;
  sync   [1, 43]:          the lip/audio correlation at lags -800..800 ms (40 ms steps), a validity flag
                           and the classical estimator's confidence.
Model: per-window centring of the lip, brightness and audio-level columns (speaker-, camera- and
gain-invariant), standardisation (training-set statistics, baked into the graph); the raw embedding through a
fixed whitened PCA to 64 values (training set) and a learned projection to 16 (`--embedding raw|centred`;
the default `none` leaves this path out and keeps only the embedding's frame-to-frame change, a row feature:
with two training identities the raw path learns identity, see the model card); the aux features to 24 ->
bidirectional LSTM (32 per direction) stepping over pairs of slots (80 ms) -> mean and max over time, with
the sync vector through a small MLP -> p(fake) (sigmoid) and the audio/video offset in ms (positive = audio
late). Small on purpose: Debian's torch has no MKL, and the whole training must fit minutes on 2 cores.
Half the training windows lose a few frames the way a live sender drops them (`--drop-frames`, augment.py):
genuine and fake alike, so a dropped frame is not read as a face swap's frozen frame.

Debian's CPU torch (python3-torch) and numpy only. Deterministic for a given seed on one thread."""
import argparse
import hashlib
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment import add_carry, drop_frames  # noqa: E402
from featureset import auc, load as load_features  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = ("none", "drift", "dubbed", "jitter", "swap")


def dump_json(obj):
    """JSON with number lists (shapes) on one line, as models/tools/make_manifest.py writes manifests."""
    text = json.dumps(obj, indent=2)
    return re.sub(r"\[\s+([-\d.,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def log(*a):
    print("train:", *a, file=sys.stderr, flush=True)


def kind_of(w):
    if w.get("group"):
        return w["group"]
    name = os.path.basename(w["name"])
    for k in KINDS:
        if f"_{k}." in name or name.endswith(f"_{k}"):
            return k
    return "fake" if w["label"] else "none"


class Features:
    """Rows of every clip in one array, and per window the row index of each slot (the zero row where empty)."""

    def __init__(self, folder, min_face_ratio=0.5, faces=None):
        """`faces`: keep only clips of these identities (from the generator's meta beside each clip)."""
        keep = None
        if faces:
            with open(os.path.join(folder, "meta.json")) as f:
                list_dir = os.path.dirname(os.path.abspath(json.load(f)["list"]))

            def keep(c):
                meta = os.path.join(list_dir, os.path.splitext(c["name"])[0] + ".json")
                with open(meta) as f:
                    return json.load(f)["spec"]["face"] in faces
        self.meta, self.rows, self.zero, windows, self.idx = load_features(folder, min_face_ratio, keep)
        self.dim, self.aux, self.slots = self.meta["dim"], self.meta["aux"], self.meta["slots"]
        nan = lambda x: np.nan if x is None else float(x)
        self.sync = np.asarray([w["sync"] for w in windows], np.float32)
        self.label = np.asarray([w["label"] for w in windows], np.float32)
        self.offset = np.asarray([nan(w["offset_ms"]) for w in windows], np.float32)
        self.kind = np.asarray([kind_of(w) for w in windows])
        self.clip = np.asarray([w["clip"] for w in windows])
        self.lip_offset = np.asarray([nan(w["lipsync_offset_ms"]) for w in windows], np.float32)
        self.rows_t = torch.from_numpy(self.rows)

    def __len__(self):
        return len(self.label)

    def reduce(self, model):
        """Precompute the fixed part of the model on every row: the embedding through its standardisation
        and PCA projection (training then gathers [B, 80, aux + K] instead of [B, 80, aux + 1280])."""
        with torch.no_grad():
            e = model.reduce_emb(torch.from_numpy(self.rows[:, self.aux:]))
        e[self.zero] = model.reduce_emb(torch.zeros(1, self.dim - self.aux))[0]
        self.small = torch.cat([torch.from_numpy(self.rows[:, :self.aux]), e], dim=1).contiguous()

    def batch(self, ix, drops=None):
        """Windows `ix` as the head's training input; `drops` (a numpy Generator and a probability) removes
        frames from that share of the windows first (see `drop_frames`)."""
        ix = np.asarray(ix)
        idx = self.idx[ix]
        carry = None
        if drops is not None:
            idx, carry = drop_frames(idx, self.zero, *drops)
        x = self.small[torch.from_numpy(idx)]
        if carry is not None and len(carry):
            add_carry(x, self.small, carry)
        return (x, torch.from_numpy(self.sync[ix]), torch.from_numpy(self.label[ix]),
                torch.from_numpy(self.offset[ix]))

    def full_batch(self, ix):
        """Raw rows, as the runtime feeds the exported graph."""
        return torch.from_numpy(self.rows[self.idx[np.asarray(ix)]]), torch.from_numpy(self.sync[np.asarray(ix)])


# Columns centred per window (their mean over the window's slots with a face / with audio is removed), so the
# head sees how they move, not a speaker's mouth shape, a camera's brightness or a microphone's gain.
FACE_CENTRED = [3, 4, 9]               # mouth opening, mouth width, centre-minus-border brightness
AUDIO_CENTRED = [12, 13] + list(range(15, 39))   # level, log envelope, log-mel
FLAGS = [0, 2, 11]                     # face, several faces, audio: left as they are


def centre(x, sels):
    """Remove from the columns marked in each `sel` their mean over the window's slots whose `flag` column
    is 1 (those slots only). x: [B, T, aux]."""
    for sel, flag in sels:
        m = x[..., flag:flag + 1]
        mean = (x * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True).clamp(min=1.0)
        x = x - mean * m * sel
    return x


class Head(nn.Module):
    """frames [B, T, aux + E], sync [B, S] -> p(fake) [B, 1], offset_ms [B, 1]."""

    def __init__(self, aux, emb, sync_len, aux_mean, aux_std, emb_mean, emb_std, pca, proj=16, aux_proj=24, hidden=32,
                 embedding="centred"):
        super().__init__()
        self.aux = aux
        # "raw": the embedding as it is (carries identity); "centred": minus its window mean over the slots
        # with a face (only how the face's appearance changes: flicker, blending, frozen frames);
        # "none": not used.
        self.embedding = embedding
        sel = lambda cols: torch.zeros(aux).index_fill_(0, torch.tensor(cols), 1.0)
        self.register_buffer("face_sel", sel(FACE_CENTRED))
        self.register_buffer("audio_sel", sel(AUDIO_CENTRED))
        self.register_buffer("aux_mean", torch.as_tensor(aux_mean, dtype=torch.float32))
        self.register_buffer("aux_inv_std", torch.as_tensor(1.0 / aux_std, dtype=torch.float32))
        self.register_buffer("emb_mean", torch.as_tensor(emb_mean, dtype=torch.float32))
        self.register_buffer("emb_inv_std", torch.as_tensor(1.0 / emb_std, dtype=torch.float32))
        self.register_buffer("pca", torch.as_tensor(pca, dtype=torch.float32))   # [E, K]
        k = pca.shape[1]
        self.emb = nn.Sequential(nn.Dropout(0.1), nn.Linear(k, proj), nn.GELU())
        self.auxp = nn.Sequential(nn.Linear(aux, aux_proj), nn.GELU())
        # the LSTM steps over pairs of grid slots (80 ms): half the sequential steps, nothing dropped
        self.lstm = nn.LSTM(2 * (proj + aux_proj), hidden, batch_first=True, bidirectional=True)
        self.sync = nn.Sequential(nn.Linear(sync_len, 32), nn.GELU())
        self.fuse = nn.Sequential(nn.Linear(4 * hidden + 32, 64), nn.GELU(), nn.Dropout(0.2))
        self.p = nn.Linear(64, 1)
        self.off = nn.Linear(64, 1)

    def reduce_emb(self, e):
        """Fixed: standardise the embedding and project it on the training set's principal components."""
        return ((e - self.emb_mean) * self.emb_inv_std) @ self.pca

    def core(self, small, sync):
        """small [B, T, aux + K]: raw aux columns and the reduced embedding."""
        a = centre(small[..., :self.aux], ((self.face_sel, 0), (self.audio_sel, 11)))
        a = (a - self.aux_mean) * self.aux_inv_std
        e = small[..., self.aux:]
        if self.embedding == "centred":
            m = small[..., 0:1]
            e = e - (e * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True).clamp(min=1.0) * m
        elif self.embedding == "none":
            e = e * 0.0
        h = torch.cat([self.auxp(a), self.emb(e)], dim=-1)
        b, t, c = h.shape
        h, _ = self.lstm(h.reshape(b, t // 2, 2 * c))
        pooled = torch.cat([h.mean(dim=1), h.max(dim=1).values, self.sync(sync)], dim=-1)
        z = self.fuse(pooled)
        return self.p(z).squeeze(-1), self.off(z).squeeze(-1) * 100.0

    def forward(self, frames, sync):
        small = torch.cat([frames[..., :self.aux], self.reduce_emb(frames[..., self.aux:])], dim=-1)
        logit, off = self.core(small, sync)
        return torch.sigmoid(logit).unsqueeze(-1), off.unsqueeze(-1)


def stats(data, k=64):
    """Standardisation of the aux columns (over rows with a face; audio columns over rows with audio;
    centred columns after centring), and of the embedding with its top-k principal components."""
    r = data.rows[:-1]
    face = r[:, 0] > 0.5
    sel = r[face] if face.any() else r
    a = sel[:, :data.aux]
    aux_mean, aux_std = a.mean(0), a.std(0)
    aud = r[:, 11] > 0.5
    if aud.any():
        aux_mean[11:] = r[aud][:, 11:data.aux].mean(0)
        aux_std[11:] = r[aud][:, 11:data.aux].std(0)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(data), size=min(len(data), 2000), replace=False)
    w = torch.from_numpy(r[:, :data.aux][np.minimum(data.idx[pick], len(r) - 1)])
    for cols, flag in ((FACE_CENTRED, 0), (AUDIO_CENTRED, 11)):
        s = torch.zeros(data.aux).index_fill_(0, torch.tensor(cols), 1.0)
        c = centre(w, ((s, flag),)).numpy()
        present = w[..., flag].numpy() > 0.5
        aux_mean[cols] = 0.0
        aux_std[cols] = c[present][:, cols].std(0)
    aux_mean[FLAGS], aux_std[FLAGS] = 0.0, 1.0
    aux_std = np.where(aux_std < 1e-6, 1.0, aux_std)
    e = sel[:, data.aux:]
    if len(e) > 6000:
        e = e[rng.choice(len(e), 6000, replace=False)]
    emb_mean, emb_std = e.mean(0), e.std(0)
    # nearly constant embedding values must not be blown up into noise: floor the deviation
    emb_std = np.maximum(emb_std, 0.1 * np.median(emb_std) + 1e-6)
    z = (e - emb_mean) / emb_std
    vals, vecs = np.linalg.eigh(np.cov(z, rowvar=False))
    order = np.argsort(vals)[::-1][:k]
    pca = vecs[:, order] / np.sqrt(np.maximum(vals[order], 1e-6))   # whitened components
    log(f"embedding PCA: top {k} components hold {vals[order].sum() / vals.sum():.1%} of the variance")
    f32 = lambda x: np.asarray(x, np.float32)
    return f32(aux_mean), f32(aux_std), f32(emb_mean), f32(emb_std), f32(pca)


def fit(model, tr, va, a, tag, t0):
    """Train one model; keeps the epoch with the best validation AUC. Returns the history."""
    noise = torch.cat([torch.from_numpy(1.0 / model.aux_inv_std.numpy()), torch.ones(model.pca.shape[1])])
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-3)
    steps = a.epochs * ((len(tr) + a.batch - 1) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps)
    bce = nn.BCEWithLogitsLoss()
    best, best_state, history = -1.0, None, []
    drop_rng = np.random.default_rng(np.random.randint(1 << 31))
    for epoch in range(a.epochs):
        model.train()
        perm = np.random.permutation(len(tr))
        total = 0.0
        for i in range(0, len(perm), a.batch):
            f, s, y, o = tr.batch(perm[i:i + a.batch], drops=(drop_rng, a.drop_frames) if a.drop_frames > 0 else None)
            f = f + 0.02 * torch.randn_like(f) * noise   # feature noise, 2 % of each deviation
            logit, off = model.core(f, s)
            loss = bce(logit, y)
            m = ~torch.isnan(o) & (s[:, -2] > 0.5)
            if m.any():
                loss = loss + 0.5 * nn.functional.smooth_l1_loss(off[m] / 100.0, o[m] / 100.0)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss) * len(y)
        p, off = evaluate(model, va)
        va_auc, va_mae = report(f"{tag}epoch {epoch + 1:2d} ({time.time() - t0:.0f} s) loss {total / len(tr):.4f} val",
                                va, p, off)
        score = np.nan_to_num(va_auc) - (va_mae / 10000.0 if np.isfinite(va_mae) else 0.0)
        history.append({"epoch": epoch + 1, "loss": total / len(tr), "val_auc": va_auc, "val_offset_mae_ms": va_mae})
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    return history


class Ensemble(nn.Module):
    """Members trained from different seeds on the same data; p(fake) and the offset are their means."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.aux = members[0].aux

    def reduce_emb(self, e):
        return self.members[0].reduce_emb(e)

    def core(self, small, sync):
        outs = [m.core(small, sync) for m in self.members]
        p = torch.stack([torch.sigmoid(o[0]) for o in outs]).mean(0).clamp(1e-7, 1 - 1e-7)
        return torch.log(p / (1 - p)), torch.stack([o[1] for o in outs]).mean(0)

    def forward(self, frames, sync):
        small = torch.cat([frames[..., :self.aux], self.reduce_emb(frames[..., self.aux:])], dim=-1)
        outs = [m.core(small, sync) for m in self.members]
        p = torch.stack([torch.sigmoid(o[0]) for o in outs]).mean(0)
        off = torch.stack([o[1] for o in outs]).mean(0)
        return p.unsqueeze(-1), off.unsqueeze(-1)


def evaluate(model, data, bs=256):
    model.eval()
    ps, offs = [], []
    with torch.no_grad():
        for i in range(0, len(data), bs):
            f, s, _, _ = data.batch(range(i, min(len(data), i + bs)))
            logit, o = model.core(f, s)
            ps.append(torch.sigmoid(logit).numpy())
            offs.append(o.numpy())
    return np.concatenate(ps), np.concatenate(offs)


def report(name, data, p, off):
    a = auc(p, data.label)
    has = ~np.isnan(data.offset) & (data.sync[:, -2] > 0.5)
    mae = float(np.abs(off[has] - data.offset[has]).mean()) if has.any() else float("nan")
    parts = [f"{name}: windows {len(data)}, AUC {a:.4f}, offset MAE {mae:.1f} ms"]
    for k in KINDS:
        m = data.kind == k
        if m.any():
            parts.append(f"{k} {p[m].mean():.3f}")
    log(", ".join(parts))
    return a, mae


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="features folder of the training split")
    ap.add_argument("--val", required=True, help="features folder of the validation split")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    ap.add_argument("--manifest", action="append", default=[],
                    help="manifest to add/replace the temporal_head entry in (repeat for several, e.g. the fp32 one)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ensemble", type=int, default=3, help="members trained from seeds seed.. (averaged)")
    ap.add_argument("--target-fpr", type=float, default=0.002,
                    help="share of genuine validation windows allowed at or above the operating threshold")
    ap.add_argument("--report", help="write the training figures (JSON) here")
    ap.add_argument("--embedding", choices=["raw", "centred", "none"], default="none",
                    help="how the head sees the raw backbone embedding (default none: only its frame-to-frame change, a row feature; see the model card)")
    ap.add_argument("--drop-frames", type=float, default=0.5,
                    help="share of training windows that lose 1-6 frames, as a live sender under load does "
                         "(genuine and fake alike; 0: off)")
    ap.add_argument("--train-faces", help="only these identities from --train (comma-separated)")
    ap.add_argument("--val-faces", help="only these identities from --val (comma-separated): e.g. validate on an "
                    "identity left out of --train-faces")
    a = ap.parse_args(argv)

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.time()
    split = lambda x: x.split(",") if x else None
    tr, va = Features(a.train, faces=split(a.train_faces)), Features(a.val, faces=split(a.val_faces))
    if tr.meta["backbone_sha256"] != va.meta["backbone_sha256"] or tr.dim != va.dim:
        raise SystemExit("train: train and val features come from different backbones")
    log(f"train {len(tr)} windows ({int(tr.label.sum())} fake) from {tr.meta['clips']} clips, "
        f"val {len(va)} windows; rows of {tr.dim} ({tr.aux} + {tr.dim - tr.aux}); loaded in {time.time() - t0:.0f} s")
    st = stats(tr)
    members, history = [], []
    for m_i in range(a.ensemble):
        seed = a.seed + m_i
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = Head(tr.aux, tr.dim - tr.aux, tr.sync.shape[1], *st, embedding=a.embedding)
        if m_i == 0:
            tr.reduce(model)   # the fixed part is the same for every member
            va.reduce(model)
        h = fit(model, tr, va, a, f"member {m_i + 1}/{a.ensemble} (seed {seed}) ", t0)
        members.append(model)
        history.append(h)
    model = members[0] if len(members) == 1 else Ensemble(members)
    model.eval()
    p, off = evaluate(model, va)
    va_auc, va_mae = report("best val", va, p, off)
    genuine = np.sort(p[va.label < 0.5])
    # operating threshold: the (1 - target_fpr) quantile of genuine validation windows, at least 0.5
    q = genuine[min(len(genuine) - 1, int(np.ceil((1 - a.target_fpr) * len(genuine))) - 1)] if len(genuine) else 0.5
    threshold = float(max(0.5, min(0.95, q + 0.02)))
    recall = float((p[va.label > 0.5] >= threshold).mean())
    log(f"operating threshold {threshold:.3f}: val window recall {recall:.3f}, "
        f"genuine window FPR {(genuine >= threshold).mean():.4f}")

    # export
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    frames = torch.zeros(1, tr.slots, tr.dim)
    sync = torch.zeros(1, tr.sync.shape[1])
    torch.onnx.export(model, (frames, sync), a.out, input_names=["frames", "sync"],
                      output_names=["p_fake", "offset_ms"], opset_version=17, do_constant_folding=True)
    with torch.no_grad():
        ref = model(*tr.full_batch([0]))
    digest = hashlib.sha256(open(a.out, "rb").read()).hexdigest()
    log(f"exported {a.out} ({os.path.getsize(a.out)} bytes, sha256 {digest}); reference output of window 0: "
        f"p {float(ref[0]):.4f}, offset {float(ref[1]):.1f} ms; {time.time() - t0:.0f} s in all")
    entry = {
        "file": a.out,   # per manifest: relative to its folder (below)
        "sha256": digest,
        "inputs": [
            {"name": "frames", "role": "frames", "shape": [1, tr.slots, tr.dim], "dtype": "float32"},
            {"name": "sync", "role": "sync", "shape": [1, int(tr.sync.shape[1])], "dtype": "float32"},
        ],
        "outputs": [
            {"name": "p_fake", "role": "p_fake", "shape": [1, 1], "dtype": "float32"},
            {"name": "offset_ms", "role": "offset_ms", "shape": [1, 1], "dtype": "float32"},
        ],
        "head": {
            "feature_version": tr.meta["feature_version"],
            "grid_ms": tr.meta["grid_ms"],
            "threshold": round(threshold, 4),
            "suspicious": round(threshold * 0.6, 4),
            "clear": round(threshold * 0.6, 4),
            "backbone_sha256": tr.meta["backbone_sha256"],
            "embedding": a.embedding,
        },
        "source": {"trained_by": "models/training/train.py", "seed": a.seed, "epochs": a.epochs,
                   "ensemble": a.ensemble, "embedding": a.embedding, "drop_frames": a.drop_frames,
                   "train_windows": len(tr), "val_windows": len(va)},
        "license": "Apache-2.0",
        "card": "cards/temporal_head.md",
    }
    for path in a.manifest:
        with open(path) as f:
            man = json.load(f)
        rel = os.path.relpath(os.path.abspath(a.out), os.path.dirname(os.path.abspath(path)))
        man["models"]["temporal_head"] = dict(entry, file=rel)
        with open(path, "w") as f:
            f.write(dump_json(man))
        log(f"manifest {path}: temporal_head entry written")
    if a.report:
        with open(a.report, "w") as f:
            json.dump({"val_auc": va_auc, "val_offset_mae_ms": va_mae, "threshold": threshold,
                       "val_window_recall": recall, "history": history[0], "members": history, "train_windows": len(tr),
                       "val_windows": len(va), "seconds": time.time() - t0}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
