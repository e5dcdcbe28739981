//! `deepfake-guard calibrate` on generated genuine clips: the calibration is written beside the manifest, its
//! thresholds never fall below the manifest's and keep the share of the clips' windows at or above the alert
//! threshold under the target, and `scan` applies it; a calibration made for another head, or one that cannot
//! be read, is ignored with a warning; files that cannot be analysed are reported, not a crash; too few windows
//! is an error that says how much more is needed.
//!
//! The manifest here is a copy of the shipped one (same models, so the same head sha256) with a very low
//! operating point, so that the genuine clips score above it and calibration has something to raise.

mod common;

use std::path::{Path, PathBuf};

use common::{guard, path_str, root, scan_json, talkgen, tempdir};
use serde_json::Value;

const SHIPPED: (f64, f64, f64) = (0.002, 0.001, 0.001);

/// The shipped manifest with absolute model paths and the head's thresholds set to `SHIPPED`, in `dir`.
fn manifest_in(dir: &Path) -> (PathBuf, String) {
    let text = std::fs::read_to_string(root().join("models/manifest.json")).unwrap();
    let mut m: Value = serde_json::from_str(&text).unwrap();
    for (_, entry) in m["models"].as_object_mut().unwrap() {
        let file = entry["file"].as_str().unwrap().to_string();
        entry["file"] = Value::from(path_str(&root().join("models").join(file)));
    }
    let head = &mut m["models"]["temporal_head"]["head"];
    head["threshold"] = SHIPPED.0.into();
    head["suspicious"] = SHIPPED.1.into();
    head["clear"] = SHIPPED.2.into();
    let sha = m["models"]["temporal_head"]["sha256"].as_str().unwrap().to_string();
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    (path, sha)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-4
}

#[test]
fn calibration_is_written_only_raises_and_is_applied_by_scan() {
    let dir = tempdir();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let (manifest, sha) = manifest_in(&models);
    let (a, b, bad) = (dir.path().join("a.mp4"), dir.path().join("b.mp4"), dir.path().join("bad.mp4"));
    talkgen(&["--face", "astronaut", "--seconds", "12", "--seed", "31", "--out", path_str(&a), "--quiet"]);
    talkgen(&["--face", "luispedro", "--seconds", "12", "--seed", "32", "--out", path_str(&b), "--quiet"]);
    std::fs::write(&bad, b"not media").unwrap();
    let calibration = models.join("calibration.json");
    let m = path_str(&manifest);

    // 1 % needs 100 windows; two 12 s clips give about 14: refused, with how much more is needed.
    let (ok, _, stderr) = guard(&["calibrate", "--models", m, "--jobs", "2", path_str(&a), path_str(&b)]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("too few windows") && stderr.contains("more minutes"), "{stderr}");
    assert!(!calibration.exists(), "nothing written on failure");

    // 10 %: enough. The file that is not media is reported and left out.
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "# genuine recordings\nb.mp4\nbad.mp4\n").unwrap();
    let (ok, stdout, stderr) = guard(&[
        "calibrate",
        "--models",
        m,
        "--target-window-fpr",
        "0.1",
        "--jobs",
        "2",
        path_str(&a),
        "--list",
        path_str(&list),
    ]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("bad.mp4: SKIPPED"), "{stderr}");
    assert!(stderr.contains("a.mp4:") && stderr.contains("b.mp4:"), "one progress line per recording: {stderr}");
    assert!(stdout.contains("threshold"), "{stdout}");
    let cal: Value = serde_json::from_str(&std::fs::read_to_string(&calibration).expect("calibration.json written"))
        .expect("calibration.json is JSON");
    assert_eq!(cal["version"], 1, "{cal}");
    assert_eq!(cal["head_sha256"], sha.as_str(), "{cal}");
    assert_eq!(cal["target_window_fpr"], 0.1, "{cal}");
    assert_eq!(cal["recordings_used"], 2, "{cal}");
    assert_eq!(cal["recordings_skipped"][0]["recording"], "bad.mp4", "{cal}");
    assert!(cal["windows"].as_u64().unwrap() >= 10, "{cal}");
    assert!(cal["minutes"].as_f64().unwrap() > 0.3, "{cal}");
    assert!(cal["created"].as_str().unwrap().ends_with('Z'), "{cal}");
    let t = &cal["thresholds"];
    let (threshold, suspicious, clear) =
        (t["threshold"].as_f64().unwrap(), t["suspicious"].as_f64().unwrap(), t["clear"].as_f64().unwrap());
    assert!(close(cal["shipped"]["threshold"].as_f64().unwrap(), SHIPPED.0), "{cal}");
    // Raised (the clips score above the low shipped operating point), never lowered, ordered.
    assert!(threshold > SHIPPED.0 && suspicious >= SHIPPED.1 && clear >= SHIPPED.2, "{cal}");
    assert!(clear <= suspicious && suspicious <= threshold && threshold <= 1.0, "{cal}");
    assert!(cal["achieved_window_fpr"].as_f64().unwrap() <= 0.1, "{cal}");
    assert!(cal["shipped_window_fpr"].as_f64().unwrap() > 0.1, "{cal}");
    assert!(cal["lipsync"]["windows_measured"].as_u64().is_some(), "{cal}");

    // scan applies it, says so, and judges with it; the share of windows at or above it is what calibrate said.
    let (ok, stdout, stderr) = guard(&["scan", "--json", "--models", m, path_str(&a)]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("calibration") && stderr.contains("applied"), "{stderr}");
    assert!(stderr.contains(path_str(&calibration)), "names the file: {stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(close(summary["threshold"].as_f64().unwrap(), threshold), "{summary} vs {threshold}");
    // --no-calibration: the manifest's own.
    let (_, summary) = scan_json(&["--models", m, "--no-calibration", path_str(&a)]);
    assert!(close(summary["threshold"].as_f64().unwrap(), SHIPPED.0), "{summary}");

    // A calibration made for another head is ignored, with a warning.
    let mut other = cal.clone();
    other["head_sha256"] = Value::from("0".repeat(64));
    std::fs::write(&calibration, serde_json::to_string(&other).unwrap()).unwrap();
    let (ok, stdout, stderr) = guard(&["scan", "--json", "--models", m, path_str(&a)]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("another temporal head") && stderr.contains("IGNORED"), "{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(close(summary["threshold"].as_f64().unwrap(), SHIPPED.0), "{summary}");

    // One that cannot be read: ignored with a warning, the scan still runs.
    std::fs::write(&calibration, "{ not json").unwrap();
    let (ok, stdout, stderr) = guard(&["scan", "--json", "--models", m, path_str(&a)]);
    assert!(ok && stderr.contains("cannot be used"), "{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(close(summary["threshold"].as_f64().unwrap(), SHIPPED.0), "{summary}");
}

#[test]
fn nothing_usable_is_an_error_not_a_crash() {
    let dir = tempdir();
    let (manifest, _) = manifest_in(dir.path());
    let bad = dir.path().join("bad.mp4");
    std::fs::write(&bad, b"not media").unwrap();
    let missing = dir.path().join("missing.mp4");
    let (ok, _, stderr) =
        guard(&["calibrate", "--models", path_str(&manifest), "--jobs", "1", path_str(&bad), path_str(&missing)]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("bad.mp4: SKIPPED") && stderr.contains("missing.mp4: SKIPPED"), "{stderr}");
    assert!(stderr.contains("none of the 2 recordings"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("calibration.json").exists());
    // No recordings at all, and a target out of range.
    let (ok, _, stderr) = guard(&["calibrate", "--models", path_str(&manifest)]);
    assert!(!ok && stderr.contains("no recordings given"), "{stderr}");
    let (ok, _, stderr) = guard(&["calibrate", "--target-window-fpr", "0.5", path_str(&bad)]);
    assert!(!ok && stderr.contains("0.0001..0.2"), "{stderr}");
}
