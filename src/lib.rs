//! # deepfake-guard
//!
//! A bot that joins a video call as one more participant, watches and listens to everyone else, and tells
//! the call when a face or a voice is not real. This crate holds the engine and the bot.
//!
//! **What it detects** (figures in the README and `models/cards/temporal_head.md`): lips and voice out of
//! step (lip-sync drift, a dubbed or re-enacted face), raised as `alert` only when the learned head and the
//! classical lip-sync estimator agree. A face swap, or a dub by another voice with the same timing, is shown
//! as `suspicious` at most (the learned head alone; `analysis.head_alone_alerts` opts in to alerts). **What it
//! does not detect**: a cloned voice over lips that move in step with it, and faces it cannot see (camera
//! off, a codec it does not decode, frames missing), which it reports as not judged, with the reason.
//! Any frame rate from 10 to 60 fps is judged on media time.
//!
//! ## Data flow (one arrow = one owner hand-off)
//!
//! ```text
//!  input (live)              sfu::janus + sfu::videoroom: join a Janus VideoRoom, subscribe to every publisher
//!    -> RTP per track        media::rtc (webrtc 0.21 peer connections) -> guard::session pumps: frames / packets
//!    -> participant queue    guard::worker: bounded, drop-oldest, per participant, onto analysis threads
//!    -> decode               media::live: VP8 / H.264 (libavcodec), Opus -> 16 kHz; one media clock per participant
//!  input (files)             media::file (FFmpeg: any file)
//!    -> decoded frames       analysis::frame::{VideoFrame (I420), AudioChunk (16 kHz mono)} + media timestamps
//!  analysis (sans-IO, one Analyzer per participant, no I/O; wall time only measured, for metrics)
//!    -> face                 analysis::face    BlazeFace every few frames, landmarks track in between
//!    -> crop                 analysis::crop    eye-aligned square crops sampled straight from I420
//!    -> lips                 FaceMesh (468 points) -> mouth opening / width / velocity
//!    -> spatial              backbone (EfficientNet-Lite0 by default) -> embedding
//!    -> audio                analysis::audio   log-mel, envelope, onsets on the video frame clock (and on the
//!                                              head's 40 ms grid)
//!    -> detectors            plugin-api `Detector`s; built in: analysis::lipsync (offset + confidence)
//!    -> feature rows         analysis::temporal: one row per frame (face, lips, change cues, audio, embedding)
//!  per window (3.2 s, every 1.6 s; live every 0.2 s)
//!    -> temporal head        Bi-LSTM over the rows on a 40 ms grid of media time (rows interpolated between
//!                            the frames around each slot: any frame rate) + the lip-sync curve -> p(fake)
//!    -> verdict              analysis::verdict: clear / suspicious / alert (two detectors agree) / no-face /
//!                            no-audio / not judged (with a reason), hysteresis
//!    -> window reports       analysis::Output::Window, polled by the caller
//!  alerts                    alerts::Signer (Ed25519 key, made on first run), alerts::Outbox: signed hello /
//!                            verdict (on each change) / heartbeat -> the guard's data channel (guard::session)
//!  metrics                   metrics::Metrics: counters / histograms from the steps above (the workers' media
//!                            counters summed at scrape time) -> metrics::http: /metrics, /healthz, /readyz
//!  inference                 inference::{Manifest, Models}: one ONNX Runtime env, models checked at load
//!  cli                       `join` runs the live guard (guard::run); `demo` a whole call on this machine;
//!                            `scan` prints the reports of a file; `eval` scores a labelled clip list;
//!                            `features` exports the head's inputs for training (models/training/)
//! ```
//!
//! ## The run loop
//!
//! ```no_run
//! use deepfake_guard::analysis::{Analyzer, AnalyzerConfig, Output};
//! use deepfake_guard::inference::{Manifest, Models};
//! use deepfake_guard::media::file::{FileSource, MediaEvent};
//! # fn main() -> anyhow::Result<()> {
//! let manifest = Manifest::load(&Manifest::default_path())?;
//! let mut models = Models::load(&manifest)?;
//! let mut analyzer = Analyzer::new(AnalyzerConfig::default(), &models);
//! let mut source = FileSource::open("clip.mp4".as_ref(), None)?;
//! while let Some(event) = source.next_event()? {
//!     match event {
//!         MediaEvent::Audio(chunk) => analyzer.push_audio(chunk, &mut models)?,
//!         MediaEvent::Video(frame) => analyzer.push_video(frame, &mut models)?,
//!     }
//!     while let Some(Output::Window(w)) = analyzer.poll_output() {
//!         println!("{:?}", w.sync);
//!     }
//! }
//! analyzer.finish(&mut models)?;
//! # Ok(()) }
//! ```

pub mod alerts;
pub mod analysis;
pub mod cli;
pub mod guard;
pub mod inference;
pub mod media;
pub mod metrics;
pub mod sfu;
