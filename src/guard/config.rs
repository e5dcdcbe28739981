//! The guard's settings: a TOML file (`--config guard.toml`) and command-line flags over it, checked before
//! anything starts. See `deploy/guard.example.toml` for every key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything `deepfake-guard join` needs. `Default` gives the shipped defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Janus WebSocket URL (`ws://host:8188` or `wss://...`).
    pub janus: String,
    /// VideoRoom room id.
    pub room: u64,
    /// Room PIN, when the room has one.
    pub pin: Option<String>,
    /// Janus API secret (`api_secret` in janus.jcfg), when set.
    pub api_secret: Option<String>,
    /// Janus stored-auth token, when token auth is on.
    pub token: Option<String>,
    /// The name the guard joins the room with.
    pub display: String,
    /// The guard's Ed25519 key file (made on first run).
    pub key: PathBuf,
    /// Local addresses ICE binds to (`IP:PORT`, port 0 = any). Empty: `0.0.0.0:0`, one socket per
    /// non-loopback interface address. Next to a media server on loopback, name the address (127.0.0.2:0).
    pub ice_addrs: Vec<String>,
    /// STUN/TURN server URLs.
    pub ice_servers: Vec<String>,
    /// Seconds between two heartbeats on the data channel.
    pub heartbeat_s: f64,
    /// Seconds between two Janus keepalives (Janus drops a silent session after 60 s by default).
    pub keepalive_s: f64,
    /// Reconnection backoff after a lost connection: first and longest wait, seconds.
    pub reconnect_min_s: f64,
    pub reconnect_max_s: f64,
    pub analysis: AnalysisConfig,
    pub metrics: MetricsConfig,
}

/// The operator's endpoint: Prometheus metrics, health and readiness.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`, `/healthz` and `/readyz`.
    pub enabled: bool,
    /// `IP:PORT` to serve them on (loopback by default: expose it deliberately).
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, listen: "127.0.0.1:9464".into() }
    }
}

/// How the guard analyses.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Model manifest (default: the installation's models/manifest.json).
    pub models: Option<PathBuf>,
    /// Analysis threads (each holds one set of models; participants are spread over them). 0 = one per CPU
    /// core, at most 4.
    pub threads: usize,
    /// Time between two analysis windows (the window itself is the head's 3.2 s), milliseconds.
    pub hop_ms: u64,
    /// Windows in a row at or above the operating threshold, each corroborated by the lip-sync estimator,
    /// that raise an alert. A corroborated window is itself two measurements 1.6 s apart (see
    /// `analysis::participant`), and live video jitters in ways files do not (capture offsets settling,
    /// dropped frames), so the live default asks for 9 (evidence over 6.4 s of media with the default hop)
    /// where `scan` asks for 1 (4.8 s).
    pub raise_windows: u32,
    /// Whether the learned head's score alone (no corroboration by the lip-sync estimator) may raise an alert
    /// after `raise_windows`. Off by default: on faces, voices and generators it never saw, the head can score
    /// genuine people high, so alone it only makes a participant `suspicious`. Turning it on catches face
    /// swaps and same-timing dubs as alerts too, at the price of false alerts on unfamiliar faces.
    pub head_alone_alerts: bool,
    /// Windows in a row scored 0.95 or more, while the lip-sync estimator confidently measures an A/V offset
    /// beyond twice the natural range, 120 ms (lip-sync drift: two detectors agree), that raise an alert sooner (2: over
    /// 5.0 s of media with the default hop); 0 turns it off.
    pub strong_windows: u32,
    /// Windows in a row below the clearing threshold that end an alert or a `suspicious` state (5: 4.0 s of
    /// media with the default hop).
    pub clear_windows: u32,
    /// Encoded media a participant may have queued before the oldest is dropped, in video frames.
    pub queue_frames: usize,
    /// A worker that has more than this many of a participant's video frames waiting decodes the oldest
    /// without analysing them, to catch up.
    pub max_backlog_frames: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            janus: "ws://127.0.0.1:8188".into(),
            room: 1234,
            pin: None,
            api_secret: None,
            token: None,
            display: "Deepfake Guard".into(),
            key: PathBuf::from("guard.key"),
            ice_addrs: Vec::new(),
            ice_servers: Vec::new(),
            heartbeat_s: 5.0,
            keepalive_s: 25.0,
            reconnect_min_s: 0.5,
            reconnect_max_s: 2.0,
            analysis: AnalysisConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            models: None,
            threads: 0,
            hop_ms: 200,
            raise_windows: 9,
            head_alone_alerts: false,
            strong_windows: 2,
            clear_windows: 5,
            queue_frames: 75,
            max_backlog_frames: 12,
        }
    }
}

/// A config that cannot work, with what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl GuardConfig {
    /// Read a TOML config file; keys it does not name keep their defaults, unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
    }

    /// Check every value; the error names the key and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(self.janus.starts_with("ws://") || self.janus.starts_with("wss://")) {
            return bad(format!("janus = {:?}: a WebSocket URL is needed, e.g. ws://127.0.0.1:8188", self.janus));
        }
        if self.room == 0 {
            return bad("room: give the VideoRoom room id (a positive number)".into());
        }
        if self.display.trim().is_empty() {
            return bad("display: the guard needs a name to join with".into());
        }
        for a in &self.ice_addrs {
            if a.parse::<std::net::SocketAddr>().is_err() {
                return bad(format!("ice_addrs: {a:?} is not IP:PORT (use port 0 for any port, e.g. 10.0.0.5:0)"));
            }
        }
        for (key, v, lo, hi) in [
            ("heartbeat_s", self.heartbeat_s, 0.5, 3600.0),
            ("keepalive_s", self.keepalive_s, 1.0, 55.0),
            ("reconnect_min_s", self.reconnect_min_s, 0.05, 60.0),
            ("reconnect_max_s", self.reconnect_max_s, self.reconnect_min_s, 600.0),
        ] {
            if !(lo..=hi).contains(&v) {
                return bad(format!("{key} = {v}: must be between {lo} and {hi}"));
            }
        }
        if self.metrics.enabled && self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!(
                "metrics.listen = {:?}: must be IP:PORT, e.g. 127.0.0.1:9464 (or metrics.enabled = false)",
                self.metrics.listen
            ));
        }
        let a = &self.analysis;
        if a.threads > 64 {
            return bad(format!("analysis.threads = {}: at most 64 (0 = one per core)", a.threads));
        }
        if !(40..=3200).contains(&a.hop_ms) {
            return bad(format!("analysis.hop_ms = {}: must be between 40 and 3200 (the window)", a.hop_ms));
        }
        if !(1..=20).contains(&a.raise_windows) {
            return bad(format!("analysis.raise_windows = {}: must be between 1 and 20", a.raise_windows));
        }
        if !(1..=50).contains(&a.clear_windows) {
            return bad(format!("analysis.clear_windows = {}: must be between 1 and 50", a.clear_windows));
        }
        if a.strong_windows == 1 || a.strong_windows > 20 {
            return bad(format!(
                "analysis.strong_windows = {}: 0 (off) or between 2 and 20 (one window never raises an alert)",
                a.strong_windows
            ));
        }
        if !(5..=1000).contains(&a.queue_frames) {
            return bad(format!("analysis.queue_frames = {}: must be between 5 and 1000", a.queue_frames));
        }
        if a.max_backlog_frames == 0 || a.max_backlog_frames >= a.queue_frames {
            return bad(format!(
                "analysis.max_backlog_frames = {}: must be at least 1 and below queue_frames ({})",
                a.max_backlog_frames, a.queue_frames
            ));
        }
        Ok(())
    }

    pub fn analysis_threads(&self) -> usize {
        match self.analysis.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
            n => n,
        }
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_files_override_them() {
        GuardConfig::default().validate().unwrap();
        let c: GuardConfig = toml::from_str("room = 4321\n[analysis]\nthreads = 2\n").unwrap();
        assert_eq!((c.room, c.analysis.threads, c.analysis.hop_ms), (4321, 2, 200));
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let e = toml::from_str::<GuardConfig>("rooom = 1").unwrap_err().to_string();
        assert!(e.contains("rooom"), "{e}");
        let mut c = GuardConfig { janus: "http://x".into(), ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("WebSocket"));
        c.janus = "ws://x:8188".into();
        c.ice_addrs = vec!["127.0.0.2".into()];
        assert!(c.validate().unwrap_err().to_string().contains("ice_addrs"));
        c.ice_addrs.clear();
        c.analysis.hop_ms = 5000;
        assert!(c.validate().unwrap_err().to_string().contains("hop_ms"));
        c.analysis.hop_ms = 800;
        c.metrics.listen = "localhost".into();
        assert!(c.validate().unwrap_err().to_string().contains("metrics.listen"));
        c.metrics.enabled = false;
        c.validate().unwrap();
    }
}
