"""Command line: build a talking-head clip with a known audio/video offset."""
import argparse
import json
import os
import signal
import sys
import tempfile
import time
import zlib

import numpy as np

from . import __version__
from . import encode as E
from . import face as F
from . import render as R
from . import fake as FK
from . import speech as S
from .texts import FILLERS, SENTENCES, VOICES

PAD_MIN = 0.30          # s of silence at least at each end of both streams
DEFAULT_PAD = 0.50      # s at each end when --seconds is not given


def rng_for(seed, name):
    """Independent, stable random stream per aspect, so that e.g. a new text keeps the same head motion."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, zlib.crc32(name.encode())]))


def parse(argv):
    ap = argparse.ArgumentParser(
        prog="talkgen.py",
        description="Synthetic talking-head clip (espeak-ng speech, mouth warped on a still photo) with a "
                    "known audio/video offset. See scripts/talkgen/README.md.")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--face", default=None, help="face id from scripts/faces/sources.json (default: astronaut)")
    g.add_argument("--face-image", metavar="PATH", help="any photo with one frontal face")
    t = ap.add_mutually_exclusive_group()
    t.add_argument("--text", help="what the face says (default: a built-in sentence chosen by the seed)")
    t.add_argument("--text-id", type=int, metavar="N", help=f"built-in sentence 0..{len(SENTENCES) - 1}")
    ap.add_argument("--list-texts", action="store_true", help="print the built-in sentences and exit")
    ap.add_argument("--voice", help="espeak-ng voice, e.g. en-us, en-gb+f2 (default: chosen by the seed "
                                    "from --list-voices; en-us with --no-vary)")
    ap.add_argument("--list-voices", action="store_true", help="print the built-in voice list and exit")
    ap.add_argument("--wpm", type=int, help="speaking rate in words per minute (default: 140-190 by seed; 165)")
    ap.add_argument("--pitch", type=int, help="espeak-ng pitch 0-99 (default: 30-70 by seed; 50)")
    ap.add_argument("--seconds", type=float, help="exact clip length; more built-in sentences with natural "
                                                  "pauses are added to fill it, then silence (default: fit the text)")
    ap.add_argument("--no-fill", action="store_true", help="with --seconds: pad with silence only, add no sentences")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--offset-ms", type=int, default=None,
                    help="audio/video offset; POSITIVE = audio LATE (the sound that drives the mouth at video "
                         "time t is heard at t+X), negative = audio early (default 0; with --fake drift: "
                         "+-80..600 ms by seed)")
    fk = ap.add_argument_group("fakes (training data; see models/training/README.md)")
    fk.add_argument("--fake", choices=FK.KINDS, default="none",
                    help="kind of fake: drift (lip-sync offset), dubbed (audio from another utterance), jitter "
                         "(re-enactment lag jitter), swap (face-swap seam/flicker/frozen frames); default none "
                         "(genuine). Parameters from the seed unless given below; recorded in --meta")
    fk.add_argument("--dub-mode", choices=["text", "voice", "both"],
                    help="dubbed: other words, same words by another voice, or both (default: by seed)")
    fk.add_argument("--dub-voice", help="dubbed: voice of the audio track (default: by seed)")
    fk.add_argument("--dub-text-id", type=int, metavar="N", help="dubbed: first sentence of the audio track "
                                                                 "(default: by seed from --text-pool)")
    fk.add_argument("--jitter-mode", choices=["syllable", "slow"], help="jitter: per-syllable lags or a slowly "
                                                                        "varying lag (default: by seed)")
    fk.add_argument("--jitter-ms", type=float, help="jitter: largest lag in ms (default: 60-200 syllable, "
                                                    "150-350 slow, by seed)")
    ap.add_argument("--text-pool", metavar="IDS",
                    help="comma-separated ids the seed may choose from and fill with: 0-29 = the built-in "
                         "sentences, 30-41 = the short fillers (keeps train/val/heldout texts apart)")
    ap.add_argument("--speech-reserve-ms", type=int, default=0, metavar="MS",
                    help="with --seconds: leave room for an offset of MS whatever the actual offset, so clips "
                         "with and without an offset carry the same amount of speech (training sets use 600)")
    ap.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    ap.add_argument("--no-vary", action="store_true", help="no variation: still head, neutral light, no noise, "
                                                           "fixed voice/text/layout")
    ap.add_argument("--crf", type=int, help="video quality (x264 CRF; webm mapped to libvpx's scale); "
                                            "default 20-32 by seed, 23 with --no-vary")
    ap.add_argument("--out", action="append", default=[], metavar="FILE",
                    help="clip.mp4 (H.264+AAC), clip.webm (VP8+Opus) or clip.mkv (H.264+Opus); repeatable")
    ap.add_argument("--y4m", metavar="FILE", help="raw 4:2:0 video (for Chromium's fake camera)")
    ap.add_argument("--y4m-trim", type=int, default=1, metavar="N",
                    help="frames dropped from the end of the y4m so that Chromium's looping matches the wav "
                         "(Chromium repeats frame 0 at each wrap); default 1")
    ap.add_argument("--wav", metavar="FILE", help="48 kHz mono 16-bit wav of the full clip")
    ap.add_argument("--meta", metavar="FILE", help="JSON with the truth (offset, face, text, variation, per-frame data)")
    ap.add_argument("--models", metavar="DIR", help="folder with blazeface_front_128.onnx and face_landmark_468.onnx "
                                                    "(default: $TALKGEN_MODELS, then <repo>/models)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a = ap.parse_args(argv)
    if a.list_texts or a.list_voices:
        return a
    if not (a.out or a.y4m or a.wav or a.meta):
        ap.error("nothing to write: give --out FILE, --y4m FILE, --wav FILE and/or --meta FILE")
    if a.fps <= 0 or a.fps > 120:
        ap.error("--fps must be 1..120")
    if a.width < 64 or a.height < 64 or a.width % 2 or a.height % 2:
        ap.error("--width/--height must be even and >= 64")
    if a.seconds is not None and a.seconds <= 0:
        ap.error("--seconds must be > 0")
    if a.text_id is not None and not 0 <= a.text_id < len(SENTENCES):
        ap.error(f"--text-id must be 0..{len(SENTENCES) - 1}")
    if a.text is not None and not a.text.strip():
        ap.error("--text is empty")
    for o in a.out:
        try:
            E.container(o)
        except E.EncodeError as e:
            ap.error(str(e))
    if a.crf is not None and not 0 <= a.crf <= 51:
        ap.error("--crf must be 0..51")
    if a.face is None and a.face_image is None:
        a.face = "astronaut"
    if a.text_pool is not None:
        try:
            a.text_pool = sorted({int(x) for x in a.text_pool.split(",") if x.strip()})
        except ValueError:
            ap.error("--text-pool: comma-separated integers")
        if not a.text_pool or not all(0 <= i < len(SENTENCES) + len(FILLERS) for i in a.text_pool):
            ap.error(f"--text-pool ids must be 0..{len(SENTENCES) + len(FILLERS) - 1}")
    if a.dub_text_id is not None and not 0 <= a.dub_text_id < len(SENTENCES):
        ap.error(f"--dub-text-id must be 0..{len(SENTENCES) - 1}")
    if a.fake not in ("none", "drift") and a.offset_ms:
        ap.error("--offset-ms applies to genuine clips and --fake drift only")
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


def variation(a, face_info):
    """Every random choice of the clip (except speech content), from the seed."""
    vary = not a.no_vary
    W, H, fps = a.width, a.height, a.fps
    r = rng_for(a.seed, "layout")
    v = {"vary": vary}
    zoom = r.uniform(0.8, 1.2) if vary else 1.0
    v["zoom"] = round(float(zoom), 4)
    v["face_width_px"] = 0.32 * min(W, H) * zoom
    v["face_centre"] = [W * (0.5 + (r.uniform(-0.12, 0.12) if vary else 0)),
                        H * (0.45 + (r.uniform(-0.08, 0.06) if vary else 0))]
    r = rng_for(a.seed, "background")
    if vary:
        kind = r.choice(["extend", "extend", "plain", "gradient", "radial", "noise"])
        v["bg"] = {"kind": str(kind), "blur_px": round(float(r.uniform(6, 20)), 1),
                   "feather_px": round(float(r.uniform(3, 12)), 1)}
    else:
        v["bg"] = {"kind": "extend", "blur_px": 12.0, "feather_px": 6.0}
    r = rng_for(a.seed, "light")
    v["light"] = {"gain": float(r.uniform(0.8, 1.2)) if vary else 1.0,
                  "gamma": float(r.uniform(0.85, 1.2)) if vary else 1.0,
                  "temp": float(r.uniform(-0.08, 0.08)) if vary else 0.0,
                  "flicker_amp": float(r.uniform(0, 0.02)) if vary else 0.0}
    v["noise_sigma"] = float(rng_for(a.seed, "noise").uniform(0.5, 3.0)) if vary else 0.0
    v["crf"] = a.crf if a.crf is not None else (int(rng_for(a.seed, "crf").integers(20, 33)) if vary else 23)
    r = rng_for(a.seed, "mouth")
    u = (lambda lo, hi, mid: float(r.uniform(lo, hi)) if vary else mid)
    v["mouth"] = {"open_frac": u(0.045, 0.075, 0.06), "up_frac": u(0.12, 0.28, 0.2),
                  "corner_drop": u(0.2, 0.4, 0.3), "narrow": u(0.0, 0.12, 0.06),
                  "teeth_frac": u(0.2, 0.4, 0.3), "teeth_amount": u(0.3, 0.8, 0.55),
                  "mouth_width": u(0.95, 1.1, 1.0),
                  "lens_pow": u(0.8, 1.3, 1.0),
                  "interior_rgb": [round(c * u(0.75, 1.25, 1.0), 1) for c in (60, 22, 24)],
                  "env_range_db": u(26, 34, 30), "env_gamma": u(1.3, 1.9, 1.6), "env_gain": u(0.85, 1.15, 1.0)}
    r = rng_for(a.seed, "motion")
    v["motion_amp"] = {"rot_deg": float(r.uniform(1.5, 8.0)) if vary else 0.0,
                       "trans_frac": float(r.uniform(0.005, 0.03)) if vary else 0.0,
                       "scale_frac": float(r.uniform(0.005, 0.04)) if vary else 0.0}
    v["scale_min"] = 1 - v["motion_amp"]["scale_frac"]
    r = rng_for(a.seed, "voice")
    v["voice"] = a.voice or (str(r.choice(VOICES)) if vary else "en-us")
    v["wpm"] = a.wpm or (int(r.integers(140, 191)) if vary else 165)
    v["pitch"] = a.pitch if a.pitch is not None else (int(r.integers(30, 71)) if vary else 50)
    r = rng_for(a.seed, "audio")
    v["speech_dbfs"] = float(r.uniform(-26, -16)) if vary else -20.0
    v["room_tone_dbfs"] = float(r.uniform(-66, -52)) if vary else None
    return v


def motion_tracks(v, n, fps, rng_seed):
    amp = v["motion_amp"]
    r = rng_for(rng_seed, "motion-tracks")
    W_ = v["_W"]
    cx, cy = v["face_centre"]
    return {"rot_deg": R.smooth_motion(r, n, fps, amp["rot_deg"]),
            "x": cx + R.smooth_motion(r, n, fps, amp["trans_frac"] * W_),
            "y": cy + R.smooth_motion(r, n, fps, amp["trans_frac"] * W_ * 0.7),
            "scale": 1 + R.smooth_motion(r, n, fps, amp["scale_frac"], fmin=0.03, fmax=0.2)}


def text_pools(a, exclude=()):
    """The sentences and fillers the seed may pick (all, or those of --text-pool), minus `exclude`."""
    if a.text_pool is None:
        sp, fp = SENTENCES, FILLERS
    else:
        sp = [SENTENCES[i] for i in a.text_pool if i < len(SENTENCES)]
        fp = [FILLERS[i - len(SENTENCES)] for i in a.text_pool if i >= len(SENTENCES)]
    if exclude:
        sp = [x for x in sp if x not in exclude]
        fp = [x for x in fp if x not in exclude]
    return sp, fp


def plan_speech(a, v, log, stream="text", first_text=None, exclude=(), avail=None, normalise=True):
    """Chooses and synthesises the sentences; returns (normalised content samples, sentences with offsets).
    stream/first_text/exclude/avail: for the dubbed fake's second utterance (own random stream, other
    sentences, a given length budget)."""
    vary = not a.no_vary
    r = rng_for(a.seed, stream)
    SP, FP = text_pools(a, exclude)
    say = lambda txt: S.synth(txt, v["voice"], v["wpm"], v["pitch"])  # noqa: E731
    pause = lambda: float(r.uniform(0.25, 0.8)) if vary else 0.45  # noqa: E731
    est = lambda txt: len(txt.split()) * 60.0 / v["wpm"]  # noqa: E731  (about 60/wpm s a word)
    off = max(abs(a.offset_ms), a.speech_reserve_ms) / 1000.0
    if avail is None:
        avail = None if a.seconds is None else a.seconds - 2 * PAD_MIN - off
    if first_text is None and stream == "text" and (a.text is not None or a.text_id is not None):
        first_text = a.text.strip() if a.text is not None else SENTENCES[a.text_id]
    if first_text is not None:
        first = first_text
        x = say(first)
        if avail is not None and len(x) / S.SR > avail:
            print(f"talkgen: the text needs {len(x) / S.SR:.2f} s of speech but --seconds {a.seconds} leaves "
                  f"{max(avail, 0):.2f} s ({PAD_MIN} s silence at each end + |offset| {off:.2f} s): "
                  f"raise --seconds or shorten the text", file=sys.stderr)
            raise SystemExit(2)
    else:
        # seed's choice; with --seconds, the first (in seeded order) that fits, then the short fillers
        order = [int(i) for i in r.permutation(len(SP))] if vary else list(range(len(SP)))
        cands = [SP[i] for i in order] + [FP[int(i)] for i in r.permutation(len(FP))]
        first = x = None
        for txt in cands:
            if avail is not None and est(txt) > avail * 1.1:
                continue
            y = say(txt)
            if avail is None or len(y) / S.SR <= avail:
                first, x = txt, y
                break
        if first is None:
            print(f"talkgen: --seconds {a.seconds} leaves {max(avail, 0):.2f} s for speech (after {PAD_MIN} s "
                  f"of silence at each end and |offset| {off:.2f} s): too short for any built-in text",
                  file=sys.stderr)
            raise SystemExit(2)
    parts = [(first, x)]
    gaps = []
    if avail is not None:
        if not a.no_fill:
            pool = SP + FP
            order = [int(i) for i in r.permutation(len(SP)) if SP[int(i)] != first]
            order += [len(SP) + int(i) for i in r.permutation(len(FP)) if FP[int(i)] != first]
            used = sum(len(p[1]) for p in parts) / S.SR
            tries = 0
            while order and tries < 6 and avail - used > 1.0:
                gap = pause()
                room = avail - used - gap
                # estimate before synthesising: about 60/wpm seconds a word
                fits = [i for i in order if est(pool[i]) <= room * 1.1]
                if not fits:
                    break
                order.remove(fits[0])
                txt = pool[fits[0]]
                x = say(txt)
                tries += 1
                if used + gap + len(x) / S.SR <= avail:
                    parts.append((txt, x))
                    gaps.append(gap)
                    used += gap + len(x) / S.SR
                    tries = 0
    # assemble with pauses
    pieces, sentences, pos = [], [], 0
    for i, (txt, x) in enumerate(parts):
        if i:
            g = int(round(gaps[i - 1] * S.SR))
            pieces.append(np.zeros(g, np.float32))
            pos += g
        sentences.append({"text": txt, "start_s": pos / S.SR, "end_s": (pos + len(x)) / S.SR})
        pieces.append(x)
        pos += len(x)
    content = np.concatenate(pieces)
    log(f"speech: {len(sentences)} sentence(s), {len(content) / S.SR:.2f} s, voice {v['voice']}")
    return (S.normalise(content, v["speech_dbfs"]) if normalise else content), sentences


def dub_audio(a, v, content, sentences, log):
    """The dubbed fake's audio track: another utterance (other words and/or voice) with the same length as
    `content` (A), the same active-speech loudness, placed where A is (so both streams start and stop
    speaking at the same times, like a genuine clip). 'voice' mode: A's sentences spoken by another
    voice, each time-scaled onto A's sentence and placed at its start (the word timing inside still
    differs). Returns (samples, params, sentences of B)."""
    from .texts import VOICES as VL
    p = FK.dub_params(rng_for(a.seed, "fake-dub"), v["voice"], VL, a.dub_mode, a.dub_voice)
    if p["mode"] == "text":                 # the same speaker saying other words
        p["wpm"], p["pitch"] = v["wpm"], v["pitch"]
    elif p["mode"] == "voice":              # the same words at the same rate by another voice
        p["wpm"] = v["wpm"]
    vb = dict(v, voice=p["voice"], wpm=p["wpm"], pitch=p["pitch"])
    n = len(content)
    if p["mode"] == "voice":
        out = np.zeros(n, np.float32)
        sb, factors = [], []
        for s in sentences:
            i0, i1 = int(round(s["start_s"] * S.SR)), min(n, int(round(s["end_s"] * S.SR)))
            y = S.synth(s["text"], vb["voice"], vb["wpm"], vb["pitch"])
            y, f = FK.stretch_to(y, i1 - i0)
            out[i0:i1] = y
            factors.append(round(f, 3))
            sb.append(dict(s))
        p["tempo"] = factors
    else:
        first = SENTENCES[a.dub_text_id] if a.dub_text_id is not None else None
        used = {s["text"] for s in sentences}
        y, sb = plan_speech(a, vb, log, stream="text-dub", first_text=first, exclude=used,
                            avail=1.1 * n / S.SR, normalise=False)   # then tempo 0.8-1.25x onto n
        out, f = FK.stretch_to(y, n)
        p["tempo"] = round(f, 3)
    p["text"] = " ".join(s["text"] for s in sb)
    return S.normalise(out, v["speech_dbfs"]), p, sb


def room_tone(n, dbfs, rng):
    """Soft pinkish noise at `dbfs` RMS (microphone self-noise / room)."""
    w = rng.standard_normal(n)
    spec = np.fft.rfft(w)
    f = np.fft.rfftfreq(n, 1.0 / S.SR)
    spec *= 1 / np.sqrt(np.maximum(f, 50.0))
    x = np.fft.irfft(spec, n)
    x *= 10 ** (dbfs / 20) / (np.sqrt((x ** 2).mean()) + 1e-12)
    return x.astype(np.float32)


def main(argv=None):
    a = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)     # quiet when piped into head
    if a.list_texts:
        for i, s in enumerate(SENTENCES):
            print(f"{i:2d}  {s}")
        return 0
    if a.list_voices:
        print("\n".join(VOICES))
        return 0
    t0 = time.time()
    log = (lambda *x: None) if a.quiet else (lambda msg: print("talkgen: " + msg, file=sys.stderr))
    try:
        rgb, finfo = F.resolve_face(a.face, a.face_image)
        det = F.Detector(a.models)
        d = det.detect(rgb)
    except F.FaceError as e:
        print(f"talkgen: {e}", file=sys.stderr)
        return 2
    v = variation(a, finfo)
    v["_W"] = a.width
    dub = None
    try:
        content, sentences = plan_speech(a, v, log)
        if a.fake == "dubbed":
            dub, a.fake_params, dub_sentences = dub_audio(a, v, content, sentences, log)
            log(f"dubbed ({a.fake_params['mode']}): audio from voice {a.fake_params['voice']}: "
                f"{a.fake_params['text'][:60]}")
    except S.SpeechError as e:
        print(f"talkgen: {e}", file=sys.stderr)
        return 2

    # ---- timeline: both streams have the same length and the same speech, shifted by the offset ----
    fps, SR = a.fps, S.SR
    shift = int(round(a.offset_ms * SR / 1000))
    clen = len(content)
    if a.seconds is not None:
        n_frames = int(round(a.seconds * fps))
    else:
        n_frames = int(np.ceil((clen / SR + 2 * DEFAULT_PAD + abs(shift) / SR) * fps))
    n_samples = int(round(n_frames * SR / fps))
    slack = n_samples - clen - abs(shift) - 2 * int(PAD_MIN * SR)
    if slack < 0:
        print("talkgen: internal error: speech does not fit", file=sys.stderr)
        return 3
    frac = float(rng_for(a.seed, "placement").uniform(0, 1)) if not a.no_vary else 0.5
    first = int(PAD_MIN * SR) + int(round(slack * frac))   # where the earlier of the two streams starts speaking
    v_start = first + max(0, -shift)
    a_start = v_start + shift
    driver = np.zeros(n_samples, np.float32)
    driver[v_start:v_start + clen] = content
    audio = np.zeros(n_samples, np.float32)
    audio[a_start:a_start + clen] = content if dub is None else dub
    if v["room_tone_dbfs"] is not None:
        audio += room_tone(n_samples, v["room_tone_dbfs"], rng_for(a.seed, "room"))
    pcm = S.to_s16(audio)

    m = v["mouth"]
    times = lag = None
    if a.fake == "jitter":
        lag, a.fake_params = FK.jitter_track(rng_for(a.seed, "fake-jitter"), n_frames, fps,
                                             (v_start / SR, (v_start + clen) / SR), a.jitter_mode, a.jitter_ms)
        times = np.clip(np.arange(n_frames) / fps + lag / 1000.0, 0, n_frames / fps)
        a.fake_params["mean_abs_ms"] = round(float(np.abs(lag).mean()), 1)
    opening = S.mouth_opening(driver, fps, n_frames, m["env_range_db"], m["env_gamma"], m["env_gain"],
                              times=times)

    # ---- video ----
    W, H = a.width, a.height
    v["motion"] = motion_tracks(v, n_frames, fps, a.seed)
    v["light"]["flicker"] = 1 + R.smooth_motion(rng_for(a.seed, "flicker"), n_frames, fps,
                                                v["light"]["flicker_amp"], 0.1, 1.0)
    if v["bg"]["kind"] != "extend":
        # drawn on the whole canvas (which covers the frame under any motion): size it like Scene does
        side = int(np.ceil(2 * R.canvas_reach(v, W, H)))
        v["bg_img"], binfo = R.make_background(side, side, rng_for(a.seed, "bgimg"), v["bg"]["kind"],
                                               not a.no_vary)
        v["bg"].update(binfo)
    scene = R.Scene(rgb, d["landmarks"], W, H, v, rng_for(a.seed, "noise-frames"))
    swap = frozen = None
    if a.fake == "swap":
        rs = rng_for(a.seed, "fake-swap")
        a.fake_params, frozen = FK.swap_params(rs, n_frames, fps)
        swap = FK.SwapFX(a.fake_params, scene.lm, rs, n_frames)

    tmp = tempfile.mkdtemp(prefix="talkgen-")
    try:
        wav_tmp = os.path.join(tmp, "audio.wav")
        S.write_wav(wav_tmp, pcm)
        y4m_frames = max(1, n_frames - max(0, a.y4m_trim))
        enc = None
        if a.out or a.y4m:
            for p in a.out + ([a.y4m] if a.y4m else []):
                os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
            enc = E.Encoder(W, H, fps, wav_tmp, a.out, v["crf"], a.y4m, y4m_frames)
        track = []
        show = not a.quiet and (n_frames > 250 or sys.stderr.isatty())
        t_render = time.time()
        prev = None
        for k in range(n_frames):
            frame, info = scene.render(k, float(opening[k]))
            if swap is not None:
                frame = prev if frozen[k] and prev is not None else swap.apply(frame, k, info["M"])
                prev = frame
            track.append(info)
            if enc:
                enc.write(frame)
            if show and (k % 25 == 0 or k == n_frames - 1):
                print(f"\rtalkgen: frame {k + 1}/{n_frames}", end="", file=sys.stderr, flush=True)
        if show:
            print(file=sys.stderr)
        if enc:
            enc.close()
        t_done = time.time()
        if a.wav:
            os.makedirs(os.path.dirname(os.path.abspath(a.wav)), exist_ok=True)
            S.write_wav(a.wav, pcm)
    except E.EncodeError as e:
        print(f"talkgen: {e}", file=sys.stderr)
        return 2
    finally:
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)

    if a.meta:
        meta = build_meta(a, v, finfo, d, sentences, opening, track, n_frames, n_samples, v_start, a_start,
                          clen, y4m_frames, scene)
        meta["label"] = "genuine" if a.fake == "none" else "fake"
        meta["fake"] = None if a.fake == "none" else {"kind": a.fake, **a.fake_params}
        if dub is not None:
            meta["audio_text"] = a.fake_params["text"]
            meta["audio_sentences"] = [s["text"] for s in dub_sentences]   # times: those of `sentences`, scaled
        if lag is not None:
            meta["per_frame"]["offset_ms"] = [round(float(x), 1) for x in lag]
        if a.text_pool is not None:
            meta["text_pool"] = a.text_pool
        os.makedirs(os.path.dirname(os.path.abspath(a.meta)), exist_ok=True)
        with open(a.meta, "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
    log(f"{n_frames} frames {W}x{H}@{fps}, {a.fake if a.fake != 'none' else 'genuine'}, offset {a.offset_ms:+d} ms, face {finfo.get('id') or finfo.get('image')}"
        f" ({finfo['split']}); render {t_done - t_render:.2f} s, total {time.time() - t0:.2f} s")
    return 0


def build_meta(a, v, finfo, d, sentences, opening, track, n_frames, n_samples, v_start, a_start, clen,
               y4m_frames, scene):
    SR = S.SR
    r3 = lambda x: round(float(x), 3)  # noqa: E731
    mo = v["motion"]
    return {
        "tool": f"talkgen {__version__}",
        "args": sys.argv[1:],
        "offset_ms": a.offset_ms,
        "offset_convention": "positive = audio late: the sound that drives the mouth at video time t is heard "
                             "at t + offset_ms",
        "face": finfo,
        "split": finfo["split"],
        "voice": v["voice"], "wpm": v["wpm"], "pitch": v["pitch"],
        "text": " ".join(s["text"] for s in sentences),
        "sentences": [{"text": s["text"],
                       "video_start_s": r3(v_start / SR + s["start_s"]), "video_end_s": r3(v_start / SR + s["end_s"]),
                       "audio_start_s": r3(a_start / SR + s["start_s"]), "audio_end_s": r3(a_start / SR + s["end_s"])}
                      for s in sentences],
        "speech_video_s": [r3(v_start / SR), r3((v_start + clen) / SR)],
        "speech_audio_s": [r3(a_start / SR), r3((a_start + clen) / SR)],
        "seconds": n_frames / a.fps, "fps": a.fps, "frames": n_frames,
        "width": a.width, "height": a.height,
        "audio": {"sample_rate": SR, "channels": 1, "samples": n_samples, "format": "s16",
                  "speech_active_dbfs": round(v["speech_dbfs"], 2),
                  "room_tone_dbfs": None if v["room_tone_dbfs"] is None else round(v["room_tone_dbfs"], 2)},
        "y4m": {"path": a.y4m, "frames": y4m_frames, "trimmed_frames": n_frames - y4m_frames} if a.y4m else None,
        "outputs": a.out, "wav": a.wav,
        "seed": a.seed, "vary": v["vary"],
        "variation": {
            "crf": v["crf"], "zoom": v["zoom"], "face_width_px": round(v["face_width_px"], 1),
            "face_centre_px": [round(c, 1) for c in v["face_centre"]],
            "background": v["bg"], "light": {k: round(x, 4) for k, x in v["light"].items() if k != "flicker"},
            "noise_sigma": round(v["noise_sigma"], 3), "mouth": v["mouth"],
            "motion_amplitude": {k: round(x, 4) for k, x in v["motion_amp"].items()},
        },
        "detection": {"blazeface_score": round(d["score"], 3), "facemesh_presence": round(d["presence"], 3),
                      "roll_deg": round(d["roll_deg"], 2)},
        "mouth_max_open_px": round(float(scene.rig.max_open_px()), 2),
        "per_frame": {
            "time_s": [r3(k / a.fps) for k in range(n_frames)],
            "mouth_open": [r3(x) for x in opening],
            "mouth_xy": [t["mouth_xy"] for t in track],
            "face_width_px": [t["face_w"] for t in track],
            "rot_deg": [round(float(x), 2) for x in mo["rot_deg"]],
        },
    }
