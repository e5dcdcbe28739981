//! The backbone is a manifest entry, not a constant: true EfficientNet-B0 (torchvision architecture, random
//! weights: no download) exported by the provided script replaces Lite0, and `scan` runs through it.

mod common;

use common::{guard, path_str, root, scan_json, talkgen, tempdir};

#[test]
fn scan_runs_through_an_exported_efficientnet_b0() {
    let dir = tempdir();
    let onnx = dir.path().join("efficientnet_b0.onnx");
    let manifest = dir.path().join("manifest.b0.json");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(root().join("scripts/export_efficientnet_b0.py"))
        .args(["--random-init", "--out", path_str(&onnx), "--manifest-out", path_str(&manifest)])
        .output()
        .expect("python3 runs (Debian python3-torch, installed by scripts/setup.sh)");
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));

    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert!(m["models"]["backbone"]["file"].as_str().unwrap().ends_with("efficientnet_b0.onnx"), "{m}");

    let (ok, stdout, stderr) = guard(&["check", "--models", path_str(&manifest)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("efficientnet_b0.onnx"), "{stdout}");

    let clip = dir.path().join("clip.mp4");
    talkgen(&["--face", "astronaut", "--seconds", "4", "--seed", "5", "--out", path_str(&clip), "--quiet"]);
    let (ok, stdout, stderr) = guard(&["scan", "--models", path_str(&manifest), path_str(&clip)]);
    assert!(ok, "{stderr}");
    assert!(stdout.lines().next().unwrap().contains("backbone efficientnet_b0.onnx"), "{stdout}");
    let (_, summary) = scan_json(&["--models", path_str(&manifest), path_str(&clip)]);
    assert_eq!(summary["analysed_frames"], 100, "{summary}");
    assert!(summary["face_ratio"].as_f64().unwrap() > 0.95, "{summary}");
}
