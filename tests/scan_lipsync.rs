//! `deepfake-guard scan --json` measures the audio/video offset of generated talking-head clips: audio
//! delayed by 200 ms, audio early by 200 ms, and in sync, each within 60 ms and of the right sign, on
//! different faces (one of them the held-out identity), voices and containers.

mod common;

use common::{path_str, scan_json, talkgen, tempdir};

/// Generate a clip and return the `scan --json` summary (and windows).
fn scan_generated(face: &str, offset_ms: i32, seed: u32, ext: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    let dir = tempdir();
    let clip = dir.path().join(format!("clip.{ext}"));
    let (offset, seed) = (offset_ms.to_string(), seed.to_string());
    talkgen(&[
        "--face",
        face,
        "--seconds",
        "8",
        "--seed",
        &seed,
        "--offset-ms",
        &offset,
        "--out",
        path_str(&clip),
        "--quiet",
    ]);
    scan_json(&[path_str(&clip)])
}

fn assert_offset(summary: &serde_json::Value, truth: f64) {
    let est = summary["av_offset_ms"].as_f64().unwrap_or_else(|| panic!("no offset in {summary}"));
    assert!((est - truth).abs() <= 60.0, "estimated {est} ms, truth {truth} ms: {summary}");
    if truth != 0.0 {
        assert_eq!(est.signum(), truth.signum(), "wrong sign: {summary}");
    }
    assert!(summary["sync_confidence"].as_f64().unwrap() > 0.2, "low confidence: {summary}");
}

#[test]
fn audio_late_by_200ms() {
    let (windows, summary) = scan_generated("astronaut", 200, 11, "mp4");
    assert_offset(&summary, 200.0);
    assert!(windows.len() >= 3, "one line per window: {windows:?}");
    for w in &windows {
        assert_eq!(w["face"], true, "{w}");
        assert_eq!(w["faces"], 1, "{w}");
        for key in ["start_ms", "end_ms", "mouth_open", "av_offset_ms", "sync_confidence"] {
            assert!(!w[key].is_null(), "{key} missing in {w}");
        }
    }
}

#[test]
fn audio_early_by_200ms() {
    let (_, summary) = scan_generated("luispedro", -200, 12, "webm");
    assert_offset(&summary, -200.0);
}

#[test]
fn in_sync_clip() {
    let (_, summary) = scan_generated("grace_hopper", 0, 13, "mp4");
    assert_offset(&summary, 0.0);
    assert_eq!(summary["frames"], 200);
    assert!(summary["face_ratio"].as_f64().unwrap() > 0.95, "{summary}");
}

#[test]
fn y4m_with_a_separate_wav() {
    let dir = tempdir();
    let (y4m, wav) = (dir.path().join("clip.y4m"), dir.path().join("clip.wav"));
    talkgen(&[
        "--face",
        "astronaut",
        "--seconds",
        "8",
        "--seed",
        "3",
        "--offset-ms",
        "300",
        "--y4m",
        path_str(&y4m),
        "--y4m-trim",
        "0",
        "--wav",
        path_str(&wav),
        "--quiet",
    ]);
    let (_, summary) = scan_json(&[path_str(&y4m), "--audio", path_str(&wav)]);
    assert_offset(&summary, 300.0);
}

/// Real clients capture audio a little early or late (tens of ms); that is not a lip-sync fake. The detector
/// treats a steady offset within 60 ms as the client's own; 200 ms stays a fake (tests above and the
/// detector's held-out test).
#[test]
fn natural_capture_offsets_are_genuine() {
    for (offset, seed) in [(40, 14), (-40, 15)] {
        let (_, summary) = scan_generated("grace_hopper", offset, seed, "webm");
        assert_eq!(summary["verdict"], "genuine", "audio {offset:+} ms: {summary}");
        assert_eq!(summary["alert_windows"], 0, "audio {offset:+} ms: {summary}");
    }
    let (_, summary) = scan_generated("grace_hopper", 200, 16, "webm");
    assert_eq!(summary["verdict"], "fake", "audio 200 ms late: {summary}");
}
