//! Inference layer: one ONNX Runtime environment per process, model files checked against the manifest at
//! load, and one typed wrapper per model role. Sessions take `&mut self` to run: each worker thread owns its
//! own [`Models`].

pub mod calibration;
mod error;
pub mod manifest;
mod models;
mod runtime;

pub use error::InferenceError;
pub use manifest::{HeadParams, Manifest, ModelEntry, Preprocessing, TensorSpec};
pub use models::{Backbone, FaceDetector, FaceLandmarker, HeadOutput, Models, RawDetections, TemporalHead};
pub use runtime::{environment, runtime_library_path};
