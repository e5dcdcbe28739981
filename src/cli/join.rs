//! `deepfake-guard join`: the live guard in a Janus VideoRoom, and `deepfake-guard key`: its signing key.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::alerts::Signer;
use crate::guard::{self, GuardConfig, Report};

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Janus WebSocket URL, e.g. ws://127.0.0.1:8188 (default from the config, else ws://127.0.0.1:8188).
    #[arg(long, value_name = "URL")]
    pub janus: Option<String>,
    /// VideoRoom room id.
    #[arg(long)]
    pub room: Option<u64>,
    /// Config file (TOML; see deploy/guard.example.toml). Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Room PIN.
    #[arg(long)]
    pub pin: Option<String>,
    /// Janus API secret (or env DEEPFAKE_GUARD_API_SECRET).
    #[arg(long, env = "DEEPFAKE_GUARD_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    /// Janus auth token (or env DEEPFAKE_GUARD_TOKEN).
    #[arg(long, env = "DEEPFAKE_GUARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The guard's signing key file (made on first run).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name the guard joins with.
    #[arg(long)]
    pub display: Option<String>,
    /// Local IP address for ICE (repeatable); e.g. the address the media server reaches the guard on.
    #[arg(long = "ice-ip", value_name = "IP")]
    pub ice_ip: Vec<std::net::IpAddr>,
    /// Serve /metrics, /healthz and /readyz on this IP:PORT (default 127.0.0.1:9464).
    #[arg(long, value_name = "IP:PORT", conflicts_with = "no_metrics")]
    pub metrics_listen: Option<String>,
    /// Do not serve metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Print every signed message sent (one JSON object per line) instead of readable lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Key file (made if absent).
    #[arg(long, value_name = "FILE", default_value = "guard.key")]
    pub key: PathBuf,
}

/// The config a `join` runs with: file (if any), then flags.
pub fn config(args: &JoinArgs) -> anyhow::Result<GuardConfig> {
    let mut cfg = match &args.config {
        Some(p) => GuardConfig::from_file(p)?,
        None => GuardConfig::default(),
    };
    if let Some(v) = &args.janus {
        cfg.janus = v.clone();
    }
    if let Some(v) = args.room {
        cfg.room = v;
    }
    if args.pin.is_some() {
        cfg.pin = args.pin.clone();
    }
    if args.api_secret.is_some() {
        cfg.api_secret = args.api_secret.clone();
    }
    if args.token.is_some() {
        cfg.token = args.token.clone();
    }
    if let Some(v) = &args.key {
        cfg.key = v.clone();
    }
    if let Some(v) = &args.display {
        cfg.display = v.clone();
    }
    if !args.ice_ip.is_empty() {
        cfg.ice_addrs = args.ice_ip.iter().map(|ip| std::net::SocketAddr::new(*ip, 0).to_string()).collect();
    }
    if let Some(v) = &args.metrics_listen {
        cfg.metrics.enabled = true;
        cfg.metrics.listen = v.clone();
    }
    if args.no_metrics {
        cfg.metrics.enabled = false;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: &JoinArgs) -> anyhow::Result<()> {
    let cfg = config(args)?;
    let (signer, created) = Signer::load_or_create(&cfg.key)?;
    let report = Report::new(args.json);
    report.line(format!(
        "{} signing key {} (public key {}, key id {})",
        if created { "made a new" } else { "using the" },
        cfg.key.display(),
        signer.public_key_b64(),
        signer.key_id()
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            let _ = stop_tx.send(true);
        });
        guard::run(cfg, signer, report, stop_rx).await
    })?;
    // The webrtc driver tasks may linger; do not wait for them.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    Ok(())
}

/// Print the public key of the key file (made if absent): one line, padded standard base64.
pub fn key(args: &KeyArgs) -> anyhow::Result<()> {
    let (signer, created) = Signer::load_or_create(&args.key)?;
    if created {
        eprintln!("made a new signing key in {}", args.key.display());
    }
    println!("{}", signer.public_key_b64());
    Ok(())
}
