//! `deepfake-guard scan <file> [--audio <wav>] [--json]`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use deepfake_guard_plugin_api::messages::State;

use super::dataset::analyse_file;
use crate::analysis::{AnalyzerConfig, Output, Summary, WindowReport};
use crate::inference::{Manifest, Models};
use crate::media::file::FileSource;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Video file (mp4, webm, mkv, y4m, ...), with or without an audio track.
    pub file: PathBuf,
    /// Separate audio file (e.g. a .wav beside a .y4m); overrides the video file's own audio.
    #[arg(long, value_name = "WAV")]
    pub audio: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Model manifest (default: models/manifest.json of this installation).
    #[arg(long, value_name = "MANIFEST")]
    pub models: Option<PathBuf>,
    /// Run face detection every N analysed frames (landmarks track in between).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub detect_every: u32,
    /// Analyse every N-th frame.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub stride: u32,
    /// Analysis window in milliseconds.
    #[arg(long, default_value_t = 3200, value_parser = clap::value_parser!(u32).range(500..=60000))]
    pub window_ms: u32,
    /// Also print one line per analysed frame (mouth opening, audio level): for debugging and research.
    #[arg(long)]
    pub frames: bool,
    /// Hop between windows in milliseconds (<= window).
    #[arg(long, default_value_t = 1600, value_parser = clap::value_parser!(u32).range(100..=60000))]
    pub hop_ms: u32,
    /// Use the manifest's thresholds as shipped, ignoring a calibration beside it (`deepfake-guard calibrate`).
    #[arg(long)]
    pub no_calibration: bool,
}

/// Load the manifest at `path`, with the user's calibration unless `no_calibration` (see
/// `inference::calibration`; `join` gets it through the same `Manifest::load`, and
/// `DEEPFAKE_GUARD_CALIBRATION=off` turns it off there).
pub fn load_manifest(path: &std::path::Path, no_calibration: bool) -> Result<Manifest> {
    Ok(if no_calibration { Manifest::load_uncalibrated(path)? } else { Manifest::load(path)? })
}

pub fn run(args: &ScanArgs) -> Result<()> {
    if args.hop_ms > args.window_ms {
        anyhow::bail!("--hop-ms ({}) must not exceed --window-ms ({})", args.hop_ms, args.window_ms);
    }
    let manifest_path = args.models.clone().unwrap_or_else(Manifest::default_path);
    let manifest = load_manifest(&manifest_path, args.no_calibration)?;
    let mut models = Models::load(&manifest)?;
    let cfg = AnalyzerConfig {
        detect_every: args.detect_every,
        frame_stride: args.stride,
        window_us: args.window_ms as i64 * 1000,
        hop_us: args.hop_ms as i64 * 1000,
        frame_reports: args.frames,
        ..AnalyzerConfig::default()
    };
    if models.head.is_none() {
        log::warn!(
            "{}: no temporal head (role `temporal_head`): measurements only, no verdicts",
            manifest_path.display()
        );
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Opening the file only reads its headers; the analysis opens it again to decode.
    let info = FileSource::open(&args.file, args.audio.as_deref())?.info().clone();
    if !args.json {
        writeln!(
            out,
            "{}: {}x{} {}{}, backbone {}",
            args.file.display(),
            info.width,
            info.height,
            info.video_codec,
            info.audio_codec.as_deref().map(|a| format!(" + {a}")).unwrap_or_else(|| " (no audio)".into()),
            models.backbone.file().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        )?;
    }
    let bar = progress_bar(info.duration_us);
    let (summary, decode_errors, _) = analyse_file(
        &args.file,
        args.audio.as_deref(),
        cfg,
        &mut models,
        |output| Ok(bar.suspend(|| print_output(&mut out, &output, args.json))?),
        |pts| bar.set_position(pts.max(0) as u64),
    )?;
    bar.finish_and_clear();
    print_summary(&mut out, &summary, decode_errors, args.json)?;
    Ok(())
}

fn progress_bar(duration_us: Option<i64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration_us.unwrap_or(0).max(0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent}% (eta {eta})")
            .expect("static template is valid"),
    );
    bar
}

fn round3(x: f32) -> f64 {
    (x as f64 * 1000.0).round() / 1000.0
}

fn print_output(out: &mut impl Write, output: &Output, json: bool) -> std::io::Result<()> {
    let w = match output {
        Output::Window(w) => w,
        Output::Frame(f) => {
            let v = json!({
                "type": "frame",
                "pts_ms": f.pts_us as f64 / 1000.0,
                "faces": f.faces,
                "mouth_open": f.mouth_open.map(round3),
                "mouth_width": f.mouth_width.map(round3),
                "audio_level_db": f.audio_level_db.map(|d| (d as f64 * 10.0).round() / 10.0),
                "audio_envelope": f.audio_envelope.map(|e| e as f64),
            });
            return if json { writeln!(out, "{v}") } else { writeln!(out, "  frame {v}") };
        }
        Output::Row(_) => return Ok(()),
    };
    if json {
        writeln!(out, "{}", window_json(w))
    } else {
        let sync = match w.sync {
            Some(s) => format!("av offset {:+5.0} ms (confidence {:.2})", s.offset_ms, s.confidence),
            None => "av offset   n/a".to_string(),
        };
        let face =
            if w.face() { format!("face yes ({} seen)", w.faces) } else { format!("face no  ({} seen)", w.faces) };
        let mouth = w.mouth_open.map(|m| format!("mouth {m:.3}")).unwrap_or_else(|| "mouth  n/a ".into());
        let audio = if w.audio_ratio < 0.5 { "  no audio" } else { "" };
        let verdict = match (window_score(w), w.state) {
            (Some(s), Some(st)) => format!("  p(fake) {s:.2}  {}", state_str(st)),
            (None, Some(st)) => format!("  {}", state_str(st)),
            _ => String::new(),
        };
        writeln!(
            out,
            "[{:8.2} - {:8.2} s] {face}  {mouth}  {sync}{audio}{verdict}",
            w.start_us as f64 / 1e6,
            w.end_us as f64 / 1e6
        )
    }
}

/// The JSON line of one window (fields documented in the README).
pub fn window_json(w: &WindowReport) -> serde_json::Value {
    json!({
        "type": "window",
        "start_ms": w.start_us / 1000,
        "end_ms": w.end_us / 1000,
        "face": w.face(),
        "faces": w.faces,
        "mouth_open": w.mouth_open.map(round3),
        "av_offset_ms": w.sync.map(|s| s.offset_ms.round() as i64),
        "sync_confidence": w.sync.map_or(0.0, |s| round3(s.confidence)),
        "frames": w.frames,
        "face_ratio": round3(w.face_ratio),
        "audio_ratio": round3(w.audio_ratio),
        "score": window_score(w).map(round3),
        "state": w.state.map(state_str),
        "evidence": w.evidence,
        "not_judged": w.not_judged.map(|r| r.as_str()),
        "head_offset_ms": window_score(w).and(w.head).map(|h| h.offset_ms.round() as i64),
    })
}

/// The temporal head's p(fake) of a window that had a face to judge.
pub fn window_score(w: &WindowReport) -> Option<f32> {
    w.signals.iter().find(|(n, _)| n == "temporal").and_then(|(_, s)| s.score)
}

/// The wire name of a state (the plugin API's serde name).
pub fn state_str(s: State) -> &'static str {
    match s {
        State::Clear => "clear",
        State::Suspicious => "suspicious",
        State::Alert => "alert",
        State::NoFace => "no-face",
        State::NoAudio => "no-audio",
        _ => "unknown",
    }
}

fn print_summary(out: &mut impl Write, s: &Summary, decode_errors: u64, json: bool) -> std::io::Result<()> {
    if json {
        let v = json!({
            "type": "summary",
            "frames": s.frames,
            "analysed_frames": s.analysed_frames,
            "face_ratio": round3(s.face_ratio()),
            "audio_ratio": round3(s.audio_ratio()),
            "verdict": s.verdict().map(|v| v.as_str()),
            "no_verdict_reason": s.no_verdict_reason(),
            "score": s.score().map(round3),
            "alert_windows": s.alert_windows,
            "av_offset_ms": s.sync.map(|e| e.offset_ms.round() as i64),
            "sync_confidence": s.sync.map_or(0.0, |e| round3(e.confidence)),
            "windows": s.windows,
            "threshold": s.verdict_config.as_ref().map(|c| (c.alert as f64 * 1e4).round() / 1e4),
            "detections_run": s.detections_run,
            "decode_errors": decode_errors,
        });
        writeln!(out, "{v}")
    } else {
        writeln!(
            out,
            "summary: {} frames, {} analysed, face in {:.0}% of them, {} windows, {} decode errors",
            s.frames,
            s.analysed_frames,
            100.0 * s.face_ratio(),
            s.windows,
            decode_errors
        )?;
        match s.sync {
            Some(e) if e.offset_ms.abs() < 20.0 => {
                writeln!(out, "lip sync: in sync ({:+.0} ms, confidence {:.2})", e.offset_ms, e.confidence)
            }
            Some(e) => writeln!(
                out,
                "lip sync: audio {} by {:.0} ms (confidence {:.2})",
                if e.offset_ms > 0.0 { "late" } else { "early" },
                e.offset_ms.abs(),
                e.confidence
            ),
            None => writeln!(out, "lip sync: not measurable (no face with a moving mouth, or no speech)"),
        }?;
        match (s.verdict(), s.score()) {
            (Some(v), Some(score)) => writeln!(
                out,
                "verdict: {} (mean p(fake) {score:.2}, {} of {} windows in alert)",
                v.as_str(),
                s.alert_windows,
                s.windows
            ),
            (Some(v), None) => writeln!(out, "verdict: {}", v.as_str()),
            (None, _) => writeln!(out, "verdict: none ({})", s.no_verdict_reason().unwrap_or_default()),
        }
    }
}

/// `deepfake-guard check`: load every model and report.
pub fn check(models: Option<PathBuf>) -> Result<()> {
    let path = models.unwrap_or_else(Manifest::default_path);
    let manifest = Manifest::load(&path)?;
    let m = Models::load(&manifest)?;
    println!("ONNX Runtime: {}", crate::inference::runtime_library_path().display());
    println!("manifest {}: ok", path.display());
    for (role, entry) in &manifest.models {
        println!(
            "  {role:<15} {} (sha256 {}…) ok",
            manifest.file_path(entry).display(),
            &entry.sha256[..12.min(entry.sha256.len())]
        );
    }
    println!("backbone embedding: {} values", m.backbone.dim);
    Ok(())
}
