"""Phonemes -> visemes -> articulation channels over time, with co-articulation (dominance blending), plus the
non-verbal tracks driven by the speech's stress (eyebrow raises, head nods) and blinks.

Channels (per video frame, all from the phoneme timeline, none from the audio signal):
  jaw     jaw drop, 0..1 (x the clip's maximum jaw drop in px)
  lip     extra lip parting beyond the jaw, -1..1 (negative: the lower lip is drawn up, as for f/v)
  press   lips pressed together (bilabial closure), 0..1: closes the lips whatever the jaw does
  width   lip spreading (+) or rounding (-), -1..1
  uplift  upper-lip raise (shows the upper teeth), 0..1
  teeth   how much of the teeth shows in the opening, 0..1
  tongue  tongue tip visible behind the teeth (th, l), 0..1

Co-articulation (after Cohen & Massaro's dominance model): each phone s has a target T_s and a dominance
D_s(t) = a_s inside its interval, falling off as exp(-(d/tau)^2) with the distance d outside it; tau is the
anticipation time before the phone (40-80 ms by seed, 1.5x that for lip rounding, which starts earlier) and
about half of it after. A channel at time t is sum D_s T_s / sum D_s. Bilabials and f/v dominate their
neighbours (the lips must close), h and schwa hardly at all (they take their neighbours' shape)."""
import numpy as np

CH = ("jaw", "lip", "press", "width", "uplift", "teeth", "tongue")
NCH = len(CH)

# viseme: (targets dict, dominance of the aperture channels, dominance of the shape channels)
VISEMES = {
    "sil": ({}, 1.0, 0.6),
    "PP": ({"jaw": 0.06, "lip": -0.2, "press": 1.0}, 4.0, 1.0),
    "FF": ({"jaw": 0.12, "lip": -0.55, "uplift": 0.35, "teeth": 0.9}, 2.5, 1.2),
    "TH": ({"jaw": 0.16, "lip": 0.25, "teeth": 0.6, "tongue": 1.0}, 1.3, 0.6),
    "DD": ({"jaw": 0.18, "lip": 0.18, "teeth": 0.5, "tongue": 0.15}, 0.7, 0.35),
    "LL": ({"jaw": 0.24, "lip": 0.22, "teeth": 0.5, "tongue": 0.7}, 0.7, 0.35),
    "SS": ({"jaw": 0.07, "lip": 0.14, "width": 0.45, "uplift": 0.25, "teeth": 1.0}, 1.3, 0.8),
    "CH": ({"jaw": 0.14, "lip": 0.28, "width": -0.55, "uplift": 0.2, "teeth": 0.8}, 1.4, 1.3),
    "KK": ({"jaw": 0.28, "lip": 0.22}, 0.45, 0.25),
    "RR": ({"jaw": 0.15, "lip": 0.18, "width": -0.5}, 0.8, 1.0),
    "WW": ({"jaw": 0.10, "lip": 0.10, "width": -1.0}, 1.3, 1.6),
    "HH": ({"jaw": 0.30, "lip": 0.30}, 0.2, 0.1),
    "II": ({"jaw": 0.18, "lip": 0.30, "width": 0.8, "uplift": 0.2, "teeth": 0.7}, 1.0, 0.9),
    "IH": ({"jaw": 0.26, "lip": 0.30, "width": 0.5, "teeth": 0.5}, 0.9, 0.7),
    "EE": ({"jaw": 0.40, "lip": 0.34, "width": 0.5, "teeth": 0.45}, 1.0, 0.7),
    "EH": ({"jaw": 0.48, "lip": 0.38, "width": 0.35, "teeth": 0.4}, 1.0, 0.6),
    "AE": ({"jaw": 0.78, "lip": 0.45, "width": 0.45, "teeth": 0.35}, 1.1, 0.6),
    "AA": ({"jaw": 1.00, "lip": 0.50, "width": 0.05, "teeth": 0.25}, 1.1, 0.6),
    "AH": ({"jaw": 0.62, "lip": 0.42, "width": 0.0, "teeth": 0.3}, 0.9, 0.4),
    "AO": ({"jaw": 0.68, "lip": 0.32, "width": -0.45, "teeth": 0.2}, 1.0, 0.9),
    "OH": ({"jaw": 0.45, "lip": 0.28, "width": -0.7, "teeth": 0.15}, 1.0, 1.1),
    "UH": ({"jaw": 0.25, "lip": 0.18, "width": -0.65, "teeth": 0.15}, 0.9, 1.1),
    "UW": ({"jaw": 0.17, "lip": 0.12, "width": -1.0, "teeth": 0.1}, 1.0, 1.4),
    "AX": ({"jaw": 0.33, "lip": 0.28, "width": 0.0, "teeth": 0.3}, 0.5, 0.2),
    "ER": ({"jaw": 0.30, "lip": 0.22, "width": -0.35, "teeth": 0.3}, 0.8, 0.8),
}

# IPA symbol -> viseme (single symbols; multi-symbol phones are split, see phone_visemes)
IPA = {}
for _v, _s in {
    "PP": "pbm", "FF": "fvɱ", "TH": "θð", "DD": "tdnɾʔ", "LL": "lɫɬ", "SS": "sz", "CH": "ʃʒ",
    "KK": "kɡgŋxɣq", "RR": "ɹrɻʁ", "WW": "wʍ", "HH": "hɦ", "II": "ij", "IH": "ɪᵻɨʏy", "EE": "eɘ",
    "EH": "ɛœ", "AE": "æ", "AA": "aɑɶ", "AH": "ʌɐ", "AO": "ɒɔ", "OH": "oɵø", "UH": "ʊ", "UW": "uʉɯ",
    "AX": "əɜɞ", "ER": "ɚɝ",
}.items():
    for _c in _s:
        IPA[_c] = _v
VOWELS = {"II", "IH", "EE", "EH", "AE", "AA", "AH", "AO", "OH", "UH", "UW", "AX", "ER"}


def phone_visemes(ph):
    """A phone (IPA, possibly several symbols: a diphthong 'aɪ', an affricate 'tʃ', 'ɔːɹ') -> [(viseme, share)]."""
    s = [c for c in ph if c in IPA]
    if not s:
        return [("HH", 1.0)]
    if len(s) >= 2 and s[0] in "td" and s[1] in "ʃʒ":      # affricates: one postalveolar shape
        return [("CH", 1.0)]
    vis = [IPA[c] for c in s]
    if len(vis) == 1:
        return [(vis[0], 1.0)]
    # diphthongs / r-coloured vowels: the first part takes the larger share
    w = np.array([1.6] + [1.0] * (len(vis) - 1))
    w = w / w.sum()
    return list(zip(vis, [float(x) for x in w]))


def segments(phones, span, stress_gain):
    """phones [(t0, t1, ipa, stress)] (seconds, video time) -> arrays of segments: t0, t1, targets (S,NCH),
    dominance (S,2), viseme names, stress. `span`: (start, end) of the clip: silence fills the gaps."""
    segs = []
    for t0, t1, ph, st in phones:
        parts = phone_visemes(ph)
        a = t0
        for vis, share in parts:
            b = a + (t1 - t0) * share
            segs.append((a, b, vis, st if vis in VOWELS else 0))
            a = b
    # silence wherever no phone is (the pauses and both ends), as its own segments
    out, cur = [], span[0]
    for s in sorted(segs, key=lambda z: z[0]):
        if s[0] - cur > 0.06:
            out.append((cur, s[0], "sil", 0))
        out.append(s)
        cur = max(cur, s[1])
    if span[1] - cur > 0.0:
        out.append((cur, span[1] + 1.0, "sil", 0))
    if out and out[0][2] != "sil":
        out.insert(0, (span[0] - 1.0, out[0][0], "sil", 0))
    elif out:
        out[0] = (span[0] - 1.0,) + out[0][1:]
    n = len(out)
    T = np.zeros((n, NCH))
    D = np.zeros((n, 2))
    for i, (a, b, vis, st) in enumerate(out):
        tg, da, ds = VISEMES[vis]
        for k, c in enumerate(CH):
            T[i, k] = tg.get(c, 0.0)
        if vis in VOWELS:
            g = stress_gain[int(st)]
            T[i, 0] *= g
            T[i, 1] *= min(g, 1.1)
        D[i] = (da, ds)
    t0 = np.array([s[0] for s in out])
    t1 = np.array([s[1] for s in out])
    return {"t0": t0, "t1": t1, "T": T, "D": D, "vis": [s[2] for s in out], "stress": [s[3] for s in out]}


def channels(seg, times, tau_pre, tau_post, round_lead=1.5):
    """Channel values (len(times), NCH) at the given times (s, video time of the speech they show)."""
    t = np.asarray(times, np.float64)[:, None]
    t0, t1 = seg["t0"][None, :], seg["t1"][None, :]
    before = np.clip(t0 - t, 0, None)          # t is before the phone: anticipation
    after = np.clip(t - t1, 0, None)           # t is after it: carry-over
    out = np.zeros((t.shape[0], NCH))
    groups = [(0, (0, 1, 2, 5, 6)), (1, (3, 4))]  # aperture channels; shape channels (width, uplift)
    for g, idx in groups:
        tp = tau_pre * (round_lead if g == 1 else 1.0)
        d = np.exp(-(before / tp) ** 2 - (after / tau_post) ** 2) * seg["D"][None, :, g]
        d = d + 1e-9
        v = (d @ seg["T"][:, idx]) / d.sum(1, keepdims=True)
        out[:, idx] = v
    out[:, 0] = np.clip(out[:, 0], 0, 1.3)
    out[:, 2] = np.clip(out[:, 2], 0, 1)
    return out


def aperture(ch, lip_ratio):
    """A single 'mouth opening' number per frame (0..~1): the inner-lip gap, as the rig computes it."""
    jaw, lip, press = ch[:, 0], ch[:, 1], ch[:, 2]
    return np.clip(jaw * (1 - press) + lip * lip_ratio, 0, None)


# ------------------------------------------------------------------ stress-driven and idle tracks

def _pulse(t, t_on, attack, hold, release):
    """0 -> 1 (smoothstep over attack) -> hold -> 0 (over release)."""
    x = t - t_on
    up = np.clip(x / attack, 0, 1)
    down = 1 - np.clip((x - attack - hold) / release, 0, 1)
    s = np.minimum(up, down)
    return s * s * (3 - 2 * s)


def stress_events(phones):
    """[(onset time, level)] of the stressed vowels (level 2 primary, 1 secondary)."""
    ev = []
    for t0, t1, ph, st in phones:
        if st and any(IPA.get(c) in VOWELS for c in ph):
            ev.append((t0, int(st)))
    return ev


def brow_track(rng, events, times, sentence_starts):
    """Eyebrow raise 0..1 on some primary-stressed syllables (more likely on the first of a sentence)."""
    t = np.asarray(times, np.float64)
    out = np.zeros_like(t)
    last = -10.0
    picked = []
    for t_on, lvl in events:
        if lvl < 2 or t_on - last < 1.2:
            continue
        first = any(abs(t_on - s) < 0.6 for s in sentence_starts)
        if rng.uniform() < (0.65 if first else 0.25):
            amp = float(rng.uniform(0.5, 1.0))
            hold = float(rng.uniform(0.12, 0.40))
            out = np.maximum(out, amp * _pulse(t, t_on - 0.08, 0.12, hold, 0.28))
            picked.append(round(t_on, 3))
            last = t_on
    return out, picked


def nod_track(rng, events, times, amp_deg):
    """Head pitch (deg, + = chin down) and yaw nudges on stressed syllables: a quick dip and a slower return."""
    t = np.asarray(times, np.float64)
    pitch = np.zeros_like(t)
    yaw = np.zeros_like(t)
    for t_on, lvl in events:
        if rng.uniform() > (0.75 if lvl == 2 else 0.25):
            continue
        a = amp_deg * float(rng.uniform(0.4, 1.0)) * (1.0 if lvl == 2 else 0.5)
        x = t - (t_on - 0.05)
        m = x > 0
        k = np.zeros_like(t)
        k[m] = (x[m] / 0.12) * np.exp(1 - x[m] / 0.12)      # gamma-like bump, peak 0.12 s after onset
        pitch += a * k
        yaw += a * 0.4 * float(rng.uniform(-1, 1)) * k
    return pitch, yaw


def idle_motion(rng, n, fps, amp, fmin=0.06, fmax=0.6, k=4):
    """Slow smooth motion: a sum of k sinusoids (random frequency, phase, weight), peak |value| <= amp."""
    t = np.arange(n) / fps
    f = rng.uniform(fmin, fmax, k)
    ph = rng.uniform(0, 2 * np.pi, k)
    w = rng.uniform(0.2, 1.0, k)
    s = (w[:, None] * np.sin(2 * np.pi * f[:, None] * t[None, :] + ph[:, None])).sum(0)
    return amp * s / w.sum()


def blink_track(rng, n, fps, interval=(2.0, 6.0), dur=(0.12, 0.18)):
    """Eyelid closure 0..1 per frame: blinks at random 2-6 s intervals, each ~150 ms (fast close, slower
    open); sampled as the mean closure over the frame's exposure so that 10-60 fps all show them."""
    T = n / fps
    times = []
    t = float(rng.uniform(0.3, interval[1]))
    while t < T - 0.05:
        times.append((t, float(rng.uniform(*dur))))
        if rng.uniform() < 0.08:                 # an occasional double blink
            times.append((t + 0.35, float(rng.uniform(*dur))))
        t += float(rng.uniform(*interval))
    sub = 8
    ts = (np.arange(n * sub) + 0.5) / (fps * sub) - 0.5 / fps
    c = np.zeros_like(ts)
    for t0, d in times:
        close, hold = 0.38 * d, 0.12 * d
        opn = d - close - hold
        x = ts - t0
        v = np.where(x < 0, 0, np.where(x < close, x / close, np.where(x < close + hold, 1,
                     np.clip(1 - (x - close - hold) / opn, 0, 1))))
        c = np.maximum(c, v)
    c = c.reshape(n, sub).mean(1)
    return np.clip(c, 0, 1), [round(a, 3) for a, _ in times]
