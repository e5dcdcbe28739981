//! `deepfake-guard features <list.csv> --out DIR`: the temporal head's inputs for every clip of a labelled
//! list, exactly as the runtime builds them, for training (models/training/train.py reads them).
//!
//! Writes `DIR/meta.json` (layout), `DIR/rows/<clip>.npy` (one f32 row per analysed frame: the feature set
//! of `analysis::temporal` followed by the embedding), `DIR/windows.jsonl` (per window: the clip, its label,
//! the row index of every grid slot (-1 = empty) and the sync vector) and `DIR/clips.jsonl`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::dataset::{LabelledClip, analyse_file, read_clip_list, run_parallel};
use crate::analysis::temporal::{self, AUX, SYNC_LEN};
use crate::analysis::{AnalyzerConfig, Output};
use crate::inference::Manifest;

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Clip list: `path,label[,offset_ms[,group]]` per line, paths relative to the list's folder.
    pub list: PathBuf,
    /// Output folder (created; existing files in it are overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Model manifest (default: models/manifest.json of this installation).
    #[arg(long, value_name = "MANIFEST")]
    pub models: Option<PathBuf>,
    /// Hop between exported windows in milliseconds (the window is the head's 3.2 s).
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(40..=60000))]
    pub hop_ms: u32,
    /// Clips analysed at once (each thread loads its own models).
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct ClipOut {
    rows: usize,
    windows: Vec<serde_json::Value>,
    frames: u64,
}

pub fn run(args: &FeaturesArgs) -> Result<()> {
    let clips = read_clip_list(&args.list)?;
    let manifest_path = args.models.clone().unwrap_or_else(Manifest::default_path);
    let manifest = Manifest::load(&manifest_path)?;
    let rows_dir = args.out.join("rows");
    std::fs::create_dir_all(&rows_dir).with_context(|| format!("creating {}", rows_dir.display()))?;
    let window_us = temporal::SLOTS as i64 * temporal::GRID_US;
    let cfg = AnalyzerConfig {
        window_us,
        hop_us: (args.hop_ms as i64 * 1000).min(window_us),
        export_rows: true,
        ..AnalyzerConfig::default()
    };
    let indexed: Vec<(usize, &LabelledClip)> = clips.iter().enumerate().collect();
    let mut dim = 0;
    let results = run_parallel(&indexed, args.jobs, &manifest, "features", |(i, clip), models| {
        let file = rows_dir.join(format!("{i:06}.npy"));
        let mut data: Vec<f32> = Vec::new();
        let mut windows = Vec::new();
        let d = AUX + models.backbone.dim;
        let (summary, _, _) = analyse_file(
            &clip.path,
            None,
            cfg.clone(),
            models,
            |o| {
                match o {
                    Output::Row(r) => {
                        debug_assert_eq!(r.seq as usize, data.len() / d);
                        data.extend_from_slice(&r.values);
                    }
                    Output::Window(w) => {
                        let (seqs, sync) = w.head_input.expect("export_rows is on");
                        windows.push(json!({
                            "clip": i, "name": clip.name, "label": clip.fake as u8, "offset_ms": clip.offset_ms,
                            "group": clip.group, "start_ms": w.start_us / 1000, "end_ms": w.end_us / 1000,
                            "face_ratio": w.face_ratio, "audio_ratio": w.audio_ratio,
                            "lipsync_offset_ms": w.sync.map(|s| s.offset_ms),
                            "lipsync_confidence": w.sync.map(|s| s.confidence),
                            "seqs": seqs, "sync": sync,
                        }));
                    }
                    Output::Frame(_) => {}
                }
                Ok(())
            },
            |_| {},
        )
        .with_context(|| format!("analysing {}", clip.path.display()))?;
        write_npy(&file, &data, d)?;
        Ok((ClipOut { rows: data.len() / d, windows, frames: summary.analysed_frames }, d))
    })?;
    let mut wf = std::io::BufWriter::new(std::fs::File::create(args.out.join("windows.jsonl"))?);
    let mut cf = std::io::BufWriter::new(std::fs::File::create(args.out.join("clips.jsonl"))?);
    let mut n_windows = 0;
    for ((i, clip), (r, d)) in indexed.iter().zip(&results) {
        dim = *d;
        for w in &r.windows {
            writeln!(wf, "{w}")?;
        }
        n_windows += r.windows.len();
        writeln!(
            cf,
            "{}",
            json!({"clip": i, "name": clip.name, "label": clip.fake as u8, "offset_ms": clip.offset_ms,
                   "group": clip.group, "frames": r.frames, "rows": r.rows, "windows": r.windows.len()})
        )?;
    }
    wf.flush()?;
    cf.flush()?;
    let backbone = manifest.entry("backbone")?;
    let meta = json!({
        "feature_version": temporal::FEATURE_VERSION,
        "aux": AUX,
        "dim": dim,
        "slots": temporal::SLOTS,
        "grid_ms": temporal::GRID_US / 1000,
        "sync_len": SYNC_LEN,
        "sync_lags": temporal::SYNC_LAGS,
        "hop_ms": args.hop_ms,
        "backbone_sha256": backbone.sha256,
        "backbone_file": backbone.file,
        "clips": clips.len(),
        "windows": n_windows,
        "list": std::fs::canonicalize(&args.list).unwrap_or_else(|_| args.list.clone()),
    });
    std::fs::write(args.out.join("meta.json"), serde_json::to_string_pretty(&meta)? + "\n")?;
    println!("{} clips, {n_windows} windows, rows of {dim} values -> {}", clips.len(), args.out.display());
    Ok(())
}

/// A little-endian f32 `.npy` file of shape `[len / dim, dim]`.
fn write_npy(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}", data.len() / dim);
    // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, then '\n'
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
