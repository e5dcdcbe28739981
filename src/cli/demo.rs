//! `deepfake-guard demo`: a whole call on this machine. A private Janus room, this guard, two publishers
//! from generated clips (alice: genuine; mallory: lip-sync fake, audio 400 ms late) in headless Chromium, and
//! a viewer (bob) whose page shows the guard's verified badges. The guard's alerts are printed as they
//! arrive and bob's page is saved as a screenshot every few seconds. The harness is scripts/e2e/run.sh.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long the call lasts, seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Video codec of the room: vp8 or h264.
    #[arg(long, default_value = "vp8", value_parser = ["vp8", "h264"])]
    pub codec: String,
    /// Run on the machine's own network instead of a private namespace, so that people can open the page
    /// (http://HOST:8000/?room=4321&name=you) from elsewhere. Needs ports 8000, 8088 and 8188 free.
    #[arg(long)]
    pub no_netns: bool,
    /// Output folder (default out/demo-<time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/e2e/run.sh");
    anyhow::ensure!(
        script.exists(),
        "{} is missing: the demo runs from a checkout of the repository (run `bash scripts/demo.sh` there)",
        script.display()
    );
    let exe = std::env::current_exe().context("locating this binary")?;
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("demo")
        .current_dir(&root)
        .env("BOT", exe)
        .env("VCODEC", &args.codec)
        .env("DEMO_SECONDS", args.seconds.to_string());
    if args.no_netns {
        cmd.env("NO_NETNS", "1");
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        cmd.env("WORK", out.canonicalize()?);
    }
    let status = cmd.status().context("running scripts/e2e/run.sh")?;
    anyhow::ensure!(status.success(), "the demo call failed (exit {:?}); its logs are listed above", status.code());
    Ok(())
}
