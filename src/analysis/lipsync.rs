//! Classical lip-sync offset estimate: normalised cross-correlation of the mouth opening with the audio
//! envelope over a sliding window, on the frame clock.
//!
//! For a lag of `k` frames the lips at frame `i` are paired with the audio at frame `i + k`; the lag with the
//! highest correlation (refined by a parabola through its neighbours) is the offset. A positive offset means
//! the audio comes late, after the lips. Confidence is the peak's height above the median correlation over
//! all lags (SyncNet's "confidence" idea), so a flat, ambiguous curve gives a low confidence.
//!
//! Three more facts about a peak say whether it is a measured offset or an accident of a short window, and
//! the analyser's alert rule asks for them ([`SyncEstimate::distinct`], [`SyncEstimate::in_sync_min`]):
//! - it must lie *inside* the searched range (a maximum on the range's edge is a curve still rising towards
//!   lags not searched, not a peak);
//! - it must stand above the *magnitude* of the correlation at the in-sync lags (within `in_sync_ms` of zero):
//!   a mouth signal that is strongly tied to the sound at zero lag, with either sign, is evidence of sync, not
//!   of an offset elsewhere;
//! - the correlation at the in-sync lags must not be clearly negative: lips that close as the voice gets loud
//!   are not a physical speaker but a mouth measurement that does not follow this face (seen on an animated
//!   face whose photo shows teeth: the landmarks' inner-lip gap shrinks as the rendered mouth opens), and
//!   such a curve's highest point can sit anywhere.
//!
//! The mean curve of the last few windows ([`LipSync::recent`]) is the same measurement over more speech.

use std::collections::VecDeque;

use deepfake_guard_plugin_api::{Detector, FrameFeatures, Signal, Window};

/// Settings of the estimator.
#[derive(Clone, Debug)]
pub struct LipSyncConfig {
    /// Largest offset searched, each way.
    pub max_offset_ms: f32,
    /// Minimum share of a window's frames with both a face and audio.
    pub min_coverage: f32,
    /// Minimum standard deviation of the mouth opening (relative to face size): a still mouth says nothing.
    pub min_lip_std: f32,
    /// Minimum dynamic range of the audio level in the window (dB): steady noise or silence says nothing.
    pub min_audio_range_db: f32,
    /// Lags within this of zero are "in sync" for [`SyncEstimate::margin`] and [`SyncEstimate::in_sync_min`]
    /// (40 ms: the lags -1..=1 frames at 25 and 30 fps, lag 0 alone below 25 fps).
    pub in_sync_ms: f32,
    /// How far back [`LipSync::recent`] averages the windows' curves (by window end, on media time).
    pub recent_us: i64,
}

impl Default for LipSyncConfig {
    fn default() -> Self {
        Self {
            max_offset_ms: 800.0,
            min_coverage: 0.5,
            min_lip_std: 0.004,
            min_audio_range_db: 12.0,
            in_sync_ms: 40.0,
            recent_us: 8_000_000,
        }
    }
}

#[derive(Clone, Copy)]
struct Sample {
    pts_us: i64,
    lip: f32,
    has_lip: bool,
    env: f32,
    level_db: f32,
    has_audio: bool,
}

/// The estimate of one window or of a whole stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncEstimate {
    pub offset_ms: f32,
    pub confidence: f32,
    /// Correlation at the peak.
    pub peak: f32,
    /// The peak's height above the largest magnitude of the correlation at lags within `in_sync_ms` of zero
    /// (0 or less when the peak is itself in that band, or a strong negative correlation sits there).
    pub margin: f32,
    /// The lowest correlation at lags within `in_sync_ms` of zero.
    pub in_sync_min: f32,
    /// The peak is a maximum inside the searched lags, not on their edge.
    pub interior: bool,
}

impl SyncEstimate {
    /// Whether the peak is a measured offset away from sync rather than an accident of the window: inside the
    /// searched lags and higher than the correlation's magnitude at the in-sync lags.
    pub fn distinct(&self) -> bool {
        self.interior && self.margin > 0.0
    }
}

/// Lip-sync estimator; also a [`Detector`], so it runs through the same interface as plugged-in detectors.
pub struct LipSync {
    cfg: LipSyncConfig,
    history: VecDeque<Sample>,
    /// Sum of the per-window correlation curves (lag -K..=K in frames), for a stream-level estimate.
    total_curve: Vec<f64>,
    total_windows: u32,
    total_frame_us: f64,
    last: Option<SyncEstimate>,
    curve: Vec<f32>,
    /// Frame interval the last curve was computed on.
    curve_frame_us: f32,
    frame_us: Vec<i64>,
    /// The curves of the windows that ended in the last `recent_us` (buffers reused), with their frame
    /// intervals and windows.
    recent: VecDeque<(Vec<f32>, f32, Window, Option<SyncEstimate>)>,
    recent_mean: Vec<f32>,
}

impl LipSync {
    pub fn new(cfg: LipSyncConfig) -> Self {
        Self {
            cfg,
            history: VecDeque::new(),
            total_curve: Vec::new(),
            total_windows: 0,
            total_frame_us: 0.0,
            last: None,
            curve: Vec::new(),
            curve_frame_us: 0.0,
            frame_us: Vec::new(),
            recent: VecDeque::new(),
            recent_mean: Vec::new(),
        }
    }

    /// The estimate of the most recent window, if it had enough face, motion and sound.
    pub fn last(&self) -> Option<SyncEstimate> {
        self.last
    }

    /// The correlation curve of the most recent window (lags `-K..=K` frames), its frame interval in
    /// microseconds and the estimate's confidence; `None` when that window had no estimate.
    pub fn last_curve(&self) -> Option<(&[f32], f32, f32)> {
        self.last.map(|e| (&self.curve[..], self.curve_frame_us, e.confidence))
    }

    /// The estimate over every window seen so far (the mean correlation curve).
    pub fn overall(&self) -> Option<SyncEstimate> {
        if self.total_windows == 0 {
            return None;
        }
        let curve: Vec<f32> = self.total_curve.iter().map(|v| (*v / self.total_windows as f64) as f32).collect();
        let frame_us = self.total_frame_us / self.total_windows as f64;
        peak_of(&curve, frame_us as f32, self.cfg.in_sync_ms)
    }

    /// The estimate of the latest window that began at least `gap_us` before the most recent one (within the
    /// recent set): a measurement on mostly other speech, to see whether an offset persists. `None` when the most
    /// recent window had no estimate or no such window had one.
    pub fn earlier(&self, gap_us: i64) -> Option<SyncEstimate> {
        self.last?;
        let start = self.recent.back()?.2.start_us;
        self.recent.iter().rev().find(|(_, _, w, _)| start - w.start_us >= gap_us).and_then(|(_, _, _, e)| *e)
    }

    /// The estimate over the windows with an estimate that ended in the last `recent_us` (their mean
    /// correlation curve), and the media time those windows span: the most recent window's measurement over
    /// more speech. `None` unless the most recent window had an estimate; windows of another frame rate than
    /// the last are left out.
    pub fn recent(&mut self) -> Option<(SyncEstimate, i64)> {
        self.last?;
        let (len, frame_us, end) = self.recent.back().map(|(c, f, w, _)| (c.len(), *f, w.end_us))?;
        self.recent_mean.clear();
        self.recent_mean.resize(len, 0.0);
        let (mut n, mut start) = (0, end);
        for (c, _, w, _) in self.recent.iter().filter(|(c, _, _, _)| c.len() == len) {
            self.recent_mean.iter_mut().zip(c).for_each(|(m, v)| *m += v);
            start = start.min(w.start_us);
            n += 1;
        }
        self.recent_mean.iter_mut().for_each(|m| *m /= n as f32);
        peak_of(&self.recent_mean, frame_us, self.cfg.in_sync_ms).map(|e| (e, end - start))
    }

    /// Median frame interval of the history.
    fn frame_interval_us(&mut self) -> Option<i64> {
        self.frame_us.clear();
        self.frame_us.extend(self.history.iter().zip(self.history.iter().skip(1)).map(|(a, b)| b.pts_us - a.pts_us));
        if self.frame_us.is_empty() {
            return None;
        }
        let mid = self.frame_us.len() / 2;
        let (_, m, _) = self.frame_us.select_nth_unstable(mid);
        Some((*m).max(1))
    }

    fn estimate(&mut self, window: Window) -> Option<SyncEstimate> {
        let frame_us = self.frame_interval_us()?;
        let k_max = ((self.cfg.max_offset_ms * 1000.0) / frame_us as f32).round() as isize;
        let h = &self.history;
        // Lips come from the window; audio may come from up to k_max frames before it (already seen).
        let first = h.iter().position(|s| s.pts_us >= window.start_us)?;
        let last = h.iter().rposition(|s| s.pts_us < window.end_us)?;
        if last <= first {
            return None;
        }
        let n = last - first + 1;
        let both = h.range(first..=last).filter(|s| s.has_lip && s.has_audio).count();
        if (both as f32) < self.cfg.min_coverage * n as f32 {
            return None;
        }
        let lips = h.range(first..=last).filter(|s| s.has_lip).map(|s| s.lip);
        let (mean, m2, cnt) = lips.fold((0.0f64, 0.0f64, 0u32), |(m, m2, c), x| {
            let c1 = c + 1;
            let d = x as f64 - m;
            let m_new = m + d / c1 as f64;
            (m_new, m2 + d * (x as f64 - m_new), c1)
        });
        let _ = mean;
        if cnt < 2 || ((m2 / (cnt - 1) as f64).sqrt() as f32) < self.cfg.min_lip_std {
            return None;
        }
        let (lo, hi) = h
            .range(first..=last)
            .filter(|s| s.has_audio)
            .fold((f32::MAX, f32::MIN), |(lo, hi), s| (lo.min(s.level_db), hi.max(s.level_db)));
        if hi - lo < self.cfg.min_audio_range_db {
            return None;
        }
        self.curve.clear();
        for k in -k_max..=k_max {
            let (mut sl, mut sa, mut sll, mut saa, mut sla, mut c) = (0f64, 0f64, 0f64, 0f64, 0f64, 0u32);
            for i in first..=last {
                let j = i as isize + k;
                if j < 0 || j as usize >= h.len() {
                    continue;
                }
                let (a, b) = (&h[i], &h[j as usize]);
                if !(a.has_lip && b.has_audio) {
                    continue;
                }
                let (l, e) = (a.lip as f64, b.env as f64);
                sl += l;
                sa += e;
                sll += l * l;
                saa += e * e;
                sla += l * e;
                c += 1;
            }
            let r = if (c as usize) * 2 < both {
                0.0 // too few pairs at this lag to say anything
            } else {
                let cf = c as f64;
                let cov = sla - sl * sa / cf;
                let var = (sll - sl * sl / cf) * (saa - sa * sa / cf);
                if var > 0.0 { (cov / var.sqrt()) as f32 } else { 0.0 }
            };
            self.curve.push(r);
        }
        if self.total_curve.len() != self.curve.len() {
            // First window, or the frame rate changed: restart the stream-level accumulation.
            self.total_curve = vec![0.0; self.curve.len()];
            self.total_windows = 0;
            self.total_frame_us = 0.0;
        }
        self.total_curve.iter_mut().zip(&self.curve).for_each(|(t, c)| *t += *c as f64);
        self.total_windows += 1;
        self.total_frame_us += frame_us as f64;
        self.curve_frame_us = frame_us as f32;
        // Windows that ended too long ago (or a bounded count) leave the recent set; their buffers are reused.
        let mut spare = None;
        while self.recent.len() >= 64
            || self.recent.front().is_some_and(|(_, _, w, _)| window.end_us - w.end_us >= self.cfg.recent_us)
        {
            spare = self.recent.pop_front().map(|(v, _, _, _)| v);
        }
        let mut slot = spare.unwrap_or_default();
        slot.clear();
        slot.extend_from_slice(&self.curve);
        let estimate = peak_of(&self.curve, frame_us as f32, self.cfg.in_sync_ms);
        self.recent.push_back((slot, frame_us as f32, window, estimate));
        estimate
    }
}

/// Peak of a correlation curve over lags `-K..=K` frames, refined by a parabola, with its confidence, its
/// margin over the lags within `in_sync_ms` of zero and whether it lies inside the range.
fn peak_of(curve: &[f32], frame_us: f32, in_sync_ms: f32) -> Option<SyncEstimate> {
    if curve.len() < 3 {
        return None;
    }
    let k_max = (curve.len() / 2) as f32;
    let (i, &peak) = curve.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let mut delta = 0.0;
    if i > 0 && i + 1 < curve.len() {
        let (a, b, c) = (curve[i - 1], curve[i], curve[i + 1]);
        let den = a - 2.0 * b + c;
        if den < 0.0 {
            delta = (0.5 * (a - c) / den).clamp(-0.5, 0.5);
        }
    }
    let mut sorted = curve.to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let offset_ms = (i as f32 - k_max + delta) * frame_us / 1000.0;
    let band = ((in_sync_ms * 1000.0 / frame_us).floor() as usize).min(curve.len() / 2);
    let centre = curve.len() / 2;
    let near = &curve[centre - band..=centre + band];
    let in_sync = near.iter().fold(0.0f32, |m, c| m.max(c.abs()));
    let in_sync_min = near.iter().copied().fold(f32::MAX, f32::min);
    // A peak on the first or last searched lag is the edge of a curve still rising, not a maximum.
    let interior = i > 0 && i + 1 < curve.len();
    Some(SyncEstimate {
        offset_ms,
        confidence: (peak - median).clamp(0.0, 1.0),
        peak,
        margin: peak - in_sync,
        in_sync_min,
        interior,
    })
}

impl Detector for LipSync {
    fn name(&self) -> &str {
        "lipsync"
    }

    fn observe(&mut self, f: &FrameFeatures<'_>) {
        let (lip, has_lip) = f.face.map_or((0.0, false), |face| (face.mouth_open, true));
        self.history.push_back(Sample {
            pts_us: f.pts_us,
            lip,
            has_lip,
            env: f.audio.envelope,
            level_db: f.audio.level_db,
            has_audio: f.audio.present,
        });
        // Keep enough history for the longest window plus the lag search (bounded by count too).
        let horizon = 12_000_000 + (self.cfg.max_offset_ms as i64) * 1000;
        while self.history.len() > 2048 || self.history.front().is_some_and(|s| f.pts_us - s.pts_us > horizon) {
            self.history.pop_front();
        }
    }

    fn assess(&mut self, window: Window) -> Signal {
        self.last = self.estimate(window);
        match self.last {
            // The classical estimator measures an offset; turning it into p(fake) is the temporal head's job.
            Some(e) => Signal::new(None, e.confidence).with_av_offset_ms(Some(e.offset_ms)),
            None => Signal::new(None, 0.0),
        }
    }

    fn reset(&mut self) {
        self.history.clear();
        self.total_curve.clear();
        self.total_windows = 0;
        self.last = None;
        self.recent.clear();
    }
}
