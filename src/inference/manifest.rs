//! The model manifest (`models/manifest.json`): which file plays which role, its sha256, its interface and
//! its preprocessing. The engine trusts nothing about a model file that the manifest does not state and the
//! loader has not checked.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::InferenceError;

/// One input or output tensor of a model. `-1` in `shape` is a dynamic dimension.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    pub shape: Vec<i64>,
    #[serde(default = "float32")]
    pub dtype: String,
}

fn float32() -> String {
    "float32".into()
}

/// How to turn pixels into the model's input: `x = (pixel / 255 - mean) / std`, resized to `size` x `size`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Preprocessing {
    pub size: u32,
    /// `NCHW` or `NHWC`.
    pub layout: String,
    #[serde(default = "rgb")]
    pub color: String,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

fn rgb() -> String {
    "RGB".into()
}

impl Preprocessing {
    /// True for channel-first layout.
    pub fn nchw(&self) -> bool {
        self.layout.eq_ignore_ascii_case("NCHW")
    }
}

/// One model of the manifest.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelEntry {
    /// File path, relative to the manifest's folder (or absolute).
    pub file: PathBuf,
    pub sha256: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub preprocessing: Option<Preprocessing>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub source: Option<serde_json::Value>,
    #[serde(default)]
    pub card: Option<PathBuf>,
    /// Settings of the temporal head (role `temporal_head` only).
    #[serde(default)]
    pub head: Option<HeadParams>,
}

/// What a temporal head was trained for, and its operating point.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadParams {
    /// Feature-row layout the head was trained on (see `analysis::temporal`).
    pub feature_version: u32,
    /// Grid step of its input, milliseconds.
    pub grid_ms: u32,
    /// Window score at or above which a window counts towards an alert.
    pub threshold: f32,
    /// Window score at or above which a participant is `suspicious`.
    pub suspicious: f32,
    /// Window score below which a window counts towards clearing an alert.
    pub clear: f32,
    /// sha256 of the backbone whose embeddings it was trained on.
    #[serde(default)]
    pub backbone_sha256: Option<String>,
    /// How the head reads the raw embedding: `raw`, `centred` or `none` (only its frame-to-frame change,
    /// which any backbone gives alike).
    #[serde(default)]
    pub embedding: Option<String>,
}

impl ModelEntry {
    /// The output with the given role.
    pub fn output(&self, role: &str) -> Option<&TensorSpec> {
        self.outputs.iter().find(|o| o.role.as_deref() == Some(role))
    }
}

#[derive(Debug, Deserialize)]
struct ManifestFile {
    schema: u32,
    models: BTreeMap<String, ModelEntry>,
}

/// A parsed manifest with its location (model paths are resolved against it).
#[derive(Clone, Debug)]
pub struct Manifest {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub models: BTreeMap<String, ModelEntry>,
    /// The user's calibration applied to the temporal head's thresholds, if any ([`super::calibration`]).
    pub calibration: Option<super::calibration::Applied>,
}

impl Manifest {
    /// The manifest shipped with the project: `DEEPFAKE_GUARD_MODELS` if set, else `models/manifest.json` of
    /// the repository that built this binary, else `models/manifest.json` under the current directory.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("DEEPFAKE_GUARD_MODELS") {
            return PathBuf::from(p);
        }
        let built = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models/manifest.json"));
        if built.exists() {
            return built;
        }
        PathBuf::from("models/manifest.json")
    }

    /// Read and parse a manifest, with the user's calibration applied to the temporal head's thresholds when
    /// one was made for this head (`calibration.json` beside the manifest, or `$DEEPFAKE_GUARD_CALIBRATION`;
    /// see [`super::calibration`]).
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        Self::load_with(path, &super::calibration::Source::Auto)
    }

    /// Read and parse a manifest with its thresholds exactly as it states them (no calibration).
    pub fn load_uncalibrated(path: &Path) -> Result<Self, InferenceError> {
        Self::load_with(path, &super::calibration::Source::Off)
    }

    /// Read and parse a manifest, then apply the calibration `calibration` points to (if it fits the head).
    pub fn load_with(path: &Path, calibration: &super::calibration::Source) -> Result<Self, InferenceError> {
        let mut manifest = Self::parse(path)?;
        manifest.calibration = super::calibration::apply(&mut manifest, calibration);
        Ok(manifest)
    }

    fn parse(path: &Path) -> Result<Self, InferenceError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| InferenceError::ManifestRead { path: path.to_path_buf(), source })?;
        let file: ManifestFile = serde_json::from_str(&text)
            .map_err(|source| InferenceError::ManifestParse { path: path.to_path_buf(), source })?;
        if file.schema != 1 {
            let source = <serde_json::Error as serde::de::Error>::custom(format!(
                "unsupported manifest schema {} (this build reads schema 1)",
                file.schema
            ));
            return Err(InferenceError::ManifestParse { path: path.to_path_buf(), source });
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Self { path: path.to_path_buf(), dir, models: file.models, calibration: None })
    }

    /// The entry for `role`, or an error naming the manifest.
    pub fn entry(&self, role: &str) -> Result<&ModelEntry, InferenceError> {
        self.models
            .get(role)
            .ok_or_else(|| InferenceError::MissingRole { manifest: self.path.clone(), role: role.into() })
    }

    /// Absolute-or-relative path of an entry's file.
    pub fn file_path(&self, entry: &ModelEntry) -> PathBuf {
        if entry.file.is_absolute() { entry.file.clone() } else { self.dir.join(&entry.file) }
    }

    /// Read the model file of `role` and check its sha256 against the manifest.
    pub fn read_verified(&self, role: &str) -> Result<(PathBuf, Vec<u8>), InferenceError> {
        let entry = self.entry(role)?;
        let file = self.file_path(entry);
        if !file.exists() {
            return Err(InferenceError::ModelFileMissing { role: role.into(), file });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&file)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| InferenceError::ModelRead { file: file.clone(), source })?;
        let actual = hex(&Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(entry.sha256.trim()) {
            return Err(InferenceError::ChecksumMismatch { file, expected: entry.sha256.clone(), actual });
        }
        Ok((file, bytes))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
