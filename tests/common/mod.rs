//! Helpers shared by the integration tests: locating the repository, loading the shipped models,
//! generating talking-head clips with the project's generator, and running the `deepfake-guard` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use deepfake_guard::inference::{Manifest, Models};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn manifest() -> Manifest {
    Manifest::load(&root().join("models/manifest.json")).expect("shipped manifest loads (run scripts/setup.sh)")
}

pub fn models() -> Models {
    Models::load(&manifest()).expect("shipped models load (run scripts/setup.sh)")
}

/// A face photo fetched by `scripts/fetch_faces.sh` (part of `scripts/setup.sh`).
pub fn face_photo(id: &str) -> PathBuf {
    let p = root().join(".cache/faces").join(format!("{id}.png"));
    assert!(p.exists(), "{} is missing: run `bash scripts/setup.sh`", p.display());
    p
}

/// Run the talking-head generator (`scripts/talkgen.py`) with `args`; panics with its stderr on failure.
pub fn talkgen(args: &[&str]) {
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `bash scripts/setup.sh`", python.display());
    let out = Command::new(python).arg(root().join("scripts/talkgen.py")).args(args).output().expect("talkgen runs");
    assert!(out.status.success(), "talkgen {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Run `deepfake-guard` with `args`; returns (exit success, stdout, stderr).
pub fn guard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_deepfake-guard")).args(args).output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `scan --json` output: the window lines and the summary line.
pub fn scan_json(args: &[&str]) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut full = vec!["scan", "--json"];
    full.extend_from_slice(args);
    let (ok, stdout, stderr) = guard(&full);
    assert!(ok, "scan {args:?} failed: {stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    let (summary, windows) = lines.split_last().expect("at least a summary line");
    assert_eq!(summary["type"], "summary", "last line is the summary");
    assert!(windows.iter().all(|w| w["type"] == "window"));
    (windows.to_vec(), summary.clone())
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
