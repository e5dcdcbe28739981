//! Audio features on the video frame clock.
//!
//! 16 kHz mono samples are cut into 25 ms Hann windows every 10 ms; each hop yields log-mel energies, a
//! speech-band loudness envelope and spectral-flux onset strength. A video frame then takes the mean of the
//! hops whose centres fall inside its own interval, so audio and video features share one clock. The temporal
//! head's window takes its audio columns the same way on its own 40 ms grid, whatever the video's frame rate.

use std::collections::VecDeque;
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex, num_complex::Complex};

use super::frame::{AUDIO_RATE, AudioChunk};

pub const MEL_BANDS: usize = 24;
const WIN: usize = 400; // 25 ms
const HOP: usize = 160; // 10 ms
const FFT: usize = 512;
const HOP_US: i64 = 10_000;
/// How much hop history is kept (media time): a window (3.2 s) behind video that audio may lead by up to
/// the analyser's audio wait (1 s), with room to spare; the head's audio columns are taken from it on the
/// grid's own times.
const KEEP_US: i64 = 6_000_000;

/// Audio features of one video frame (owned copy of [`deepfake_guard_plugin_api::AudioFeatures`]).
#[derive(Clone, Copy, Debug)]
pub struct AudioFrame {
    pub present: bool,
    pub level_db: f32,
    pub envelope: f32,
    pub onset: f32,
    pub log_mel: [f32; MEL_BANDS],
}

impl AudioFrame {
    pub const ABSENT: AudioFrame =
        AudioFrame { present: false, level_db: -100.0, envelope: 0.0, onset: 0.0, log_mel: [0.0; MEL_BANDS] };
}

#[derive(Clone, Copy)]
struct Hop {
    centre_us: i64,
    power: f32,
    envelope: f32,
    onset: f32,
    log_mel: [f32; MEL_BANDS],
}

/// Turns timestamped audio chunks into per-hop features and answers per-frame queries.
pub struct AudioFeaturizer {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Triangular mel filters: (first bin, weights).
    filters: Vec<(usize, Vec<f32>)>,
    speech_bins: (usize, usize),
    /// Media time of sample 0 of the stream.
    t0_us: Option<i64>,
    /// Samples not yet consumed by a full window; `pending_start` is the stream index of `pending[0]`.
    pending: Vec<f32>,
    pending_start: i64,
    hops: VecDeque<Hop>,
    prev_log_mel: [f32; MEL_BANDS],
    scratch_in: Vec<f32>,
    scratch_out: Vec<Complex<f32>>,
    scratch_fft: Vec<Complex<f32>>,
    power: Vec<f32>,
    /// Samples received in total, and samples inserted as silence to fill timestamp gaps.
    pub samples_in: u64,
    pub gap_samples: u64,
}

fn hz_to_mel(f: f32) -> f32 {
    2595.0 * (1.0 + f / 700.0).log10()
}
fn mel_to_hz(m: f32) -> f32 {
    700.0 * (10f32.powf(m / 2595.0) - 1.0)
}

impl Default for AudioFeaturizer {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioFeaturizer {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT);
        let window = (0..WIN).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / WIN as f32).cos()).collect();
        let bin_hz = AUDIO_RATE as f32 / FFT as f32;
        let (lo, hi) = (hz_to_mel(60.0), hz_to_mel(7600.0));
        let edges: Vec<f32> = (0..MEL_BANDS + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f32 / (MEL_BANDS + 1) as f32) / bin_hz)
            .collect();
        let filters = (0..MEL_BANDS)
            .map(|b| {
                let (l, c, r) = (edges[b], edges[b + 1], edges[b + 2]);
                let first = l.floor() as usize;
                let last = r.ceil() as usize;
                let w = (first..=last)
                    .map(|k| {
                        let k = k as f32;
                        if k <= c { ((k - l) / (c - l)).max(0.0) } else { ((r - k) / (r - c)).max(0.0) }
                    })
                    .collect();
                (first, w)
            })
            .collect();
        let speech_bins = ((300.0 / bin_hz) as usize, (3400.0 / bin_hz) as usize);
        Self {
            scratch_in: fft.make_input_vec(),
            scratch_out: fft.make_output_vec(),
            scratch_fft: fft.make_scratch_vec(),
            fft,
            window,
            filters,
            speech_bins,
            t0_us: None,
            pending: Vec::with_capacity(4 * WIN),
            pending_start: 0,
            hops: VecDeque::with_capacity((KEEP_US / HOP_US) as usize + 8),
            prev_log_mel: [0.0; MEL_BANDS],
            power: vec![0.0; FFT / 2 + 1],
            samples_in: 0,
            gap_samples: 0,
        }
    }

    /// Media time up to which audio has been turned into features (the end of the last full hop), if any.
    pub fn covered_until_us(&self) -> Option<i64> {
        self.hops.back().map(|h| h.centre_us + HOP_US / 2)
    }

    /// True once any audio arrived.
    pub fn started(&self) -> bool {
        self.t0_us.is_some()
    }

    fn index_to_us(&self, index: i64) -> i64 {
        self.t0_us.unwrap_or(0) + index * 1_000_000 / AUDIO_RATE as i64
    }

    /// Feed a chunk. Small timestamp jitter is ignored (samples are assumed contiguous); a gap of more than
    /// 20 ms is filled with silence; audio that overlaps what was already received is dropped.
    pub fn push(&mut self, chunk: AudioChunk<'_>) {
        let t0 = *self.t0_us.get_or_insert(chunk.pts_us);
        let expected = self.pending_start + self.pending.len() as i64;
        let at = (chunk.pts_us - t0) * AUDIO_RATE as i64 / 1_000_000;
        let tolerance = (AUDIO_RATE / 50) as i64;
        let mut samples = chunk.samples;
        if at > expected + tolerance {
            let gap = (at - expected) as usize;
            self.gap_samples += gap as u64;
            self.pending.resize(self.pending.len() + gap, 0.0);
            self.drain();
        } else if at + (samples.len() as i64) <= expected - tolerance {
            return; // entirely old
        } else if at < expected - tolerance {
            // Overlaps what was received: keep only the new part (none, if it ends within the tolerance).
            samples = &samples[((expected - at) as usize).min(samples.len())..];
        }
        self.samples_in += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        self.drain();
    }

    fn drain(&mut self) {
        let mut off = 0;
        while self.pending.len() - off >= WIN {
            self.hop(off);
            off += HOP;
        }
        if off > 0 {
            self.pending.drain(..off);
            self.pending_start += off as i64;
        }
    }

    fn hop(&mut self, off: usize) {
        let frame = &self.pending[off..off + WIN];
        let mut sumsq = 0.0f32;
        for (i, (x, w)) in frame.iter().zip(&self.window).enumerate() {
            self.scratch_in[i] = x * w;
            sumsq += x * x;
        }
        self.scratch_in[WIN..].iter_mut().for_each(|v| *v = 0.0);
        // Lengths are fixed by the plan, so processing cannot fail.
        let _ = self.fft.process_with_scratch(&mut self.scratch_in, &mut self.scratch_out, &mut self.scratch_fft);
        for (p, c) in self.power.iter_mut().zip(&self.scratch_out) {
            *p = c.norm_sqr() / (WIN as f32);
        }
        let mut log_mel = [0.0f32; MEL_BANDS];
        let mut onset = 0.0;
        for (b, (first, w)) in self.filters.iter().enumerate() {
            let e: f32 = w.iter().zip(&self.power[*first..]).map(|(a, p)| a * p).sum();
            log_mel[b] = (e + 1e-8).ln();
            onset += (log_mel[b] - self.prev_log_mel[b]).max(0.0);
        }
        let speech: f32 = self.power[self.speech_bins.0..self.speech_bins.1].iter().sum();
        let index = self.pending_start + off as i64 + (WIN / 2) as i64;
        let hop = Hop {
            centre_us: self.index_to_us(index),
            power: sumsq / WIN as f32,
            envelope: speech.sqrt(),
            onset: if self.hops.is_empty() { 0.0 } else { onset / MEL_BANDS as f32 },
            log_mel,
        };
        self.prev_log_mel = log_mel;
        if let Some(front) = self.hops.front()
            && hop.centre_us - front.centre_us > KEEP_US
        {
            self.hops.pop_front();
        }
        self.hops.push_back(hop);
    }

    /// Features of the frame interval `[t - d/2, t + d/2)`. `None` while audio does not yet reach the end of
    /// the interval; absent when the interval lies before the audio started or in no hop.
    pub fn frame_features(&self, t_us: i64, frame_us: i64) -> Option<AudioFrame> {
        let (start, end) = (t_us - frame_us / 2, t_us + frame_us - frame_us / 2);
        let covered = self.covered_until_us()?;
        if covered < end {
            return None;
        }
        let (mut n, mut power, mut env, mut onset, mut mel) = (0u32, 0.0f32, 0.0f32, 0.0f32, [0.0f32; MEL_BANDS]);
        // Hops are in time order.
        let first = self.hops.partition_point(|h| h.centre_us < start);
        for h in self.hops.range(first..).take_while(|h| h.centre_us < end) {
            n += 1;
            power += h.power;
            env += h.envelope;
            onset += h.onset;
            mel.iter_mut().zip(&h.log_mel).for_each(|(m, v)| *m += v);
        }
        if n == 0 {
            return Some(AudioFrame::ABSENT);
        }
        let k = 1.0 / n as f32;
        mel.iter_mut().for_each(|m| *m *= k);
        Some(AudioFrame {
            present: true,
            level_db: (10.0 * (power * k + 1e-10).log10()).max(-100.0),
            envelope: env * k,
            onset: onset * k,
            log_mel: mel,
        })
    }
}
