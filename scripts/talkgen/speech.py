"""Speech: espeak-ng -> 48 kHz mono float, loudness normalisation, mouth-opening envelope."""
import shutil
import subprocess
import wave

import numpy as np

SR = 48000


class SpeechError(RuntimeError):
    pass


def _need(tool, pkg):
    if shutil.which(tool) is None:
        raise SpeechError(f"'{tool}' not found: install it (Debian: apt-get install -y {pkg})")


def synth(text, voice, wpm=165, pitch=50):
    """Speaks `text` with espeak-ng and returns float32 mono samples at 48 kHz, silence trimmed."""
    _need("espeak-ng", "espeak-ng")
    _need("sox", "sox")
    r = subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(wpm)), "-p", str(int(pitch)),
                        "--stdout", text], capture_output=True)
    if r.returncode != 0 or len(r.stdout) < 100 or b"RIFF" not in r.stdout[:4]:
        msg = r.stderr.decode(errors="replace").strip()
        raise SpeechError(f"espeak-ng failed for voice '{voice}': {msg or 'no audio'}")
    s = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(SR), "-e", "floating-point",
                        "-b", "32", "-c", "1", "-"], input=r.stdout, capture_output=True)
    if s.returncode != 0:
        raise SpeechError("sox resampling failed: " + s.stderr.decode(errors="replace").strip())
    x = np.frombuffer(s.stdout, dtype="<f4").astype(np.float32)
    return trim(x)


def trim(x, rel_db=-40.0, hop=0.010, pre=0.015, post=0.030):
    """Cuts leading/trailing silence (10 ms blocks quieter than peak + rel_db)."""
    h = int(SR * hop)
    n = len(x) // h
    if n == 0:
        return x
    e = (x[: n * h].reshape(n, h) ** 2).mean(1)
    thr = e.max() * 10 ** (rel_db / 10)
    act = np.nonzero(e > thr)[0]
    if len(act) == 0:
        return x[:0]
    a = max(0, act[0] * h - int(pre * SR))
    b = min(len(x), (act[-1] + 1) * h + int(post * SR))
    return x[a:b]


def active_rms_db(x):
    """RMS in dBFS over the 20 ms blocks that carry speech (within 35 dB of the loudest)."""
    h = int(SR * 0.02)
    n = len(x) // h
    e = (x[: n * h].reshape(n, h).astype(np.float64) ** 2).mean(1)
    if n == 0 or e.max() <= 0:
        return -120.0
    act = e[e > e.max() * 10 ** (-35 / 10)]
    return 10 * np.log10(act.mean())


def normalise(x, target_dbfs=-20.0, peak_dbfs=-1.0):
    """Scales speech to an active-speech RMS of target_dbfs, lowering the gain if peaks would pass peak_dbfs."""
    g = 10 ** ((target_dbfs - active_rms_db(x)) / 20)
    peak = np.abs(x).max() * g
    lim = 10 ** (peak_dbfs / 20)
    if peak > lim:
        g *= lim / peak
    return (x * g).astype(np.float32)


def to_s16(x):
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")


def write_wav(path, s16):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(s16.tobytes())


def band_energy_db(x, fps, n_frames, win_s=0.040, band=(250.0, 3000.0), times=None):
    """Energy (dB) of x in `band` in a Hann window of win_s centred on each frame time k/fps (or on
    `times`, seconds, one per frame: used by the jitter fake to sample the speech at shifted times)."""
    w = int(round(win_s * SR)) | 1
    half = w // 2
    nfft = 1 << (w - 1).bit_length()
    pad = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half + 1, np.float32)])
    if times is None:
        centres = np.round(np.arange(n_frames) * SR / fps).astype(np.int64)
    else:
        centres = np.round(np.asarray(times, np.float64) * SR).astype(np.int64)
    centres = np.clip(centres, 0, len(x))
    idx = centres[:, None] + np.arange(w)[None, :]
    seg = pad[idx] * np.hanning(w).astype(np.float32)[None, :]
    spec = np.abs(np.fft.rfft(seg, nfft, axis=1)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / SR)
    sel = (f >= band[0]) & (f <= band[1])
    e = spec[:, sel].sum(1) / w
    return 10 * np.log10(e + 1e-12)


def mouth_opening(driver, fps, n_frames, range_db=30.0, gamma=1.6, gain=1.0, times=None):
    """Mouth opening a(t) in [0,1] per video frame from the speech that drives the lips.

    Band-limited (250-3000 Hz, i.e. vowel formants rather than fricative hiss or nasal murmur)
    energy in a 40 ms window centred on the frame time, mapped from [ref-range_db, ref] dB to [0,1]
    (ref = the 95th percentile over speech frames), compressed with a power `gamma` (> 1 keeps weak
    consonants small), smoothed with a zero-phase [1 2 1]/4 filter (no lag), times `gain`.
    Exactly 0 where the driver is silent. `times` (s, per frame): sample the speech there instead of at
    k/fps (the jitter fake)."""
    e = band_energy_db(driver, fps, n_frames, times=times)
    speech = e > -90
    if not speech.any():
        return np.zeros(n_frames, np.float32)
    ref = np.percentile(e[speech], 95)
    a = np.clip((e - (ref - range_db)) / range_db, 0.0, 1.0) ** gamma
    a = np.convolve(np.pad(a, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    a[a < 0.02] = 0.0
    return np.clip(a * gain, 0.0, 1.0).astype(np.float32)
