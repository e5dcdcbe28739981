//! The live guard (`deepfake-guard join`): a participant of a Janus VideoRoom that analyses everyone else
//! and tells the call what it finds.
//!
//! ```text
//!  session   Janus over WebSocket: join as publisher (data-only alert stream), subscribe (multistream) to
//!            every other publisher's audio + video, follow joins/leaves, renegotiate
//!  pump      per incoming track (async): RTP -> frame assembler (video) / packets (Opus) -> participant queue
//!  worker    analysis threads: decode (media::live) -> Analyzer (sans-IO core) -> window reports
//!  outbox    state per participant -> signed hello / verdict / heartbeat -> the alert data channel
//!  metrics   counters and histograms from every step above -> /metrics, /healthz, /readyz (crate::metrics)
//! ```
//!
//! A lost connection or a Janus restart ends the session; [`run`] starts a new one with backoff, and the
//! analysis workers and the signing key live on across sessions.

pub mod config;
pub mod session;
pub mod worker;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use deepfake_guard_plugin_api::messages::{Message, State};

pub use config::{AnalysisConfig, ConfigError, GuardConfig, MetricsConfig};

use crate::alerts::Signer;
use crate::alerts::outbox::{Outbox, Outgoing};
use crate::analysis::AnalyzerConfig;
use crate::inference::Manifest;
use crate::metrics::{self, Metrics};
use worker::{ParticipantStats, WorkerConfig, Workers};

/// How the guard reports what it does on stdout: readable lines, or (`json`) every signed message it sends,
/// one per line, with its own news as `{"type":"log",...}` lines.
pub struct Report {
    pub json: bool,
    started: Instant,
}

impl Report {
    pub fn new(json: bool) -> Self {
        Report { json, started: Instant::now() }
    }

    fn out(&self, line: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    pub fn line(&self, text: String) {
        let t = self.started.elapsed().as_secs_f64();
        if self.json {
            self.out(
                &serde_json::json!({"type": "log", "t_s": (t * 1000.0).round() / 1000.0, "text": text}).to_string(),
            );
        } else {
            self.out(&format!("[{t:8.2}s] {text}"));
        }
    }

    pub fn message(&self, out: &Outgoing, outbox: &Outbox) {
        if self.json {
            self.out(&out.wire);
            return;
        }
        match &out.message {
            Message::Verdict(v) => {
                let who = v.participant.display.as_deref().unwrap_or("no name");
                let state = match (v.state, v.not_judged) {
                    (_, Some(r)) => format!("not judged ({r})"),
                    (State::Alert, _) => {
                        format!("ALERT (looks like a deepfake; evidence: {})", v.signals.evidence.join(" + "))
                    }
                    (s, _) => s.as_str().to_owned(),
                };
                let score = v.score.map_or("-".into(), |s| format!("{s:.2}"));
                let offset = v.signals.av_offset_ms.map_or(String::new(), |o| format!("  av offset {o:+} ms"));
                self.line(format!(
                    "verdict #{}: {who} ({}) -> {state}  p(fake) {score}{offset}  window {:.1}-{:.1} s",
                    v.seq,
                    v.participant.id,
                    v.window.start_ms as f64 / 1000.0,
                    v.window.end_ms as f64 / 1000.0
                ));
            }
            Message::Hello(h) => log::debug!("hello #{} sent (key id {})", h.seq, outbox.signer().key_id()),
            _ => {}
        }
    }

    /// Periodic counters (log level info, `RUST_LOG=info`).
    pub fn stats(&self, parts: &[(u64, Arc<ParticipantStats>)]) {
        for (id, s) in parts {
            log::info!(
                "participant {id}: video in {} decoded {} analysed {} dropped {} skipped {} errors {}; audio {} packets; {} windows",
                s.video_in.load(Relaxed),
                s.frames_decoded.load(Relaxed),
                s.frames_analysed.load(Relaxed),
                s.dropped_queue_full.load(Relaxed),
                s.skipped_behind.load(Relaxed),
                s.decode_errors.load(Relaxed),
                s.audio_packets.load(Relaxed),
                s.windows.load(Relaxed),
            );
        }
    }
}

/// The analyser settings the live guard uses: the shipped defaults with the config's hop and alert rule.
pub fn analyzer_config(cfg: &GuardConfig) -> AnalyzerConfig {
    AnalyzerConfig {
        hop_us: cfg.analysis.hop_ms as i64 * 1000,
        raise_windows: cfg.analysis.raise_windows,
        head_alone_alerts: cfg.analysis.head_alone_alerts,
        strong_windows: cfg.analysis.strong_windows,
        clear_windows: cfg.analysis.clear_windows,
        ..AnalyzerConfig::default()
    }
}

/// The analysis workers' settings from the guard's config.
pub fn worker_config(cfg: &GuardConfig) -> WorkerConfig {
    WorkerConfig {
        analyzer: analyzer_config(cfg),
        queue_frames: cfg.analysis.queue_frames,
        max_backlog_frames: cfg.analysis.max_backlog_frames,
    }
}

/// Run the guard until `shutdown` fires (or the room is gone): join, and rejoin after every lost
/// connection with exponential backoff.
pub async fn run(
    cfg: GuardConfig,
    signer: Signer,
    report: Report,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    cfg.validate()?;
    let metrics = Metrics::new();
    if cfg.metrics.enabled {
        let listener = metrics::http::bind(&cfg.metrics.listen).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(metrics::http::serve(listener, metrics.clone(), shutdown.clone()));
        report.line(format!("metrics on http://{addr}/metrics (health /healthz, readiness /readyz)"));
    }
    let manifest_path = cfg.analysis.models.clone().unwrap_or_else(Manifest::default_path);
    let manifest = Manifest::load(&manifest_path)?;
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
    let threads = cfg.analysis_threads();
    let workers = Workers::start(threads, &manifest, worker_config(&cfg), metrics.clone(), ev_tx)?;
    report.line(format!(
        "models loaded from {} ({threads} analysis thread{}); public key {}",
        manifest_path.display(),
        if threads == 1 { "" } else { "s" },
        signer.public_key_b64()
    ));
    let mut outbox = Outbox::new(signer, cfg.room.to_string(), cfg.display.clone());
    let started = Instant::now();
    let min = Duration::from_secs_f64(cfg.reconnect_min_s);
    let max = Duration::from_secs_f64(cfg.reconnect_max_s);
    let mut backoff = min;
    loop {
        let began = Instant::now();
        let r = session::Session::new(&cfg, &workers, &mut outbox, &mut ev_rx, &report, &metrics, started)
            .run(&mut shutdown)
            .await;
        // Drop what the analysis said about the old session's participants.
        while ev_rx.try_recv().is_ok() {}
        match r {
            Ok(session::End::Shutdown) => {
                report.line("left the room".into());
                return Ok(());
            }
            Ok(session::End::Evicted(why)) => anyhow::bail!("{why}"),
            Err(e) => {
                if began.elapsed() > Duration::from_secs(30) {
                    backoff = min;
                }
                metrics.sfu_reconnects.inc();
                report.line(format!("{e:#}; joining again in {:.1} s", backoff.as_secs_f64()));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        backoff = (backoff * 2).min(max);
    }
}
