//! Start-up refuses broken model set-ups with a message that names the file and the fix: an altered byte, a
//! missing file, a manifest whose shapes do not match the graph, a malformed manifest, a missing runtime.

mod common;

use std::path::{Path, PathBuf};

use common::{guard, path_str, root, tempdir};

/// Copy the shipped manifest and the files it names into `dir`; returns the new manifest path.
fn copy_model_set(dir: &Path) -> PathBuf {
    let src = root().join("models");
    let text = std::fs::read_to_string(src.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    for entry in manifest["models"].as_object().unwrap().values() {
        let file = entry["file"].as_str().unwrap();
        std::fs::copy(src.join(file), dir.join(file)).unwrap();
    }
    let out = dir.join("manifest.json");
    std::fs::write(&out, text).unwrap();
    out
}

fn edit_manifest(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn refuses(args: &[&str], must_contain: &[&str]) {
    let (ok, _, stderr) = guard(args);
    assert!(!ok, "{args:?} should refuse to start");
    for s in must_contain {
        assert!(stderr.contains(s), "message should contain {s:?}: {stderr}");
    }
}

#[test]
fn the_shipped_set_passes_the_check() {
    let (ok, stdout, stderr) = guard(&["check"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backbone embedding: 1280 values"), "{stdout}");
}

/// The file a role of the shipped manifest names.
fn shipped_file(role: &str) -> String {
    let text = std::fs::read_to_string(root().join("models/manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["models"][role]["file"].as_str().unwrap().to_string()
}

#[test]
fn one_altered_byte_refuses_start_up_naming_the_file() {
    let dir = tempdir();
    let manifest = copy_model_set(dir.path());
    let landmarks = shipped_file("face_landmarks");
    let target = dir.path().join(&landmarks);
    let mut bytes = std::fs::read(&target).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&target, bytes).unwrap();
    // Both the check and a scan refuse, before any media is touched.
    refuses(&["check", "--models", path_str(&manifest)], &[landmarks.as_str(), "sha256", "git checkout -- models/"]);
    refuses(&["scan", "--models", path_str(&manifest), "no-such-clip.mp4"], &[landmarks.as_str(), "sha256"]);
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempdir();
    let manifest = copy_model_set(dir.path());
    std::fs::remove_file(dir.path().join("blazeface_front_128.onnx")).unwrap();
    refuses(&["check", "--models", path_str(&manifest)], &["blazeface_front_128.onnx", "missing"]);
}

#[test]
fn a_shape_that_differs_from_the_graph_is_named() {
    let dir = tempdir();
    let manifest = copy_model_set(dir.path());
    // The manifest (and its checksum) are fine for the file, but it promises another output shape.
    edit_manifest(&manifest, |v| {
        v["models"]["backbone"]["outputs"][0]["shape"] = serde_json::json!([-1, 1000]);
    });
    refuses(
        &["check", "--models", path_str(&manifest)],
        &["efficientnet_lite0_imagenet_int8.onnx", "shape", "[-1, 1000]"],
    );
}

#[test]
fn a_wrong_input_name_is_named() {
    let dir = tempdir();
    let manifest = copy_model_set(dir.path());
    edit_manifest(&manifest, |v| {
        v["models"]["face_detector"]["inputs"][0]["name"] = serde_json::json!("image");
    });
    refuses(&["check", "--models", path_str(&manifest)], &["blazeface_front_128.onnx", "`image`", "input:0"]);
}

#[test]
fn a_malformed_manifest_is_named() {
    let dir = tempdir();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, "{ \"schema\": 1, \"models\": ").unwrap();
    refuses(&["check", "--models", path_str(&manifest)], &["manifest.json", "malformed"]);
    refuses(&["check", "--models", "/nonexistent/manifest.json"], &["/nonexistent/manifest.json"]);
}

#[test]
fn a_missing_runtime_library_names_the_path_and_the_fix() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deepfake-guard"))
        .arg("check")
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/libonnxruntime.so") && stderr.contains("scripts/setup.sh"), "{stderr}");
}
