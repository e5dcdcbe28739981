//! The analysis core, sans-IO: decoded frames and audio in (with media timestamps), window reports out.
//!
//! Per participant ([`participant::Analyzer`]):
//! face detection ([`face`], BlazeFace, re-run every few frames) -> tracking by landmarks -> aligned crop
//! ([`crop`], sampled from I420) -> FaceMesh landmarks -> lip features -> backbone embedding; audio features on
//! the frame clock ([`audio`]); all of it handed to detectors through the plugin API's
//! [`Detector`](deepfake_guard_plugin_api::Detector) trait, the built-in one being the classical lip-sync
//! offset estimate ([`lipsync`]).

pub mod audio;
pub mod crop;
pub mod face;
pub mod frame;
pub mod lipsync;
pub mod participant;
pub mod temporal;
pub mod verdict;

pub use participant::{
    AnalysisError, Analyzer, AnalyzerConfig, FeatureRow, FrameReport, Output, Stage, StageTimes, Summary, WindowReport,
};
pub use verdict::{Verdict, VerdictConfig, VerdictMachine};
