"""Fake kinds, with the semantics of talkgen's (models/training/README.md, "The kinds"), implemented for the mesh
generator:

  drift   the whole audio track shifted against the video by +-80..600 ms (log-uniform size, random sign)
  dubbed  the mouth (visemes) is driven by utterance A, the audio is utterance B: text (other words, same voice),
          voice (A's sentences by another voice, each time-scaled onto A's sentence), both; B is time-scaled
          (sox tempo, 0.8-1.25x) to A's length and placed where A is, with A's loudness
  jitter  the face shows the speech heard at t + X(t): 'syllable' (a new lag every 0.12-0.30 s) or 'slow'
          (a bump or a slow wave); applies to everything the speech drives (visemes, stress nods, brows)
  swap    face swap: the inner face of ANOTHER photo (a donor identity), warped onto this face's deformed mesh
          every frame, rendered at a swap network's low resolution, colour-transferred towards the target,
          with per-frame landmark jitter of the donor texture, pasted through a feathered landmark-hull seam.
          The mouth opening and its interior are the target's rig's: lip-sync stays exact.
"""
import subprocess

import cv2
import numpy as np

from . import mesh as M
from . import voice as V
from . import warp as Wp

KINDS = ("none", "drift", "dubbed", "jitter", "swap")


def drift_offset(rng, lo=80, hi=600):
    mag = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return int(round(mag)) * (1 if rng.uniform() < 0.5 else -1)


def tempo_fit(x, n):
    """Time-scales x (48 kHz float32) to n samples with sox `tempo` (pitch kept), factor limited to 0.8..1.25;
    what remains is split evenly as silence before and after (or cut evenly). Returns (y, factor)."""
    if len(x) == 0:
        return np.zeros(n, np.float32), 1.0
    f = float(np.clip(len(x) / n, 0.8, 1.25))
    y = x
    if abs(f - 1) > 0.004:
        raw = ["-t", "raw", "-r", str(V.SR), "-e", "floating-point", "-b", "32", "-c", "1"]
        p = subprocess.run(["sox", *raw, "-", *raw, "-", "tempo", "-s", f"{f:.5f}"],
                           input=np.asarray(x, "<f4").tobytes(), capture_output=True)
        if p.returncode != 0:
            raise V.VoiceError("sox tempo failed: " + p.stderr.decode(errors="replace").strip())
        y = np.frombuffer(p.stdout, "<f4").astype(np.float32)
        a, b = V.active_span(y)
        y = y[max(0, a - 960):b + 1920]
    else:
        f = 1.0
    d = n - len(y)
    if d >= 0:
        y = np.r_[np.zeros(d // 2, np.float32), y, np.zeros(d - d // 2, np.float32)]
    else:
        c = -d
        y = y[c // 2: len(y) - (c - c // 2)]
    return y.astype(np.float32), f


def jitter_track(rng, n, fps, span, mode=None, max_ms=None):
    """Per-frame lag X_k (ms): the face at video time t shows the speech heard at t + X."""
    mode = mode or str(rng.choice(["syllable", "slow"]))
    t = np.arange(n) / fps
    p = {"mode": mode}
    if mode == "syllable":
        J = float(max_ms) if max_ms else float(rng.uniform(60, 200))
        knots = [0.0]
        while knots[-1] < t[-1] + 0.3:
            knots.append(knots[-1] + float(rng.uniform(0.12, 0.30)))
        vals = rng.uniform(-J, J, len(knots))
        # piecewise constant with 40 ms linear ramps between the values (independent of the frame rate)
        x = np.empty(n)
        for k in range(n):
            i = int(np.searchsorted(knots, t[k], side="right") - 1)
            r = (t[k] - knots[i]) / 0.04
            x[k] = vals[i] if (i == 0 or r >= 1) else vals[i - 1] + (vals[i] - vals[i - 1]) * r
        p.update({"max_ms": round(J, 1), "segments": len(knots)})
    else:
        shape = str(rng.choice(["bump", "wave"]))
        A = (float(max_ms) if max_ms else float(rng.uniform(150, 350))) * (1 if rng.uniform() < 0.5 else -1)
        if shape == "bump":
            s0, s1 = span
            u = np.clip((t - s0) / max(s1 - s0, 1e-3), 0, 1)
            x = A * np.sin(np.pi * u) ** 2
            p.update({"shape": "bump", "peak_ms": round(A, 1)})
        else:
            f = float(rng.uniform(0.12, 0.35))
            ph = float(rng.uniform(0, 2 * np.pi))
            x = A * np.sin(2 * np.pi * f * t + ph)
            p.update({"shape": "wave", "amp_ms": round(A, 1), "freq_hz": round(f, 3)})
    return x, p


def swap_params(rng):
    return {
        "swap_res_px": int(rng.integers(64, 161)),          # face width at which the donor face is rendered
        "mask_shrink": float(rng.uniform(0.80, 0.92)),      # hull of the inner face, shrunk towards its centre
        "mask_top": str(rng.choice(["brows", "mid_forehead"])),
        "feather_frac": float(rng.uniform(0.02, 0.06)),     # seam feather (Gaussian sigma) / face width
        "colour_transfer": float(rng.uniform(0.55, 1.0)),   # 1 = donor's colour statistics fully matched
        "align_jitter_px": float(rng.uniform(0.2, 1.2)),    # per-frame noise of the donor's landmark fit
        "jitter_smooth": float(rng.uniform(0.0, 0.7)),      # AR(1) smoothing of that noise
        "sharpen": float(rng.uniform(0.0, 0.6)) if rng.uniform() < 0.4 else 0.0,
    }


class Swap:
    """Pastes the donor's inner face onto each rendered frame, warped through the target's deformed mesh."""

    def __init__(self, params, rig, base, donor_rgb, donor_lm, rng, n):
        self.p = params
        self.rig = rig
        # the donor photo at the swap resolution (a face-swap network's output size)
        P = donor_lm[:, :2]
        fw = np.linalg.norm(P[M.FACE_SIDES[1]] - P[M.FACE_SIDES[0]])
        s = params["swap_res_px"] / fw
        img = cv2.resize(donor_rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        self.src = P * s + (s - 1) * 0.5
        self.donor = img
        # the triangles of the face (landmarks only), from the target's triangulation
        t = rig.tris
        keep = (t < rig.n_lm).all(1)
        self.tris = t[keep]
        n_hole_keep = int(keep[len(t) - rig.n_hole:].sum()) if rig.n_hole else 0
        self.warper = Wp.Warper(img, self.src, self.tris, (0, 0, base.shape[1], base.shape[0]), rig.n_lm, n_hole_keep)
        # mask: hull of the inner face (brows or mid-forehead down to the chin)
        uv = rig.uv0
        v_brow = uv[M.BROWS["right"] + M.BROWS["left"], 1].min()
        top = v_brow - (0.0 if params["mask_top"] == "brows" else 0.12 * rig.fh)
        sel = uv[:rig.n_lm, 1] >= top
        sel[M.FACE_OVAL] = False                       # not the outline itself: a turned donor's edge is background
        self.mask_idx = np.nonzero(sel)[0]
        # per-frame alignment noise of the donor texture (px of the output), AR(1)-smoothed
        a = params["jitter_smooth"]
        e = rng.normal(0, params["align_jitter_px"], (n, 2))
        for k in range(1, n):
            e[k] = a * e[k - 1] + np.sqrt(1 - a * a) * e[k]
        self.jit = e
        self.stats = None
        self.box = None

    def apply(self, frame, P, k):
        Pl = P[: self.rig.n_lm] + self.jit[k]
        hull = cv2.convexHull(Pl[self.mask_idx].astype(np.float32)).reshape(-1, 2)
        c = hull.mean(0)
        hull = c + (hull - c) * self.p["mask_shrink"]
        fe = max(1.5, self.p["feather_frac"] * self.rig.fw)
        H, W = frame.shape[:2]
        x0, y0 = np.maximum(np.floor(hull.min(0) - 3 * fe).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(hull.max(0) + 3 * fe).astype(int) + 1, [W, H])
        if x1 <= x0 or y1 <= y0:
            return
        # donor sampling maps for the box
        self.warper.box = (x0, y0, x1, y1)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        self.warper.xs, self.warper.ys = xs.astype(np.float32), ys.astype(np.float32)
        self.warper.ids = np.empty((y1 - y0, x1 - x0), np.int32)
        mx, my, ids = self.warper.maps(Pl)
        face = cv2.remap(self.donor, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillPoly(mask, [np.round((hull - [x0, y0]) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        mask[ids < 0] = 0
        mask = cv2.GaussianBlur(mask, (0, 0), fe)
        tgt = frame[y0:y1, x0:x1].astype(np.float32)
        if self.stats is None:
            # colour transfer (per-channel mean/std inside the mask), fixed from the first frame on
            m = mask > 0.5
            if m.sum() > 50:
                self.stats = (face[m].mean(0), face[m].std(0) + 1e-3, tgt[m].mean(0), tgt[m].std(0) + 1e-3)
            else:
                self.stats = (np.zeros(3), np.ones(3), np.zeros(3), np.ones(3))
        fm, fs, tm, ts = self.stats
        ct = self.p["colour_transfer"]
        matched = (face - fm) / fs * ts + tm
        face = face + (matched - face) * ct
        if self.p["sharpen"] > 0:
            bl = cv2.GaussianBlur(face, (0, 0), 1.2)
            face = face + (face - bl) * self.p["sharpen"]
        a = mask[..., None]
        frame[y0:y1, x0:x1] = np.clip(tgt + (face - tgt) * a + 0.5, 0, 255).astype(np.uint8)
