//! `scan` on media that is not a single talking face: no face, no audio, silence, two faces, a damaged file,
//! a file that is not media. Each is reported as such, never a crash.

mod common;

use std::process::Command;

use common::{guard, path_str, scan_json, talkgen, tempdir};

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-y", "-loglevel", "error"]).args(args).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn no_face_is_reported_as_such() {
    let dir = tempdir();
    let clip = dir.path().join("pattern.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:sample_rate=48000",
        "-t",
        "5",
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        path_str(&clip),
    ]);
    let (windows, summary) = scan_json(&[path_str(&clip)]);
    assert!(!windows.is_empty());
    for w in &windows {
        assert_eq!(w["face"], false, "{w}");
        assert_eq!(w["faces"], 0, "{w}");
        assert!(w["av_offset_ms"].is_null(), "no face, no offset: {w}");
    }
    assert_eq!(summary["face_ratio"], 0.0);
    assert!(summary["av_offset_ms"].is_null());
}

#[test]
fn no_audio_and_silence_give_no_offset() {
    let dir = tempdir();
    let talking = dir.path().join("talking.mp4");
    talkgen(&["--face", "astronaut", "--seconds", "5", "--seed", "21", "--out", path_str(&talking), "--quiet"]);

    let mute = dir.path().join("mute.mp4");
    ffmpeg(&["-i", path_str(&talking), "-an", "-c:v", "copy", path_str(&mute)]);
    let (windows, summary) = scan_json(&[path_str(&mute)]);
    assert!(
        windows.iter().all(|w| w["face"] == true && w["av_offset_ms"].is_null() && w["audio_ratio"] == 0.0),
        "{windows:?}"
    );
    assert!(summary["av_offset_ms"].is_null() && summary["audio_ratio"] == 0.0, "{summary}");

    let silent = dir.path().join("silent.mp4");
    ffmpeg(&[
        "-i",
        path_str(&talking),
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=mono",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-shortest",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        path_str(&silent),
    ]);
    let (_, summary) = scan_json(&[path_str(&silent)]);
    assert!(summary["av_offset_ms"].is_null(), "silence must not yield an offset: {summary}");
    assert!(summary["audio_ratio"].as_f64().unwrap() > 0.9, "{summary}");
}

#[test]
fn two_faces_are_counted() {
    let dir = tempdir();
    let (a, b, both) = (dir.path().join("a.mp4"), dir.path().join("b.mp4"), dir.path().join("both.mp4"));
    talkgen(&[
        "--face",
        "astronaut",
        "--seconds",
        "4",
        "--seed",
        "1",
        "--no-vary",
        "--width",
        "480",
        "--height",
        "480",
        "--out",
        path_str(&a),
        "--quiet",
    ]);
    talkgen(&[
        "--face",
        "luispedro",
        "--seconds",
        "4",
        "--seed",
        "2",
        "--no-vary",
        "--width",
        "480",
        "--height",
        "480",
        "--out",
        path_str(&b),
        "--quiet",
    ]);
    ffmpeg(&[
        "-i",
        path_str(&a),
        "-i",
        path_str(&b),
        "-filter_complex",
        "[0:v][1:v]hstack",
        "-map",
        "0:a",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        path_str(&both),
    ]);
    let (windows, summary) = scan_json(&[path_str(&both)]);
    assert!(windows.iter().all(|w| w["faces"] == 2 && w["face"] == true), "{windows:?}");
    assert!(summary["face_ratio"].as_f64().unwrap() > 0.95, "{summary}");
}

#[test]
fn a_damaged_file_is_scanned_as_far_as_it_decodes() {
    let dir = tempdir();
    let clip = dir.path().join("clip.mkv");
    talkgen(&["--face", "astronaut", "--seconds", "6", "--seed", "4", "--out", path_str(&clip), "--quiet"]);
    let mut bytes = std::fs::read(&clip).unwrap();
    // Scramble a stretch in the middle, then cut the tail off.
    let n = bytes.len();
    for (i, b) in bytes[n / 3..n / 3 + 3000].iter_mut().enumerate() {
        *b = b.wrapping_mul(31).wrapping_add(i as u8);
    }
    bytes.truncate(n * 3 / 4);
    let broken = dir.path().join("broken.mkv");
    std::fs::write(&broken, bytes).unwrap();
    let (ok, stdout, stderr) = guard(&["scan", "--json", path_str(&broken)]);
    assert!(ok, "a damaged file is scanned, not refused: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(summary["frames"].as_u64().unwrap() > 20, "{summary}");
}

#[test]
fn a_file_that_is_not_media_is_refused_by_name() {
    let dir = tempdir();
    let junk = dir.path().join("notes.mp4");
    std::fs::write(&junk, "this is not a video").unwrap();
    let (ok, _, stderr) = guard(&["scan", path_str(&junk)]);
    assert!(!ok);
    assert!(stderr.contains("notes.mp4") && !stderr.contains("panicked"), "{stderr}");
    let (ok, _, stderr) = guard(&["scan", "/nonexistent/clip.mp4"]);
    assert!(!ok && stderr.contains("/nonexistent/clip.mp4"), "{stderr}");
}
