"""Fake kinds: the artefacts a live impersonation shows, on top of the genuine talking head.

  drift   lip-sync drift: a constant audio/video offset of +-80..600 ms (the existing --offset-ms machinery)
  dubbed  the mouth is driven by utterance A, the audio track is utterance B (other text and/or voice),
          matched to A's length, loudness and place in the clip
  jitter  re-enactment: the mouth follows the speech with a lag that changes per syllable, or slowly
  swap    face swap: an elliptical blended face region with a colour/blur seam, flicker of that region,
          alignment jitter and occasional frozen frames; the mouth stays in sync

Every parameter is drawn from its own random stream of the seed (see cli.rng_for), so the genuine clip of
the same seed has the same face, voice, text, motion, light, noise, loudness and speech placement."""
import subprocess

import cv2
import numpy as np

from . import speech as S

KINDS = ("none", "drift", "dubbed", "jitter", "swap")
DRIFT_MIN_MS, DRIFT_MAX_MS = 80, 600


def drift_offset(rng):
    """+-80..600 ms, sign and size from the seed (log-uniform size, so small drifts are well covered)."""
    mag = float(np.exp(rng.uniform(np.log(DRIFT_MIN_MS), np.log(DRIFT_MAX_MS))))
    return int(round(mag)) * (1 if rng.uniform() < 0.5 else -1)


# ------------------------------------------------------------------ dubbed

def stretch_to(x, n):
    """Time-scales x (float32, 48 kHz) to exactly n samples with sox's pitch-preserving `tempo`, limited to
    0.8..1.25x; what is left is split evenly as silence before and after (or cut evenly)."""
    if len(x) == 0:
        return np.zeros(n, np.float32), 1.0
    factor = float(np.clip(len(x) / n, 0.8, 1.25))     # > 1: faster (shorter)
    if abs(factor - 1) > 0.005:
        raw = ["-t", "raw", "-r", str(S.SR), "-e", "floating-point", "-b", "32", "-c", "1"]
        p = subprocess.run(["sox", *raw, "-", *raw, "-", "tempo", "-s", f"{factor:.5f}"],
                           input=x.astype("<f4").tobytes(), capture_output=True)
        if p.returncode != 0:
            raise S.SpeechError("sox tempo failed: " + p.stderr.decode(errors="replace").strip())
        y = np.frombuffer(p.stdout, dtype="<f4").astype(np.float32)
        y = S.trim(y)
    else:
        y, factor = x, 1.0
    d = n - len(y)
    if d >= 0:
        y = np.concatenate([np.zeros(d // 2, np.float32), y, np.zeros(d - d // 2, np.float32)])
    else:
        c = -d
        y = y[c // 2: len(y) - (c - c // 2)]
    return y.astype(np.float32), factor


def dub_params(rng, voice_a, voices, mode=None, voice=None):
    """mode: 'text' (same voice, other words), 'voice' (same words, other voice, sentence by sentence
    time-aligned: the hardest), 'both' (other words, other voice)."""
    mode = mode or str(rng.choice(["text", "voice", "both"]))
    if voice is None:
        others = [x for x in voices if x != voice_a]
        voice = voice_a if mode == "text" else str(rng.choice(others))
    return {"mode": mode, "voice": voice, "wpm": int(rng.integers(140, 191)), "pitch": int(rng.integers(30, 71))}


# ------------------------------------------------------------------ jitter

def jitter_track(rng, n, fps, speech_span_s, mode=None, max_ms=None):
    """Per-frame audio/video offset X_k in ms (the offset convention: the mouth at video time t shows the
    sound heard at t + X). 'syllable': piecewise-constant lags that change every 0.12-0.30 s (about a
    syllable), +-max_ms, with 2-frame ramps; 'slow': a lag that goes 0 -> peak -> 0 over the speech
    ('bump') or a slow sinusoid ('wave')."""
    mode = mode or str(rng.choice(["syllable", "slow"]))
    t = np.arange(n) / fps
    p = {"mode": mode}
    if mode == "syllable":
        J = float(max_ms) if max_ms else float(rng.uniform(60, 200))
        knots = [0.0]
        while knots[-1] < t[-1] + 0.3:
            knots.append(knots[-1] + float(rng.uniform(0.12, 0.30)))
        vals = rng.uniform(-J, J, len(knots))
        seg = np.searchsorted(knots, t, side="right") - 1
        x = vals[seg]
        x = np.convolve(np.pad(x, 1, mode="edge"), [1 / 3, 1 / 3, 1 / 3], mode="valid")
        p.update({"max_ms": round(J, 1), "segments": len(knots)})
    else:
        shape = str(rng.choice(["bump", "wave"]))
        A = (float(max_ms) if max_ms else float(rng.uniform(150, 350))) * (1 if rng.uniform() < 0.5 else -1)
        if shape == "bump":
            s0, s1 = speech_span_s
            u = np.clip((t - s0) / max(s1 - s0, 1e-3), 0, 1)
            x = A * np.sin(np.pi * u) ** 2
            p.update({"shape": "bump", "peak_ms": round(A, 1)})
        else:
            f = float(rng.uniform(0.12, 0.35))
            ph = float(rng.uniform(0, 2 * np.pi))
            x = A * np.sin(2 * np.pi * f * t + ph)
            p.update({"shape": "wave", "amp_ms": round(A, 1), "freq_hz": round(f, 3)})
    return x.astype(np.float64), p


# ------------------------------------------------------------------ swap

def swap_params(rng, n, fps):
    p = {
        "mask_scale": float(rng.uniform(0.80, 0.95)),       # of the ellipse fitted to the face mesh
        "mask_aspect": float(rng.uniform(1.0, 1.15)),       # extra vertical stretch
        "feather_px": float(rng.uniform(2.0, 8.0)),         # Gaussian sigma of the seam
        "gain_rgb": [float(1 + x) for x in rng.normal(0, rng.uniform(0.03, 0.08), 3)],
        "offset": float(rng.uniform(-10, 10)),
        "blur_sigma": float(rng.uniform(0.8, 2.2)) if rng.uniform() < 0.75 else 0.0,
        "flicker_gain": float(rng.uniform(0.01, 0.035)),    # per-frame relative gain noise of the region
        "flicker_level": float(rng.uniform(1.0, 4.0)),      # per-frame, per-channel level noise (8-bit)
        "align_jitter_px": float(rng.uniform(0.3, 1.5)),    # per-frame misalignment of the pasted region
        "freeze_rate_hz": float(rng.uniform(0.15, 0.6)),
    }
    # frozen frames: events at freeze_rate_hz, each repeating the previous output frame 1..4 times
    frozen = np.zeros(n, bool)
    k = int(rng.integers(int(0.5 * fps), int(1.5 * fps) + 1))
    while k < n - 1:
        L = int(rng.integers(1, 5))
        frozen[k:k + L] = True
        k += L + max(2, int(rng.exponential(fps / p["freeze_rate_hz"])))
    frozen[0] = False
    p["frozen_frames"] = [int(i) for i in np.nonzero(frozen)[0]]
    return p, frozen


class SwapFX:
    """Applies the swap artefacts to rendered frames. The face ellipse is fitted to the face-mesh landmarks
    on the canvas and moved with the head (the frame's affine transform)."""

    def __init__(self, params, lm_canvas, rng, n):
        self.p = params
        pts = np.asarray(lm_canvas[:, :2], np.float32)
        (cx, cy), (w, h), ang = cv2.fitEllipse(cv2.convexHull(pts))
        s = params["mask_scale"]
        self.c = np.array([cx, cy], np.float64)
        self.ax = (w / 2 * s, h / 2 * s * params["mask_aspect"])
        self.ang = ang
        fl = params["flicker_gain"]
        self.gain_k = 1 + rng.normal(0, fl, n)
        self.level_k = rng.normal(0, params["flicker_level"], (n, 3))
        self.shift_k = rng.normal(0, params["align_jitter_px"], (n, 2))

    def apply(self, f, k, M):
        p = self.p
        A = M[:, :2]
        c = A @ self.c + M[:, 2]
        sc = float(np.sqrt(abs(np.linalg.det(A))))
        rot = float(np.degrees(np.arctan2(A[1, 0], A[0, 0])))
        H, W = f.shape[:2]
        ax = (self.ax[0] * sc, self.ax[1] * sc)
        pad = int(3 * p["feather_px"] + 4)
        r = int(max(ax)) + pad
        x0, y0 = max(0, int(c[0]) - r), max(0, int(c[1]) - r)
        x1, y1 = min(W, int(c[0]) + r + 1), min(H, int(c[1]) + r + 1)
        if x1 <= x0 or y1 <= y0:
            return f
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.ellipse(mask, ((float(c[0] - x0), float(c[1] - y0)), (2 * ax[0], 2 * ax[1]), self.ang + rot),
                    1.0, -1, cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), p["feather_px"])[..., None]
        roi = f[y0:y1, x0:x1].astype(np.float32)
        src = roi
        dx, dy = self.shift_k[k]
        if abs(dx) > 0.05 or abs(dy) > 0.05:
            src = cv2.warpAffine(roi, np.float32([[1, 0, dx], [0, 1, dy]]), (x1 - x0, y1 - y0),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if p["blur_sigma"] > 0:
            src = cv2.GaussianBlur(src, (0, 0), p["blur_sigma"])
        g = np.asarray(p["gain_rgb"], np.float32) * np.float32(self.gain_k[k])
        face = src * g[None, None, :] + np.float32(p["offset"]) + self.level_k[k].astype(np.float32)[None, None, :]
        out = roi + (face - roi) * mask
        f = f.copy()
        f[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return f
