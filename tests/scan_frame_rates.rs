//! Any frame rate is judged: a genuine clip and a +300 ms lip-sync fake, rendered at 25 fps and re-encoded the
//! way a slow webcam or a live face-swap tool delivers them (15 fps) and a fast one (30 fps), on the held-out
//! face. Every window is scored (none left out for missing frames), the genuine clip stays `genuine` with no
//! window in `alert`, the fake is `fake` with an alert that names both detectors, and `scan` counts no
//! window as unjudged.

mod common;

use std::process::Command;

use common::{path_str, scan_json, talkgen, tempdir};

/// Re-encode `src` at `fps` (frames dropped or repeated on media time, as ffmpeg's fps filter does).
fn reencode(src: &std::path::Path, fps: u32, dst: &std::path::Path) {
    let out = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i", path_str(src), "-vf", &format!("fps={fps}")])
        .args(["-c:v", "libx264", "-crf", "23", "-c:a", "copy", path_str(dst)])
        .output()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(out.status.success(), "ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn clip(dir: &std::path::Path, offset_ms: i32) -> std::path::PathBuf {
    let p = dir.join(format!("clip_{offset_ms}.mp4"));
    let offset = offset_ms.to_string();
    talkgen(&[
        "--face",
        "grace_hopper",
        "--seconds",
        "10",
        "--seed",
        "5",
        "--offset-ms",
        &offset,
        "--out",
        path_str(&p),
        "--quiet",
    ]);
    p
}

#[test]
fn genuine_and_lipsync_fake_are_judged_at_15_and_30_fps() {
    let dir = tempdir();
    let genuine = clip(dir.path(), 0);
    let late = clip(dir.path(), 300);
    for fps in [15, 30] {
        for (src, fake) in [(&genuine, false), (&late, true)] {
            let out = dir.path().join(format!("{}_{fps}.mp4", src.file_stem().unwrap().to_str().unwrap()));
            reencode(src, fps, &out);
            let (windows, summary) = scan_json(&[path_str(&out)]);
            let what = format!("{fps} fps, {}", if fake { "+300 ms" } else { "genuine" });
            assert!(windows.len() >= 4, "{what}: {summary}");
            assert!(
                windows.iter().all(|w| w["score"].is_number() && w["not_judged"].is_null()),
                "{what}: every window is judged: {windows:?}"
            );
            assert!(summary["no_verdict_reason"].is_null(), "{what}: {summary}");
            if fake {
                assert_eq!(summary["verdict"], "fake", "{what}: {summary}");
                let alert =
                    windows.iter().find(|w| w["state"] == "alert").unwrap_or_else(|| panic!("{what}: no alert"));
                assert_eq!(alert["evidence"], serde_json::json!(["temporal", "lipsync"]), "{what}: {alert}");
                let off = summary["av_offset_ms"].as_f64().unwrap();
                assert!((off - 300.0).abs() <= 60.0, "{what}: offset {off}");
            } else {
                assert_eq!(summary["verdict"], "genuine", "{what}: {summary}");
                assert!(windows.iter().all(|w| w["state"] != "alert"), "{what}: {windows:?}");
            }
        }
    }
}

#[test]
fn a_clip_too_short_to_judge_says_why() {
    let dir = tempdir();
    let p = dir.path().join("short.mp4");
    talkgen(&[
        "--face",
        "grace_hopper",
        "--seconds",
        "1.4",
        "--seed",
        "1",
        "--text",
        "Okay.",
        "--out",
        path_str(&p),
        "--quiet",
    ]);
    let (_, summary) = scan_json(&[path_str(&p)]);
    assert!(summary["verdict"].is_null(), "{summary}");
    let why = summary["no_verdict_reason"].as_str().unwrap_or_else(|| panic!("no reason: {summary}"));
    assert!(why.contains("shorter than half an analysis window"), "{why}");
    let (ok, text, _) = common::guard(&["scan", path_str(&p)]);
    assert!(ok);
    assert!(text.contains("verdict: none (the media is shorter"), "{text}");
    assert!(!text.contains("no temporal head"), "{text}");
}
