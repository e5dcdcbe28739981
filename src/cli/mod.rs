//! Command-line front end: argument parsing and the sub-commands. The only place that prints.

pub mod calibrate;
pub mod dataset;
pub mod demo;
pub mod eval;
pub mod features;
pub mod join;
pub mod scan;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// deepfake-guard: a self-hosted guard against deepfakes in live video calls.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a recorded clip (anything FFmpeg reads) and report per window and in total.
    Scan(scan::ScanArgs),
    /// Evaluate the detector on a labelled clip list (`path,label[,offset_ms[,group]]`): AUC, accuracy,
    /// recall, offset error, false alerts per hour.
    Eval(eval::EvalArgs),
    /// Set the temporal head's thresholds from your own genuine recordings, so that its false-alert rate on
    /// them stays under a target (raised only; written beside the manifest, applied by scan, eval and join).
    Calibrate(calibrate::CalibrateArgs),
    /// Export the temporal head's inputs for a labelled clip list (training data; see models/training).
    Features(features::FeaturesArgs),
    /// A whole call on this machine: Janus, this guard, a genuine and a lip-sync-fake publisher (headless
    /// Chromium) and a viewer's page with the guard's verified badges (screenshots saved).
    Demo(demo::DemoArgs),
    /// Join a Janus VideoRoom as the guard: analyse every participant, send signed alerts to the call.
    Join(join::JoinArgs),
    /// Print the guard's public signing key (made if the key file does not exist).
    Key(join::KeyArgs),
    /// Load and check every model of the manifest (sha256, input/output names and shapes), then exit.
    Check {
        /// Model manifest (default: models/manifest.json of this installation).
        #[arg(long, value_name = "MANIFEST")]
        models: Option<PathBuf>,
    },
}
