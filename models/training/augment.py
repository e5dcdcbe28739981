"""Augmentations of the head's training windows that carry no label information (numpy only, so the
evaluation scripts that run an exported head under onnxruntime share them)."""
import numpy as np

# Row columns measured against the frame before (src/analysis/temporal.rs): landmark motion, embedding change,
# crop change, brightness change. After a lost frame the runtime measures them across the gap.
DELTA_COLS = [6, 7, 8, 10]


def drop_frames(idx, zero, rng, share, most=6):
    """Frames a live sender or the network dropped, as the runtime's grid shows them
    (src/analysis/temporal.rs, `FeatureRing::gather`): after a lost frame its slot holds the frame before
    (the whole row, audio features too), and a slot whose last frame is 2 or more steps old is empty. In
    `share` of the windows, 1 to `most` slots are lost, in runs of 1 to 3. Genuine and fake windows alike:
    a lost frame says nothing about the face. (The runtime scores only windows with at most 5 % such slots,
    15 % when the lip-sync estimator corroborates; live senders under load lose a few every window.)

    idx: [B, T] row indices (`zero`: the empty row). Returns the new indices and `carry`, an [N, 3] array of
    (window, slot, lost row): the frame in that slot is the first after a loss, and the runtime's change
    columns there span the lost frames too: add theirs (`add_carry`)."""
    idx = idx.copy()
    b, t = idx.shape
    carry = []
    for w in np.nonzero(rng.random(b) < share)[0]:
        budget = int(rng.integers(1, most + 1))
        touched = np.zeros(t, bool)   # slots a loss changed, or whose change columns it carries into
        while budget > 0:
            run = int(min(budget, rng.integers(1, 4)))
            budget -= run
            s0 = int(rng.integers(1, t - run + 1))
            span = slice(s0 - 1, min(t, s0 + run + 1))
            if touched[span].any() or (idx[w, span] == zero).any():
                continue
            touched[span] = True
            lost = idx[w, s0:s0 + run].copy()
            idx[w, s0] = idx[w, s0 - 1]
            idx[w, s0 + 1:s0 + run] = zero
            nxt = s0 + run
            if nxt < t and idx[w, nxt] != zero:
                carry.extend((w, nxt, r) for r in lost if r != zero)
    return idx, np.asarray(carry, np.int64).reshape(-1, 3)


def add_carry(x, rows, carry, cols=DELTA_COLS):
    """x [B, T, C] (numpy or torch, gathered from `rows`): adds each lost row's change columns to the slot
    that follows its loss. Returns x."""
    for c in cols:
        for w, s, r in carry:
            x[w, s, c] += rows[r, c]
    return x
