#!/usr/bin/env python3
"""Measures a clip's audio/video lag from the encoded file alone (plus the meta's mouth position per frame):
the lag that best correlates the darkness of the mouth region with the audio's speech envelope.

    .venv/bin/python scripts/meshgen/check_sync.py CLIP.mp4 CLIP.json [--max-ms 800]

Prints: best lag (ms, positive = audio late, the offset convention), its correlation, the meta's offset_ms,
and the decoded streams' durations. Decoding: ffmpeg; the video at its own frame rate."""
import argparse
import json
import subprocess
import sys

import numpy as np

SR = 48000


def decode_video(path, W, H):
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                       capture_output=True, check=True)
    return np.frombuffer(p.stdout, np.uint8).reshape(-1, H, W)


def decode_audio(path):
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "f32le", "-ac", "1", "-ar", str(SR), "-"],
                       capture_output=True, check=True)
    return np.frombuffer(p.stdout, "<f4").astype(np.float64)


def envelope(x, times, win=0.040, band=(250, 3000)):
    w = int(win * SR) | 1
    h = w // 2
    pad = np.r_[np.zeros(h), x, np.zeros(h + 1)]
    c = np.clip(np.round(np.asarray(times) * SR).astype(int), 0, len(x))
    seg = pad[c[:, None] + np.arange(w)[None, :]] * np.hanning(w)[None, :]
    nfft = 1 << (w - 1).bit_length()
    spec = np.abs(np.fft.rfft(seg, nfft, axis=1)) ** 2
    f = np.fft.rfftfreq(nfft, 1 / SR)
    e = spec[:, (f >= band[0]) & (f <= band[1])].sum(1)
    return 10 * np.log10(e + 1e-9)


def measure(clip, meta, max_ms=800, step_ms=5):
    m = json.load(open(meta))
    W, H, fps = m["width"], m["height"], m["fps"]
    frames = decode_video(clip, W, H)
    audio = decode_audio(clip)
    n = min(len(frames), m["frames"])
    fw = float(np.median(m["variation"]["face_width_px"]))
    bw, bh = int(0.22 * fw), int(0.14 * fw)
    dark = np.zeros(n)
    for k in range(n):
        x, y = m["per_frame"]["mouth_xy"][k]
        x0, y0 = int(round(x)) - bw, int(round(y)) - bh
        roi = frames[k, max(0, y0):y0 + 2 * bh, max(0, x0):x0 + 2 * bw].astype(np.float64)
        dark[k] = (roi < 70).mean() + 0.002 * (255 - roi).mean()
    t = np.arange(n) / fps
    best = None
    res = []
    for lag in range(-max_ms, max_ms + 1, step_ms):
        e = envelope(audio, t + lag / 1000.0)
        e = np.maximum(e, e.max() - 45)
        r = np.corrcoef(dark, e)[0, 1]
        res.append((lag, r))
        if best is None or r > best[1]:
            best = (lag, r)
    return {"best_lag_ms": best[0], "r": round(float(best[1]), 3), "offset_ms": m["offset_ms"],
            "video_s": round(len(frames) / fps, 4), "audio_s": round(len(audio) / SR, 4), "meta_s": m["seconds"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("meta")
    ap.add_argument("--max-ms", type=int, default=800)
    a = ap.parse_args()
    print(json.dumps(measure(a.clip, a.meta, a.max_ms)))


if __name__ == "__main__":
    sys.exit(main())
