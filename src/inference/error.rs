use std::path::PathBuf;

/// Everything that can go wrong between the model files on disk and an inference result.
/// Each message names the file involved and the fix.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The ONNX Runtime shared library is not where we look for it.
    #[error(
        "ONNX Runtime library not found at {path}: run `bash scripts/setup.sh` (it fetches it from the PyPI \
         onnxruntime wheel into .ort/), or set ORT_DYLIB_PATH to a libonnxruntime.so >= 1.24"
    )]
    RuntimeMissing { path: PathBuf },
    /// The library exists but could not be loaded or initialised.
    #[error("could not load ONNX Runtime from {path}: {reason}; run `bash scripts/setup.sh` to reinstall it")]
    RuntimeLoad { path: PathBuf, reason: String },
    /// The manifest file could not be read.
    #[error("cannot read model manifest {path}: {source}; pass --models PATH or restore models/manifest.json")]
    ManifestRead { path: PathBuf, source: std::io::Error },
    /// The manifest is not valid JSON of the expected form.
    #[error("model manifest {path} is malformed: {source}")]
    ManifestParse { path: PathBuf, source: serde_json::Error },
    /// The manifest lacks a role the engine needs.
    #[error("model manifest {manifest} has no `{role}` entry under \"models\"")]
    MissingRole { manifest: PathBuf, role: String },
    /// A model file named by the manifest does not exist.
    #[error(
        "model file {file} (role `{role}`) is missing: restore it with `git checkout -- models/` or rebuild the \
         set with `bash scripts/obtain_models.sh`"
    )]
    ModelFileMissing { role: String, file: PathBuf },
    /// A model file could not be read.
    #[error("cannot read model file {file}: {source}")]
    ModelRead { file: PathBuf, source: std::io::Error },
    /// The file's sha256 differs from the manifest: altered, truncated or swapped without updating the manifest.
    #[error(
        "model file {file} does not match the manifest (sha256 {actual}, manifest says {expected}): the file was \
         altered or replaced; restore it with `git checkout -- models/`, or if you replaced it on purpose, put \
         its sha256 into its entry of the manifest"
    )]
    ChecksumMismatch { file: PathBuf, expected: String, actual: String },
    /// ONNX Runtime refused the file.
    #[error("ONNX Runtime cannot load model {file}: {reason}")]
    SessionCreate { file: PathBuf, reason: String },
    /// The graph's inputs or outputs differ from the manifest, or from what the engine needs.
    #[error("model {file} does not have the interface the manifest promises: {detail}")]
    Interface { file: PathBuf, detail: String },
    /// A run failed.
    #[error("inference with {file} failed: {reason}")]
    Run { file: PathBuf, reason: String },
}
