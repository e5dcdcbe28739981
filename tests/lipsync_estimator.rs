//! The classical lip-sync estimator on synthetic feature streams (no models): it finds a known lag with the
//! right sign, and declines to guess without speech or without mouth motion.

use deepfake_guard::analysis::lipsync::{LipSync, LipSyncConfig};
use deepfake_guard_plugin_api::{AudioFeatures, Detector, FaceFeatures, FrameFeatures, Window};

const FRAME_US: i64 = 40_000;

/// A speech-like envelope: syllables of random length and loudness separated by short gaps (deterministic).
fn envelope(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 1000) as f32 / 1000.0
    };
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let len = 3 + (rnd() * 6.0) as usize;
        let amp = 0.3 + rnd();
        for i in 0..len {
            v.push(amp * (std::f32::consts::PI * (i as f32 + 0.5) / len as f32).sin());
        }
        let gap = 1 + (rnd() * 3.0) as usize;
        v.resize(v.len() + gap, 0.0);
    }
    v.truncate(n);
    v
}

/// Feed `n` frames where the mouth follows `env` and the audio is `env` delayed by `lag` frames.
fn run(lag: isize, lips_move: bool, speech: bool) -> LipSync {
    feed(7, |e| if lips_move { 0.05 + 0.3 * e } else { 0.05 }, lag, speech)
}

/// Feed 400 frames of a speech-like envelope (`seed`): the mouth opening is `mouth(envelope)` and the audio is
/// the envelope delayed by `lag` frames (silent without `speech`); a window every 1.6 s.
fn feed(seed: u64, mouth: impl Fn(f32) -> f32, lag: isize, speech: bool) -> LipSync {
    let n = 400;
    let env = envelope(n + 64, seed);
    let mut sync = LipSync::new(LipSyncConfig::default());
    let landmarks = [[0.0f32; 3]; 468];
    for i in 0..n {
        let a = if speech { env[(i as isize + 32 - lag) as usize] } else { 0.0 };
        let level = if a > 0.01 { 20.0 * a.log10() } else { -60.0 };
        let mel = [0.0f32; 24];
        let face = FaceFeatures::new([0.0; 4], 1.0, 60.0, &landmarks, mouth(env[i + 32]), 0.5, 0.0, None);
        let audio = AudioFeatures::new(true, level, a, 0.0, &mel);
        sync.observe(&FrameFeatures::new(i as i64 * FRAME_US, 1, Some(face), audio));
        let t = (i as i64 + 1) * FRAME_US;
        if t % 1_600_000 == 0 && t >= 3_200_000 {
            sync.assess(Window { start_us: t - 3_200_000, end_us: t });
        }
    }
    sync
}

#[test]
fn finds_audio_that_comes_late() {
    let est = run(5, true, true).overall().expect("an estimate");
    assert!((est.offset_ms - 200.0).abs() < 20.0, "offset {est:?}");
    assert!(est.confidence > 0.3, "{est:?}");
}

#[test]
fn finds_audio_that_comes_early() {
    let est = run(-7, true, true).overall().expect("an estimate");
    assert!((est.offset_ms + 280.0).abs() < 20.0, "offset {est:?}");
}

#[test]
fn in_sync_is_zero() {
    let s = run(0, true, true);
    let est = s.overall().expect("an estimate");
    assert!(est.offset_ms.abs() < 20.0, "offset {est:?}");
    assert!(s.last().is_some_and(|w| w.offset_ms.abs() < 20.0));
}

#[test]
fn no_estimate_without_speech_or_without_mouth_motion() {
    assert!(run(0, true, false).overall().is_none(), "silence must not give an offset");
    assert!(run(0, false, true).overall().is_none(), "a still mouth must not give an offset");
}

/// The mouth *closes* as the voice gets loud (a mouth measurement that does not follow the face), in sync.
fn run_inverted() -> LipSync {
    feed(11, |e| 0.4 - 0.3 * e, 0, true)
}

#[test]
fn a_drift_is_a_distinct_peak_and_the_recent_curve_agrees() {
    let mut s = run(7, true, true);
    let e = s.last().expect("an estimate");
    assert!(e.distinct() && e.margin > 0.2, "{e:?}");
    let (r, span_us) = s.recent().expect("a recent estimate");
    assert!(r.distinct() && (r.offset_ms - e.offset_ms).abs() <= 40.0, "{r:?} vs {e:?}");
    // The recent curve spans the last 8 s of windows (3.2 s each, 1.6 s apart): 9.6 s of media.
    assert_eq!(span_us, 9_600_000);
}

#[test]
fn in_sync_is_not_a_distinct_offset() {
    let mut s = run(0, true, true);
    assert!(!s.last().unwrap().distinct());
    assert!(s.recent().unwrap().0.in_sync_min > 0.3);
}

#[test]
fn lips_that_run_against_the_sound_are_not_evidence_of_an_offset() {
    // Whatever peak the curve has elsewhere, the strong negative correlation at zero lag outweighs it and the
    // in-sync lags are anti-correlated: the alert rule must not take such a peak as drift.
    let mut s = run_inverted();
    let e = s.last().expect("an estimate");
    assert!(!e.distinct(), "{e:?}");
    let (r, _) = s.recent().unwrap();
    assert!(r.in_sync_min < -0.5, "{r:?}");
}

#[test]
fn a_peak_on_the_edge_of_the_searched_lags_is_not_interior() {
    // Audio 21 frames (840 ms) late: just beyond the 800 ms searched, the curve's highest point is its edge,
    // a curve still rising, not a measured offset.
    let e = run(21, true, true).last().expect("an estimate");
    assert!((e.offset_ms - 800.0).abs() < 1.0 && !e.interior && !e.distinct(), "{e:?}");
}
