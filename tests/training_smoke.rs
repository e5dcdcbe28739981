//! The training pipeline cannot rot: `models/training/reproduce.sh --smoke` renders tiny splits, exports the
//! features with this build, trains a few epochs, exports the ONNX head with its manifest entry, and evaluates
//! it through the Rust runtime. Everything is written under a temporary folder; the shipped model is not
//! touched. (A few minutes on 2 cores.)

mod common;

use common::{guard, path_str, root, tempdir};

#[test]
fn smoke_training_produces_a_head_the_runtime_loads_and_evaluates() {
    let dir = tempdir();
    let work = dir.path();
    let status = std::process::Command::new("bash")
        .arg(root().join("models/training/reproduce.sh"))
        .args(["--smoke", "--work", path_str(work), "--jobs", "2"])
        .status()
        .expect("reproduce.sh runs");
    assert!(status.success(), "reproduce.sh --smoke failed");
    let manifest = work.join("manifest.json");
    let head = work.join("temporal_head.onnx");
    assert!(head.is_file(), "no ONNX head written");
    // The runtime loads it with every check (sha256, names, shapes, feature layout).
    let (ok, stdout, stderr) = guard(&["check", "--models", path_str(&manifest)]);
    assert!(ok, "check failed: {stderr}");
    assert!(stdout.contains("temporal_head"), "{stdout}");
    // The figures the pipeline wrote come from the runtime and cover every held-out clip.
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("figures/heldout.json")).unwrap()).unwrap();
    assert_eq!(figures["clips"], 8, "{figures}");
    assert_eq!(figures["unscored_clips"], 0, "{figures}");
    assert!(figures["auc"].is_number(), "{figures}");
    let train: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("figures/train.json")).unwrap()).unwrap();
    assert_eq!(train["history"].as_array().unwrap().len(), 3);
    // The features the training read hold rows of the layout the runtime checks against.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("features/train/meta.json")).unwrap()).unwrap();
    assert_eq!(meta["dim"], 39 + 1280);
    // A head trained on another feature layout is refused with a message saying so.
    let text = std::fs::read_to_string(&manifest).unwrap().replace("\"feature_version\": 1", "\"feature_version\": 99");
    let bad = work.join("bad_manifest.json");
    std::fs::write(&bad, text).unwrap();
    let (ok, _, stderr) = guard(&["check", "--models", path_str(&bad)]);
    assert!(!ok && stderr.contains("feature set v99"), "{stderr}");
    // Thresholds out of order are refused too.
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["models"]["temporal_head"]["head"]["suspicious"] = serde_json::json!(1.5);
    std::fs::write(&bad, m.to_string()).unwrap();
    let (ok, _, stderr) = guard(&["check", "--models", path_str(&bad)]);
    assert!(!ok && stderr.contains("head thresholds"), "{stderr}");
}

/// `dub_timing.py` measures what a dubbed clip shows a lip reader, from the generator itself: dubs with
/// other words (`text`, `both`) are out of step with the mouth by a syllable or more, while the same words
/// said by another voice (`voice`) keep the mouth's timing to within a video frame (the reason the model
/// card gives for the head's blind spot). It fails if the script, the generator's dubbing or the plan breaks.
#[test]
fn dub_timing_separates_other_words_from_another_voice() {
    let dir = tempdir();
    let out = dir.path().join("dubs.json");
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `bash scripts/setup.sh`", python.display());
    let run = std::process::Command::new(python)
        .arg(root().join("models/training/dub_timing.py"))
        .args(["--split", "train", "--count", "64", "--json", path_str(&out)])
        .output()
        .expect("dub_timing.py runs");
    assert!(run.status.success(), "dub_timing.py failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(rows.len(), 8, "64 clips of the plan hold 8 dubbed ones");
    let mut modes = std::collections::BTreeSet::new();
    for r in &rows {
        let mode = r["mode"].as_str().unwrap();
        let lag = r["lag_median_ms"].as_f64().unwrap();
        let over = r["share_over_frame"].as_f64().unwrap();
        let corr = r["corr_25fps"].as_f64().unwrap();
        modes.insert(mode.to_string());
        if mode == "voice" {
            assert!(lag <= 45.0 && corr > 0.5, "a voice dub keeps the mouth's timing: {r}");
        } else {
            assert!(lag >= 60.0 && over >= 0.6 && corr < 0.6, "other words are out of step: {r}");
        }
    }
    assert_eq!(modes.len(), 3, "all three modes in the first 64 clips: {modes:?}");
}
