//! The temporal head's input: one feature row per analysed frame, gathered onto a fixed 40 ms grid for a
//! window, plus the window's lip-sync correlation curve resampled onto fixed lags.
//!
//! Row layout (feature set v1, [`AUX`] values then the backbone embedding):
//!
//! | index | feature |
//! |---|---|
//! | 0 | face tracked (0/1) |
//! | 1 | landmark model's face presence |
//! | 2 | more than one face seen (0/1) |
//! | 3, 4, 5 | mouth opening, mouth width (both / inter-ocular distance), opening velocity (1/s) |
//! | 6 | landmark motion since the previous frame (mean displacement / inter-ocular distance) |
//! | 7 | embedding change since the previous frame (1 - cosine) |
//! | 8 | crop change since the previous frame (mean absolute difference of an 8x8 thumbnail) |
//! | 9, 10 | face centre minus crop border brightness (normalised units), and its change |
//! | 11 | audio present (0/1) |
//! | 12, 13, 14 | audio level (dBFS / 100), log speech envelope, onset strength |
//! | 15..39 | 24 log-mel energies |
//!
//! Everything is zero where the face or the audio is missing. The head standardises the rows itself (its
//! first layer holds the training set's mean and deviation), so the raw units here need no care.
//!
//! The sync vector: the lip/audio correlation at lags -800..=800 ms in 40 ms steps ([`SYNC_LAGS`]), then
//! a validity flag and the estimator's confidence.

use std::collections::VecDeque;

use super::audio::MEL_BANDS;

/// Per-frame values before the embedding.
pub const AUX: usize = 15 + MEL_BANDS;
/// Grid slots of a window when no head says otherwise (3.2 s).
pub const SLOTS: usize = 80;
/// Grid step of the head's input.
pub const GRID_US: i64 = 40_000;
/// Lags of the sync curve (every 40 ms from -800 to +800 ms).
pub const SYNC_LAGS: usize = 41;
/// Length of the sync vector: the curve, a validity flag and the confidence.
pub const SYNC_LEN: usize = SYNC_LAGS + 2;
/// Version of the feature layout; a head records the version it was trained on.
pub const FEATURE_VERSION: u32 = 1;
/// Widest gap between two frames that a slot is interpolated across (a 10 fps source with jitter). A slot in
/// a wider gap (frames lost) holds the nearer frame and does not count as covered.
pub const MAX_GAP_US: i64 = 150_000;
/// Row columns measured against the previous frame (landmark motion, embedding change, crop change,
/// brightness change), rescaled to one grid step when the source's frame interval is not the grid's.
pub const DELTA_COLS: [usize; 4] = [ix::LANDMARK_MOTION, ix::EMBEDDING_DELTA, ix::THUMB_DELTA, ix::CENTRE_BORDER_DELTA];

/// Indices into the aux part of a row.
pub mod ix {
    pub const FACE: usize = 0;
    pub const PRESENCE: usize = 1;
    pub const MULTI_FACE: usize = 2;
    pub const MOUTH_OPEN: usize = 3;
    pub const MOUTH_WIDTH: usize = 4;
    pub const MOUTH_VELOCITY: usize = 5;
    pub const LANDMARK_MOTION: usize = 6;
    pub const EMBEDDING_DELTA: usize = 7;
    pub const THUMB_DELTA: usize = 8;
    pub const CENTRE_BORDER: usize = 9;
    pub const CENTRE_BORDER_DELTA: usize = 10;
    pub const AUDIO: usize = 11;
    pub const LEVEL: usize = 12;
    pub const ENVELOPE: usize = 13;
    pub const ONSET: usize = 14;
    pub const LOG_MEL: usize = 15;
}

/// Feature rows of recent frames, each with a sequence number, and the gathering of a window from them.
pub struct FeatureRing {
    dim: usize,
    /// (pts, sequence number) of each row; rows stored back to back in `data`.
    meta: VecDeque<(i64, u64)>,
    data: VecDeque<f32>,
    next_seq: u64,
    keep_us: i64,
}

impl FeatureRing {
    /// Rows of `dim` values (at least [`AUX`]), kept for `keep_us` of media time.
    pub fn new(dim: usize, keep_us: i64) -> Self {
        assert!(dim >= AUX, "a feature row holds at least the AUX columns"); // the layout's invariant
        Self { dim, meta: VecDeque::new(), data: VecDeque::new(), next_seq: 0, keep_us }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Append a row (must have `dim` values); returns its sequence number.
    pub fn push(&mut self, pts_us: i64, row: &[f32]) -> u64 {
        debug_assert_eq!(row.len(), self.dim);
        while self.meta.front().is_some_and(|&(t, _)| pts_us - t > self.keep_us) {
            self.meta.pop_front();
            self.data.drain(..self.dim);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.meta.push_back((pts_us, seq));
        self.data.extend(row);
        seq
    }

    /// Fill `out` (`slots x dim`) with the window of `slots` grid slots that ends at `end_us`, defined on media
    /// time whatever the source's frame rate: slot `k` (at `end - (slots - k) * 40 ms`) takes the two frames
    /// around its time, interpolated linearly (the change columns rescaled from the source's frame interval to
    /// the grid's, see [`DELTA_COLS`]); a frame exactly on the slot time is taken as it is, so 25 fps video on
    /// the grid gives its own rows. Across a gap wider than [`MAX_GAP_US`] (frames lost) or where the face
    /// comes or goes between the two frames, the nearer frame is held if it is less than 1.5 steps away (else
    /// the slot is empty, zeros). `seqs` gets each slot's nearest row sequence number (-1: empty).
    /// Returns the slots that were *covered* (interpolated or on a frame, not held across a gap or empty).
    pub fn gather(&self, end_us: i64, slots: usize, out: &mut Vec<f32>, seqs: &mut Vec<i64>) -> usize {
        let dim = self.dim;
        out.clear();
        out.resize(slots * dim, 0.0);
        seqs.clear();
        let start = end_us - slots as i64 * GRID_US;
        let scale = self.delta_scale(start, end_us);
        let mut i = 0usize; // first row after the slot time
        let mut covered = 0;
        for k in 0..slots {
            let t = start + k as i64 * GRID_US;
            while i < self.meta.len() && self.meta[i].0 <= t {
                i += 1;
            }
            let before = i.checked_sub(1);
            let after = (i < self.meta.len()).then_some(i);
            let row = |j: usize| self.data.range(j * dim..(j + 1) * dim);
            let dst = &mut out[k * dim..(k + 1) * dim];
            let interp = match (before, after) {
                (Some(a), _) if self.meta[a].0 == t => Some((a, a, 0.0)),
                (Some(a), Some(b)) => {
                    let (ta, tb) = (self.meta[a].0, self.meta[b].0);
                    let same_face = self.data[a * dim + ix::FACE] == self.data[b * dim + ix::FACE];
                    (tb - ta <= MAX_GAP_US && same_face).then(|| (a, b, (t - ta) as f32 / (tb - ta) as f32))
                }
                _ => None,
            };
            match interp {
                Some((a, b, w)) => {
                    if w == 0.0 || a == b {
                        dst.iter_mut().zip(row(a)).for_each(|(o, v)| *o = *v);
                    } else {
                        dst.iter_mut().zip(row(a).zip(row(b))).for_each(|(o, (x, y))| *o = x + (y - x) * w);
                        // Flags are not blended: the nearer frame's.
                        let near = if w < 0.5 { a } else { b };
                        for c in [ix::FACE, ix::MULTI_FACE, ix::AUDIO] {
                            dst[c] = self.data[near * dim + c];
                        }
                    }
                    if scale != 1.0 {
                        DELTA_COLS.iter().for_each(|&c| dst[c] *= scale);
                    }
                    seqs.push(self.meta[if w < 0.5 { a } else { b }].1 as i64);
                    covered += 1;
                }
                None => {
                    // Hold the nearer frame across a gap, if it is close enough.
                    let dist = |j: usize| (self.meta[j].0 - t).abs();
                    let near = match (before, after) {
                        (Some(a), Some(b)) => Some(if dist(a) <= dist(b) { a } else { b }),
                        (a, _) => a, // before the first frame: empty
                    }
                    .filter(|&j| dist(j) < GRID_US * 3 / 2);
                    match near {
                        Some(j) => {
                            dst.iter_mut().zip(row(j)).for_each(|(o, v)| *o = *v);
                            seqs.push(self.meta[j].1 as i64);
                        }
                        None => seqs.push(-1),
                    }
                }
            }
        }
        covered
    }

    /// Factor that turns the change columns of rows in `(start, end]`, each measured against the frame before
    /// it, into changes per grid step: the grid step over the median frame interval there, when that differs
    /// from the grid by more than 10 % (a 15 fps frame's change spans 67 ms, 1.67 grid steps). A frame lost
    /// here and there leaves the median, and so the factor, alone: its successor's change spans the loss, as
    /// the head was trained (`models/training/augment.py`).
    fn delta_scale(&self, start: i64, end: i64) -> f32 {
        let times = self.meta.iter().map(|m| m.0).filter(|&t| t > start - GRID_US * 2 && t <= end + GRID_US * 2);
        let mut gaps: Vec<i64> = times.clone().zip(times.skip(1)).map(|(a, b)| b - a).collect();
        if gaps.len() < 4 {
            return 1.0;
        }
        let mid = gaps.len() / 2;
        let median = *gaps.select_nth_unstable(mid).1;
        let ratio = GRID_US as f32 / median.max(1) as f32;
        if (ratio - 1.0).abs() <= 0.1 { 1.0 } else { ratio.clamp(0.2, 2.0) }
    }

    /// Where the frames of the `slots` grid slots that end at `end_us` sit relative to the slot times, in
    /// microseconds in [-GRID/2, GRID/2): the circular mean of their times modulo the grid. Live video
    /// jitters by a few milliseconds around its frame clock; gathering at `end_us + phase` keeps each frame
    /// in the middle of its slot, so jitter never makes a frame fill two slots and its neighbour none (which
    /// looks like the frozen frames of a face swap). Frames exactly on the grid (files at 25 fps) give 0.
    pub fn phase(&self, end_us: i64, slots: usize) -> i64 {
        let start = end_us - slots as i64 * GRID_US;
        let (mut s, mut c) = (0.0f64, 0.0f64);
        for &(t, _) in self.meta.iter().filter(|(t, _)| *t > start && *t <= end_us) {
            let a = (t - end_us).rem_euclid(GRID_US) as f64 / GRID_US as f64 * std::f64::consts::TAU;
            s += a.sin();
            c += a.cos();
        }
        if s.hypot(c) < 1e-9 {
            return 0;
        }
        let p = (s.atan2(c) / std::f64::consts::TAU * GRID_US as f64).round() as i64;
        // atan2 gives (-GRID/2, GRID/2]; keep the half-open range.
        if p >= GRID_US / 2 { p - GRID_US } else { p }
    }

    pub fn clear(&mut self) {
        self.meta.clear();
        self.data.clear();
    }
}

#[cfg(test)]
mod phase_tests {
    use super::*;

    #[test]
    fn audio_and_sync_shift_undo_a_one_slot_delay() {
        let dim = AUX + 2;
        let slots = 5;
        // Slot s: picture value 100 + s (column 3), audio value s (every audio column).
        let mut f = vec![0.0f32; slots * dim];
        for s in 0..slots {
            f[s * dim + ix::MOUTH_OPEN] = 100.0 + s as f32;
            for c in ix::AUDIO..ix::LOG_MEL + MEL_BANDS {
                f[s * dim + c] = s as f32;
            }
        }
        let mut late = f.clone();
        shift_audio(&mut late, dim, 1.0);
        for s in 0..slots {
            assert_eq!(late[s * dim + ix::MOUTH_OPEN], 100.0 + s as f32, "the picture stays");
            assert_eq!(late[s * dim + ix::LOG_MEL + 3], (s + 1).min(slots - 1) as f32);
        }
        let mut half = f.clone();
        shift_audio(&mut half, dim, 0.5);
        assert_eq!(half[2 * dim + ix::LEVEL], 2.5, "half a slot: the mean of two slots");
        shift_audio(&mut f, dim, -1.0);
        assert_eq!(f[ix::ONSET], 0.0);
        assert_eq!(f[3 * dim + ix::ONSET], 2.0);
        let mut sync = [0.0f32; SYNC_LEN];
        sync[SYNC_LAGS / 2 + 1] = 1.0; // peak at +40 ms
        sync[SYNC_LAGS] = 1.0;
        shift_sync(&mut sync, 1.0);
        assert_eq!(sync[SYNC_LAGS / 2], 1.0, "peak back at lag 0");
        assert_eq!(sync[SYNC_LAGS], 1.0, "flag untouched");
        assert_eq!(sync[SYNC_LAGS - 1], 0.0);
    }

    #[test]
    fn phase_follows_jittered_frames_and_is_zero_on_the_grid() {
        let mut ring = FeatureRing::new(AUX, 10_000_000);
        let row = [0.0f32; AUX];
        for k in 0..80 {
            ring.push(k * GRID_US, &row);
        }
        assert_eq!(ring.phase(80 * GRID_US, 80), 0);
        // Frames 19 ms after the grid, jittering by +-5 ms: without the phase many would land in the next
        // slot; with it every slot gets exactly one distinct frame.
        let mut ring = FeatureRing::new(AUX, 10_000_000);
        for k in 0..80i64 {
            let jitter = [0, 5_000, -5_000, 3_000][k as usize % 4];
            ring.push(k * GRID_US + 19_000 + jitter, &row);
        }
        let end = 80 * GRID_US;
        let p = ring.phase(end, 80);
        assert!((p - 19_000).abs() < 2_000, "phase {p}");
        let (mut out, mut seqs) = (Vec::new(), Vec::new());
        ring.gather(end + p, 80, &mut out, &mut seqs);
        let mut distinct = seqs.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 80, "{seqs:?}");
    }
}

/// Move the audio columns (audio flag to the last log-mel band) of a gathered window of `dim`-wide rows by
/// `k` slots, fractions interpolated linearly: `k` > 0 takes each slot's audio from `k` slots later (undoes
/// audio that came `k` slots late). Slots past the edge repeat the edge slot's audio.
pub fn shift_audio(frames: &mut [f32], dim: usize, k: f32) {
    let slots = frames.len() / dim;
    if k == 0.0 || slots == 0 {
        return;
    }
    let cols = ix::AUDIO..ix::LOG_MEL + MEL_BANDS;
    let w = cols.len();
    let old: Vec<f32> = (0..slots).flat_map(|s| frames[s * dim + cols.start..s * dim + cols.end].to_vec()).collect();
    let (base, frac) = (k.floor() as i64, k - k.floor());
    let at = |s: i64| s.clamp(0, slots as i64 - 1) as usize * w;
    for s in 0..slots {
        let (a, b) = (at(s as i64 + base), at(s as i64 + base + 1));
        for c in 0..w {
            frames[s * dim + cols.start + c] = old[a + c] * (1.0 - frac) + old[b + c] * frac;
        }
    }
}

/// Move the correlation curve of a sync vector by `k` lags the same way ([`shift_audio`]): the peak of
/// audio `k` slots late moves back to lag 0. Lags past the edge become 0.
pub fn shift_sync(sync: &mut [f32; SYNC_LEN], k: f32) {
    if k == 0.0 {
        return;
    }
    let curve: Vec<f32> = sync[..SYNC_LAGS].to_vec();
    let get = |j: i64| if (0..SYNC_LAGS as i64).contains(&j) { curve[j as usize] } else { 0.0 };
    let (base, frac) = (k.floor() as i64, k - k.floor());
    for (j, v) in sync[..SYNC_LAGS].iter_mut().enumerate() {
        let src = j as i64 + base;
        *v = get(src) * (1.0 - frac) + get(src + 1) * frac;
    }
}

/// Resample a correlation curve over lags `-K..=K` frames of `frame_us` onto [`SYNC_LAGS`] lags 40 ms
/// apart, and append the flag and confidence. `None` (no estimate this window) gives zeros.
pub fn sync_vector(curve: Option<(&[f32], f32, f32)>, out: &mut [f32; SYNC_LEN]) {
    out.fill(0.0);
    let Some((curve, frame_us, confidence)) = curve else { return };
    if curve.len() < 3 || frame_us <= 0.0 {
        return;
    }
    let k_max = (curve.len() / 2) as f32;
    let half = (SYNC_LAGS / 2) as f32;
    for (m, o) in out[..SYNC_LAGS].iter_mut().enumerate() {
        let lag_us = (m as f32 - half) * GRID_US as f32;
        let pos = lag_us / frame_us + k_max;
        if pos < 0.0 || pos > (curve.len() - 1) as f32 {
            continue;
        }
        let i = (pos.floor() as usize).min(curve.len() - 2);
        let f = pos - i as f32;
        *o = curve[i] * (1.0 - f) + curve[i + 1] * f;
    }
    out[SYNC_LAGS] = 1.0;
    out[SYNC_LAGS + 1] = confidence;
}

/// Mean of 8x8 blocks of a normalised crop tensor (all channels averaged, every 4th pixel each way: a
/// ~20 us thumbnail for a 224 crop).
pub fn thumbnail(tensor: &[f32], size: usize, nchw: bool, out: &mut [f32; 64]) {
    const STEP: usize = 4;
    out.fill(0.0);
    if size < 8 || tensor.len() < size * size * 3 {
        return;
    }
    let cell = size / 8;
    let plane = size * size;
    let step = STEP.min(cell);
    for cy in 0..8 {
        for cx in 0..8 {
            let (mut sum, mut n) = (0.0f32, 0u32);
            for y in (cy * cell..(cy + 1) * cell).step_by(step) {
                for x in (cx * cell..(cx + 1) * cell).step_by(step) {
                    let p = y * size + x;
                    sum += if nchw {
                        tensor[p] + tensor[plane + p] + tensor[2 * plane + p]
                    } else {
                        tensor[3 * p] + tensor[3 * p + 1] + tensor[3 * p + 2]
                    };
                    n += 1;
                }
            }
            out[cy * 8 + cx] = sum / (3 * n) as f32;
        }
    }
}

/// Inner 4x4 cells minus the outer ring of an 8x8 thumbnail.
pub fn centre_minus_border(t: &[f32; 64]) -> f32 {
    let (mut inner, mut outer) = (0.0, 0.0);
    for y in 0..8 {
        for x in 0..8 {
            if (2..6).contains(&x) && (2..6).contains(&y) {
                inner += t[y * 8 + x];
            } else {
                outer += t[y * 8 + x];
            }
        }
    }
    inner / 16.0 - outer / 48.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_maps_25fps_frames_one_to_one_and_interpolates_a_lost_frame() {
        let mut ring = FeatureRing::new(AUX, 10_000_000);
        let mut row = vec![0.0f32; AUX];
        row[ix::FACE] = 1.0;
        for i in 0..10i64 {
            if i == 4 {
                continue; // a lost frame
            }
            row[ix::MOUTH_OPEN] = i as f32;
            ring.push(1_000_000 + i * 40_000, &row);
        }
        let (mut out, mut seqs) = (Vec::new(), Vec::new());
        let covered = ring.gather(1_000_000 + 10 * 40_000, 10, &mut out, &mut seqs);
        // slot 4 lies between frames 3 and 5 (80 ms apart): interpolated, and covered
        assert_eq!(covered, 10);
        let mouth: Vec<f32> = out.chunks(AUX).map(|r| r[ix::MOUTH_OPEN]).collect();
        assert_eq!(mouth, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(seqs, vec![0, 1, 2, 3, 4, 4, 5, 6, 7, 8], "the nearer frame; the later one half way");
        // a window reaching before the first frame has empty slots at its start
        let covered = ring.gather(1_000_000 + 4 * 40_000, 8, &mut out, &mut seqs);
        assert_eq!(covered, 4);
        assert_eq!(&seqs[..4], &[-1, -1, -1, -1]);
        assert!(out[..4 * AUX].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn a_long_gap_is_held_not_interpolated_and_not_covered() {
        let mut ring = FeatureRing::new(AUX, 10_000_000);
        let mut row = vec![0.0f32; AUX];
        row[ix::FACE] = 1.0;
        for i in (0..5i64).chain(10..20) {
            row[ix::MOUTH_OPEN] = i as f32;
            ring.push(i * 40_000, &row);
        }
        let (mut out, mut seqs) = (Vec::new(), Vec::new());
        // frames 5..9 lost: a 240 ms gap, over MAX_GAP_US
        let covered = ring.gather(20 * 40_000, 20, &mut out, &mut seqs);
        assert_eq!(covered, 20 - 5);
        let mouth: Vec<f32> = out.chunks(AUX).map(|r| r[ix::MOUTH_OPEN]).collect();
        assert_eq!(&mouth[4..11], &[4.0, 4.0, 0.0, 0.0, 0.0, 10.0, 10.0], "held within 1.5 steps, else empty");
    }

    #[test]
    fn any_frame_rate_fills_every_slot_on_media_time() {
        for fps in [10.0f64, 12.0, 15.0, 20.0, 24.0, 30.0] {
            let step = (1e6 / fps) as i64;
            let mut ring = FeatureRing::new(AUX, 10_000_000);
            let mut row = vec![0.0f32; AUX];
            row[ix::FACE] = 1.0;
            row[ix::LANDMARK_MOTION] = 0.01 * step as f32 / GRID_US as f32; // a steady motion
            for i in 0..(5.0 * fps) as i64 {
                row[ix::MOUTH_OPEN] = (i * step) as f32 / 1e6; // the frame's own time, seconds
                ring.push(i * step, &row);
            }
            let (mut out, mut seqs) = (Vec::new(), Vec::new());
            let end = 4_000_000;
            assert_eq!(ring.gather(end, 80, &mut out, &mut seqs), 80, "{fps} fps");
            for (k, r) in out.chunks(AUX).enumerate() {
                let t = (end - (80 - k as i64) * GRID_US) as f32 / 1e6;
                assert!((r[ix::MOUTH_OPEN] - t).abs() < 1e-4, "{fps} fps slot {k}: {} for {t}", r[ix::MOUTH_OPEN]);
                // the change per frame becomes the change per grid step
                assert!((r[ix::LANDMARK_MOTION] - 0.01).abs() < 1e-3, "{fps} fps: {}", r[ix::LANDMARK_MOTION]);
                assert_eq!(r[ix::FACE], 1.0);
            }
        }
    }

    #[test]
    fn sync_vector_resamples_lags_in_milliseconds() {
        // 30 fps curve with a peak at +5 frames (+167 ms)
        let k = 24;
        let curve: Vec<f32> = (-k..=k).map(|l| if l == 5 { 1.0 } else { 0.0 }).collect();
        let mut v = [0.0; SYNC_LEN];
        sync_vector(Some((&curve, 33_333.0, 0.7)), &mut v);
        let (best, _) = v[..SYNC_LAGS].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        assert_eq!((best as i32 - 20) * 40, 160); // the nearest 40 ms lag
        assert_eq!(v[SYNC_LAGS], 1.0);
        assert_eq!(v[SYNC_LAGS + 1], 0.7);
        sync_vector(None, &mut v);
        assert!(v.iter().all(|x| *x == 0.0));
    }

    #[test]
    fn thumbnail_and_centre_border() {
        let size = 16;
        let mut t = vec![0.0f32; 3 * size * size];
        // bright centre square in every channel (NCHW)
        for c in 0..3 {
            for y in 4..12 {
                for x in 4..12 {
                    t[c * size * size + y * size + x] = 1.0;
                }
            }
        }
        let mut th = [0.0; 64];
        thumbnail(&t, size, true, &mut th);
        assert!((centre_minus_border(&th) - 1.0).abs() < 1e-6);
    }
}
