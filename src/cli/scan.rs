//! `deepfake-guard scan <file> [--audio <wav>] [--json]`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::analysis::{Analyzer, AnalyzerConfig, Output, Summary, WindowReport};
use crate::inference::{Manifest, Models};
use crate::media::file::{FileSource, MediaEvent};

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
}

pub fn run(args: &ScanArgs) -> Result<()> {
    if args.hop_ms > args.window_ms {
        anyhow::bail!("--hop-ms ({}) must not exceed --window-ms ({})", args.hop_ms, args.window_ms);
    }
    let manifest_path = args.models.clone().unwrap_or_else(Manifest::default_path);
    let manifest = Manifest::load(&manifest_path)?;
    let mut models = Models::load(&manifest)?;
    let mut source = FileSource::open(&args.file, args.audio.as_deref())?;
    let info = source.info().clone();
    let cfg = AnalyzerConfig {
        detect_every: args.detect_every,
        frame_stride: args.stride,
        window_us: args.window_ms as i64 * 1000,
        hop_us: args.hop_ms as i64 * 1000,
        expect_audio: info.has_audio,
        frame_reports: args.frames,
        ..AnalyzerConfig::default()
    };
    let mut analyzer = Analyzer::new(cfg, &models);
    let progress = progress_bar(info.duration_us);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
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
    loop {
        let event = source.next_event().with_context(|| format!("decoding {}", args.file.display()))?;
        match event {
            None => break,
            Some(MediaEvent::Audio(chunk)) => analyzer.push_audio(chunk),
            Some(MediaEvent::Video(frame)) => {
                progress.set_position(frame.pts_us.max(0) as u64);
                analyzer.push_video(frame, &mut models)?;
            }
        }
        while let Some(output) = analyzer.poll_output() {
            progress.suspend(|| print_output(&mut out, &output, args.json))?;
        }
    }
    analyzer.finish();
    while let Some(output) = analyzer.poll_output() {
        print_output(&mut out, &output, args.json)?;
    }
    progress.finish_and_clear();
    print_summary(&mut out, &analyzer.summary(), source.decode_errors(), args.json)?;
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
        writeln!(
            out,
            "[{:8.2} - {:8.2} s] {face}  {mouth}  {sync}{audio}",
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
    })
}

fn print_summary(out: &mut impl Write, s: &Summary, decode_errors: u64, json: bool) -> std::io::Result<()> {
    if json {
        let v = json!({
            "type": "summary",
            "frames": s.frames,
            "analysed_frames": s.analysed_frames,
            "face_ratio": round3(s.face_ratio()),
            "audio_ratio": if s.analysed_frames == 0 { 0.0 } else { round3(s.audio_frames as f32 / s.analysed_frames as f32) },
            "av_offset_ms": s.sync.map(|e| e.offset_ms.round() as i64),
            "sync_confidence": s.sync.map_or(0.0, |e| round3(e.confidence)),
            "windows": s.windows,
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
