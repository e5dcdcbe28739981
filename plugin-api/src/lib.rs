//! # deepfake-guard plugin API (v1)
//!
//! The stable, dependency-light contract of deepfake-guard:
//!
//! - [`messages`]: the data-channel wire format (`hello`, `verdict`, `heartbeat`) that the guard sends to
//!   everyone in a call, with the bytes its Ed25519 signature covers. A JSON Schema for it ships in
//!   `schema/v1.schema.json`.
//! - [`detector`]: the [`Detector`] trait through which an extra detector plugs into the
//!   analysis core, and the per-frame features the core hands it.
//!
//! This crate depends on `serde` and `serde_json` only: no async runtime, no inference runtime, no WebRTC.
//! It follows semver; the wire format carries its own version in the `v` field.

pub mod detector;
pub mod messages;

pub use detector::{AudioFeatures, Detector, FaceFeatures, FrameFeatures, Signal, Window};
