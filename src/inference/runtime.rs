//! The process-wide ONNX Runtime environment, loaded from a shared library (`ort`'s `load-dynamic`).

use std::path::PathBuf;
use std::sync::OnceLock;

use super::InferenceError;

static ENV: OnceLock<Result<ort::environment::Environment, (PathBuf, String)>> = OnceLock::new();

/// Where the ONNX Runtime library is looked for: `ORT_DYLIB_PATH` if set, else `.ort/libonnxruntime.so`
/// next to the executable's project (the repository that built it), else the same relative to the
/// current directory.
pub fn runtime_library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    let built = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.ort/libonnxruntime.so"));
    if built.exists() {
        return built;
    }
    PathBuf::from(".ort/libonnxruntime.so")
}

/// The one ONNX Runtime environment of this process, created on first use.
pub fn environment() -> Result<&'static ort::environment::Environment, InferenceError> {
    let result = ENV.get_or_init(|| {
        let path = runtime_library_path();
        if !path.exists() {
            return Err((path, String::new()));
        }
        // Checked above that the file exists: `ort` would otherwise panic while building its own error.
        let builder = ort::init_from(&path).map_err(|e| (path.clone(), e.to_string()))?;
        builder.with_name("deepfake-guard").build().map_err(|e| (path.clone(), e.to_string()))
    });
    match result {
        Ok(env) => Ok(env),
        Err((path, reason)) if reason.is_empty() => Err(InferenceError::RuntimeMissing { path: path.clone() }),
        Err((path, reason)) => Err(InferenceError::RuntimeLoad { path: path.clone(), reason: reason.clone() }),
    }
}
