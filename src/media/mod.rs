//! Media input: turning encoded media into the analysis core's inputs ([`crate::analysis::frame`]):
//! I420 video frames and 16 kHz mono audio, each with its media timestamp.
//!
//! - [`file`]: any file FFmpeg reads (mp4, webm, mkv, y4m + wav, ...), decoded offline, event by event.

pub mod file;
pub mod live;
pub mod reassembly;
pub mod rtc;
