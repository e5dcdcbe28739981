//! `deepfake-guard calibrate RECORDING...`: set the temporal head's operating thresholds from the user's own
//! genuine recordings, so that the share of their windows at or above the alert threshold stays under a
//! target; written as `calibration.json` beside the manifest, which `scan`, `eval` and `join` then apply
//! (`inference::calibration`).
//!
//! Each recording goes through the same file analysis as `scan` (its default windows: 3.2 s every 1.6 s) with
//! the manifest's thresholds as shipped; every judged window's head score is kept. The thresholds only ever
//! move up from the manifest's. What the lip-sync estimator measured on the recordings is recorded too, since
//! an alert needs it to agree with the head.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;
use deepfake_guard_plugin_api::messages::{NotJudged, State};
use serde_json::{Value, json};

use super::dataset::{analyse_file, run_parallel};
use super::features::default_jobs;
use super::scan::window_score;
use crate::analysis::{AnalyzerConfig, Output, VerdictConfig, VerdictMachine};
use crate::inference::calibration::{self, Calibration, Thresholds, choose, share_at_or_above};
use crate::inference::{Manifest, TemporalHead};

/// `suspicious` is set at this many times the alert target (a looser quantile).
const SUSPICIOUS_TARGET_FACTOR: f64 = 5.0;
/// Lip-sync confidence from which the estimator's offset corroborates a high head score (the analyser's
/// `CORROBORATION_MIN_CONFIDENCE`, src/analysis/participant.rs).
const CORROBORATION_MIN_CONFIDENCE: f32 = 0.2;
/// The corroborating offset is this many times the analyser's natural offset (`CORROBORATION_OFFSET_FACTOR`).
const CORROBORATION_OFFSET_FACTOR: f32 = 2.0;

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The user's own genuine recordings (anything FFmpeg reads: exported meetings with their face and
    /// voice). Every one must be genuine: a fake among them teaches the guard to let such fakes pass.
    #[arg(value_name = "RECORDING")]
    pub recordings: Vec<PathBuf>,
    /// A text file listing recordings, one path per line (relative to the list's folder; `#` comments). An
    /// `eval` clip list works too: only its genuine lines are used.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Model manifest (default: models/manifest.json of this installation). The calibration is made for its
    /// temporal head, as shipped (a calibration already beside it is not applied while calibrating).
    #[arg(long, value_name = "MANIFEST")]
    pub models: Option<PathBuf>,
    /// Largest share of the recordings' analysis windows that may score at or above the alert threshold
    /// (0.0001 to 0.2). `suspicious` is set at 5 times it. Needs at least 1 / target judged windows.
    #[arg(long, default_value_t = 0.01, value_parser = parse_target)]
    pub target_window_fpr: f64,
    /// Where to write the calibration (default: calibration.json beside the manifest, where `scan`, `eval`
    /// and `join` look for it; elsewhere, point DEEPFAKE_GUARD_CALIBRATION at it).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Recordings analysed at once (each thread loads its own models).
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    /// The highest alert threshold calibration may set (0.5 to 1.0). Above it the head would flag next to
    /// nothing for this person: that is not a calibration but a head that is wrong on them, so by default
    /// nothing is written; raise it to accept that trade knowingly.
    #[arg(long, default_value_t = 0.99, value_parser = parse_max_threshold)]
    pub max_threshold: f32,
    /// Print the calibration written (JSON) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_target(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0001..=0.2).contains(&v) {
        return Err(format!("{v} is outside 0.0001..0.2 (a share of windows: 0.01 = 1 %)"));
    }
    Ok(v)
}

fn parse_max_threshold(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.5..=1.0).contains(&v) {
        return Err(format!("{v} is outside 0.5..1.0"));
    }
    Ok(v)
}

/// One recording to calibrate on.
#[derive(Clone, Debug)]
struct Recording {
    name: String,
    path: PathBuf,
}

/// One analysis window, as far as calibration needs it (enough to replay the verdict state machine).
#[derive(Clone, Copy, Debug)]
struct Win {
    face_ratio: f32,
    audio_ratio: f32,
    score: Option<f32>,
    corroborated: bool,
    unjudged: Option<NotJudged>,
    /// The lip-sync estimate (offset ms, confidence), if any.
    sync: Option<(f32, f32)>,
}

/// What one recording gave.
#[derive(Clone, Debug)]
struct Analysed {
    windows: Vec<Win>,
    seconds: f64,
    alerts_raised: u32,
    decode_errors: u64,
    /// Why no window was judged, when none was.
    unjudged_reason: Option<String>,
    /// The verdict settings the analysis used.
    verdict: Option<VerdictConfig>,
}

impl Analysed {
    fn scores(&self) -> impl Iterator<Item = f32> + '_ {
        self.windows.iter().filter_map(|w| w.score)
    }
}

pub fn run(args: &CalibrateArgs) -> Result<()> {
    let recordings = recordings(args)?;
    let manifest_path = args.models.clone().unwrap_or_else(Manifest::default_path);
    // The thresholds as shipped: a calibration is always made from them, never on top of an older one.
    let manifest = Manifest::load_uncalibrated(&manifest_path)?;
    let entry = manifest.entry(TemporalHead::ROLE).map_err(|_| {
        anyhow::anyhow!("{}: no temporal head (role `temporal_head`) to calibrate", manifest_path.display())
    })?;
    let head_sha256 = entry.sha256.trim().to_ascii_lowercase();
    let shipped = Thresholds::of(
        entry
            .head
            .as_ref()
            .with_context(|| format!("{}: the temporal head has no `head` settings", manifest_path.display()))?,
    );
    let out_path = args.out.clone().unwrap_or_else(|| calibration::default_path(&manifest.dir));
    let target = args.target_window_fpr;
    let total = recordings.len();
    eprintln!(
        "calibrate: {total} recording{} for the temporal head {}… of {}, shipped threshold {}, target {} of windows",
        if total == 1 { "" } else { "s" },
        &head_sha256[..12.min(head_sha256.len())],
        manifest_path.display(),
        shipped.threshold,
        percent(target)
    );
    let done = AtomicUsize::new(0);
    let results = run_parallel(&recordings, args.jobs, &manifest, "calibrate", |rec, models| {
        let r = analyse(rec, models);
        let k = done.fetch_add(1, Ordering::Relaxed) + 1;
        match &r {
            Ok(a) if a.unjudged_reason.is_none() => {
                let scores: Vec<f32> = a.scores().collect();
                let top = scores.iter().copied().fold(0.0f32, f32::max);
                eprintln!(
                    "calibrate [{k}/{total}] {}: {:.1} min, {} windows judged, highest p(fake) {top:.3}, {} at or \
                     above the shipped threshold{}",
                    rec.name,
                    a.seconds / 60.0,
                    scores.len(),
                    scores.iter().filter(|s| **s >= shipped.threshold).count(),
                    if a.decode_errors > 0 { format!(", {} decode errors", a.decode_errors) } else { String::new() }
                );
            }
            Ok(a) => eprintln!(
                "calibrate [{k}/{total}] {}: SKIPPED, no window could be judged ({})",
                rec.name,
                a.unjudged_reason.as_deref().unwrap_or_default()
            ),
            Err(e) => eprintln!("calibrate [{k}/{total}] {}: SKIPPED, cannot be analysed: {}", rec.name, error_text(e)),
        }
        Ok(r.map_err(|e| error_text(&e)))
    })?;

    let mut used: Vec<(&Recording, Analysed)> = Vec::new();
    let mut skipped: Vec<Value> = Vec::new();
    for (rec, r) in recordings.iter().zip(results) {
        match r {
            Ok(a) if a.unjudged_reason.is_none() => used.push((rec, a)),
            Ok(a) => skipped.push(json!({"recording": rec.name, "reason": a.unjudged_reason})),
            Err(e) => skipped.push(json!({"recording": rec.name, "reason": e})),
        }
    }
    if used.is_empty() {
        bail!(
            "none of the {total} recording{} gave a window that could be judged (see the lines above): calibration \
             needs genuine recordings with a face in view and speech",
            if total == 1 { "" } else { "s" }
        );
    }
    let scores: Vec<f32> = used.iter().flat_map(|(_, a)| a.scores()).collect();
    let minutes: f64 = used.iter().map(|(_, a)| a.seconds).sum::<f64>() / 60.0;
    let needed = ((1.0 / target) - 1e-9).ceil() as usize;
    if scores.len() < needed {
        let per_minute = scores.len() as f64 / minutes.max(1e-9);
        let more = (needed - scores.len()) as f64 / per_minute.max(1e-9);
        bail!(
            "too few windows for a target of {}: {} judged windows from {:.1} min of recordings, at least {needed} \
             (1 / target) are needed; add about {:.1} more minutes of genuine recordings with your face in view and \
             speech (at this rate, {per_minute:.0} judged windows a minute), or loosen --target-window-fpr to {} or more",
            percent(target),
            scores.len(),
            minutes,
            more.max(0.1),
            round(1.0 / scores.len() as f64, 4)
        );
    }
    let suspicious_target = (target * SUSPICIOUS_TARGET_FACTOR).min(1.0);
    let Some(chosen) = choose(&scores, target, suspicious_target, &shipped) else {
        let at_one = share_at_or_above(&scores, 1.0);
        bail!(
            "{} of these genuine windows score p(fake) 1.0, more than the target of {}: no threshold can keep the \
             head's false alerts on them under the target, so nothing was written. The head is wrong on these \
             recordings in a way calibration cannot fix (check that they are genuine, with the face in view)",
            percent(at_one),
            percent(target)
        );
    };
    if chosen.threshold > args.max_threshold {
        bail!(
            "to keep these genuine windows under the target of {} the alert threshold would have to be {} ({} of \
             them score at or above the shipped {}), above --max-threshold {}: at that level the head would flag \
             next to nothing for this person, so nothing was written. The head is wrong on these recordings in a \
             way calibration cannot fix (check that they are genuine, with the face in view; alerts still need the \
             lip-sync estimator to agree). --max-threshold 1 accepts it anyway",
            percent(target),
            chosen.threshold,
            percent(share_at_or_above(&scores, shipped.threshold)),
            shipped.threshold,
            args.max_threshold
        );
    }

    // The alerts these recordings raise under scan's rules, with the shipped and the calibrated thresholds.
    let natural = AnalyzerConfig::default().natural_offset_ms;
    let corroboration_offset = (CORROBORATION_OFFSET_FACTOR * natural).max(10.0);
    // The state machine's settings the analysis ran with (scan's), the thresholds replaced.
    let verdict_base = used.iter().find_map(|(_, a)| a.verdict.clone()).unwrap_or_default();
    let alerts =
        |t: &Thresholds| -> u32 { used.iter().map(|(_, a)| replay_alerts(&a.windows, t, &verdict_base)).sum() };
    let (alerts_shipped, alerts_calibrated) = (alerts(&shipped), alerts(&chosen));
    let alerts_during_analysis: u32 = used.iter().map(|(_, a)| a.alerts_raised).sum();
    if alerts_during_analysis != alerts_shipped {
        log::debug!("replayed {alerts_shipped} alerts, the analysis raised {alerts_during_analysis}");
    }
    let judged: Vec<&Win> = used.iter().flat_map(|(_, a)| a.windows.iter().filter(|w| w.score.is_some())).collect();
    let mut offsets: Vec<f32> = judged
        .iter()
        .filter_map(|w| w.sync.filter(|s| s.1 >= CORROBORATION_MIN_CONFIDENCE).map(|s| s.0.abs()))
        .collect();
    offsets.sort_by(f32::total_cmp);
    let corroborated = judged.iter().filter(|w| w.corroborated).count();
    let corroborated_high =
        |t: f32| judged.iter().filter(|w| w.corroborated && w.score.is_some_and(|s| s >= t)).count();
    let p99 = nearest_rank(&offsets, 0.99);
    let mut warnings: Vec<String> = Vec::new();
    if p99.is_some_and(|p| p > corroboration_offset) {
        warnings.push(format!(
            "the lip-sync estimator measured offsets beyond {corroboration_offset:.0} ms on these genuine recordings \
             (p99 |offset| {:.0} ms; {} of {} judged windows corroborated): there it agrees with the head, the second \
             detector an alert needs. That limit is not configurable yet, so calibration does not move it: check the \
             recordings' audio/video sync (export settings, a Bluetooth headset), and if they are in sync the \
             estimator is locking onto a wrong peak on this face",
            p99.unwrap_or_default(),
            corroborated,
            judged.len()
        ));
    }
    if chosen.threshold > shipped.threshold && chosen.threshold >= 0.95 {
        warnings.push(format!(
            "the alert threshold had to go up to {}: the head scores these genuine recordings very high, and will \
             miss most fakes of this person that are not also caught by the lip-sync rule",
            chosen.threshold
        ));
    }
    let achieved = share_at_or_above(&scores, chosen.threshold);
    let top = scores.iter().copied().fold(0.0f32, f32::max);
    let lipsync = json!({
        "min_confidence": round(CORROBORATION_MIN_CONFIDENCE as f64, 3),
        "corroboration_offset_ms": corroboration_offset,
        "windows_measured": offsets.len(),
        "abs_offset_ms_p50": nearest_rank(&offsets, 0.5).map(|x| round(x as f64, 1)),
        "abs_offset_ms_p95": nearest_rank(&offsets, 0.95).map(|x| round(x as f64, 1)),
        "abs_offset_ms_p99": p99.map(|x| round(x as f64, 1)),
        "abs_offset_ms_max": offsets.last().map(|x| round(*x as f64, 1)),
        "corroborated_windows": corroborated,
        "corroborated_share": round(corroborated as f64 / judged.len().max(1) as f64, 4),
        "corroborated_at_or_above_threshold_shipped": corroborated_high(shipped.threshold),
        "corroborated_at_or_above_threshold_calibrated": corroborated_high(chosen.threshold),
    });
    let mut details = serde_json::Map::new();
    for (k, v) in [
        ("manifest", json!(manifest_path.display().to_string())),
        ("head_file", json!(manifest.file_path(entry).display().to_string())),
        ("suspicious_target_window_fpr", json!(round(suspicious_target, 6))),
        ("max_threshold", json!(round(args.max_threshold as f64, 4))),
        ("recordings", json!(used.iter().map(|(r, _)| r.name.clone()).collect::<Vec<_>>())),
        ("recordings_used", json!(used.len())),
        ("recordings_skipped", json!(skipped)),
        ("minutes", json!(round(minutes, 2))),
        ("windows", json!(scores.len())),
        ("windows_needed", json!(needed)),
        ("analysis", json!("scan's defaults: 3.2 s windows every 1.6 s, the manifest's thresholds as shipped")),
        ("achieved_window_fpr", json!(round(achieved, 6))),
        ("achieved_suspicious_window_fpr", json!(round(share_at_or_above(&scores, chosen.suspicious), 6))),
        ("shipped_window_fpr", json!(round(share_at_or_above(&scores, shipped.threshold), 6))),
        ("shipped_suspicious_window_fpr", json!(round(share_at_or_above(&scores, shipped.suspicious), 6))),
        ("max_window_score", json!(round(top as f64, 4))),
        ("alerts_raised_shipped", json!(alerts_shipped)),
        ("alerts_raised_calibrated", json!(alerts_calibrated)),
        ("lipsync", lipsync),
        ("warnings", json!(warnings)),
    ] {
        details.insert(k.into(), v);
    }
    let cal = Calibration {
        version: calibration::VERSION,
        created: utc_now_rfc3339(),
        head_sha256: head_sha256.clone(),
        target_window_fpr: target,
        thresholds: chosen,
        shipped,
        details,
    };
    let replaced = out_path.exists();
    write_atomically(&out_path, &(serde_json::to_string_pretty(&cal)? + "\n"))?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&cal)?);
    } else {
        print_table(&cal, &scores, used.len(), skipped.len(), minutes);
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let looked_at = calibration::Source::Auto.resolve(&manifest.dir);
    let picked_up = looked_at.as_deref().is_some_and(|p| same_file(p, &out_path));
    eprintln!(
        "{} {}{}",
        if replaced { "replaced" } else { "wrote" },
        out_path.display(),
        if picked_up {
            format!(
                ": `scan`, `eval` and `join` with this manifest now apply it (for this head only); `--no-calibration` \
                 or {}=off ignores it",
                calibration::ENV
            )
        } else {
            format!(
                ": NOT where `scan`, `eval` and `join` look ({}); move it there, or set {}={}",
                looked_at.map_or("calibration is off".into(), |p| p.display().to_string()),
                calibration::ENV,
                out_path.display()
            )
        }
    );
    Ok(())
}

/// The recordings named on the command line and in `--list`.
fn recordings(args: &CalibrateArgs) -> Result<Vec<Recording>> {
    let mut out: Vec<Recording> =
        args.recordings.iter().map(|p| Recording { name: p.display().to_string(), path: p.clone() }).collect();
    if let Some(list) = &args.list {
        let text =
            std::fs::read_to_string(list).with_context(|| format!("reading recording list {}", list.display()))?;
        let dir = list.parent().unwrap_or(Path::new("."));
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || (i == 0 && line.to_ascii_lowercase().starts_with("path,")) {
                continue;
            }
            let mut cols = line.split(',').map(str::trim);
            let name = cols.next().unwrap_or_default();
            if let Some(label) = cols.next().filter(|l| !l.is_empty()) {
                match label.to_ascii_lowercase().as_str() {
                    "0" | "genuine" | "real" => {}
                    "1" | "fake" => {
                        eprintln!("calibrate: {}:{}: {name} is labelled fake: not used", list.display(), i + 1);
                        continue;
                    }
                    other => bail!("{}:{}: label `{other}` is not 0/1 (or genuine/fake)", list.display(), i + 1),
                }
            }
            let p = Path::new(name);
            out.push(Recording { name: name.to_string(), path: if p.is_absolute() { p.into() } else { dir.join(p) } });
        }
    }
    if out.is_empty() {
        bail!(
            "no recordings given: name them (deepfake-guard calibrate a.mp4 b.webm ...) or list them with --list FILE"
        );
    }
    Ok(out)
}

/// Run one recording through the file analysis `scan` uses.
fn analyse(rec: &Recording, models: &mut crate::inference::Models) -> Result<Analysed> {
    let mut windows = Vec::new();
    let mut alerts_raised = 0;
    let mut last_state = None;
    let (summary, decode_errors, info) = analyse_file(
        &rec.path,
        None,
        AnalyzerConfig::default(),
        models,
        |o| {
            if let Output::Window(w) = o {
                let score = window_score(&w);
                // As the analyser decides it: a window with a face and sound whose score does not count.
                let unjudged = (w.head.is_some() && score.is_none() && w.face() && w.audio_ratio > 0.0)
                    .then_some(NotJudged::TooFewFrames);
                windows.push(Win {
                    face_ratio: w.face_ratio,
                    audio_ratio: w.audio_ratio,
                    score,
                    corroborated: w.corroborated,
                    unjudged,
                    sync: w.sync.map(|s| (s.offset_ms, s.confidence)),
                });
                if w.state == Some(State::Alert) && last_state != Some(State::Alert) {
                    alerts_raised += 1;
                }
                last_state = w.state;
            }
            Ok(())
        },
        |_| {},
    )
    .with_context(|| format!("analysing {}", rec.path.display()))?;
    let judged = windows.iter().any(|w| w.score.is_some());
    let unjudged_reason = (!judged).then(|| {
        summary.no_verdict_reason().unwrap_or_else(|| {
            if summary.face_ratio() < 0.5 {
                format!("a face in only {:.0} % of the frames", 100.0 * summary.face_ratio())
            } else {
                "no speech: windows over silence are not judged".into()
            }
        })
    });
    Ok(Analysed {
        windows,
        seconds: info.duration_us.map_or(summary.analysed_frames as f64 * 0.04, |d| d as f64 / 1e6),
        alerts_raised,
        decode_errors,
        unjudged_reason,
        verdict: summary.verdict_config.clone(),
    })
}

/// Alerts the verdict state machine raises over `windows` with thresholds `t` (and `base`'s counts).
fn replay_alerts(windows: &[Win], t: &Thresholds, base: &VerdictConfig) -> u32 {
    let mut m = VerdictMachine::new(VerdictConfig {
        alert: t.threshold,
        suspicious: t.suspicious,
        clear: t.clear,
        strong: base.strong.max(t.threshold),
        ..base.clone()
    });
    let (mut raised, mut last) = (0, None);
    for w in windows {
        let s = m.update(w.face_ratio, w.audio_ratio, w.score, w.corroborated, w.unjudged);
        if s == Some(State::Alert) && last != Some(State::Alert) {
            raised += 1;
        }
        last = s;
    }
    raised
}

fn print_table(cal: &Calibration, scores: &[f32], used: usize, skipped: usize, minutes: f64) {
    let d = &cal.details;
    let (s, c) = (cal.shipped, cal.thresholds);
    println!(
        "calibration for the temporal head {}… ({})",
        &cal.head_sha256[..12.min(cal.head_sha256.len())],
        d["manifest"].as_str().unwrap_or_default()
    );
    println!(
        "recordings: {used} used ({minutes:.1} min, {} judged windows){}",
        scores.len(),
        if skipped > 0 { format!(", {skipped} skipped") } else { String::new() }
    );
    println!("{:<12} {:>9} {:>11}   {:>22} {:>8}", "", "shipped", "calibrated", "your windows at or above", "target");
    println!(
        "{:<12} {:>9.4} {:>11.4}   {:>9} -> {:>9} {:>8}",
        "threshold",
        s.threshold,
        c.threshold,
        percent(share_at_or_above(scores, s.threshold)),
        percent(share_at_or_above(scores, c.threshold)),
        percent(cal.target_window_fpr)
    );
    println!(
        "{:<12} {:>9.4} {:>11.4}   {:>9} -> {:>9} {:>8}",
        "suspicious",
        s.suspicious,
        c.suspicious,
        percent(share_at_or_above(scores, s.suspicious)),
        percent(share_at_or_above(scores, c.suspicious)),
        percent(d["suspicious_target_window_fpr"].as_f64().unwrap_or_default())
    );
    println!("{:<12} {:>9.4} {:>11.4}", "clear", s.clear, c.clear);
    println!("highest window p(fake): {}", d["max_window_score"]);
    let l = &d["lipsync"];
    let ms = |k: &str| l[k].as_f64().map_or("n/a".into(), |x| format!("{x:.0} ms"));
    println!(
        "lip sync ({} judged windows with confidence >= {}): |offset| median {}, p95 {}, p99 {}, max {}; corroborates \
         beyond {:.0} ms: {} windows",
        l["windows_measured"],
        l["min_confidence"],
        ms("abs_offset_ms_p50"),
        ms("abs_offset_ms_p95"),
        ms("abs_offset_ms_p99"),
        ms("abs_offset_ms_max"),
        l["corroboration_offset_ms"].as_f64().unwrap_or_default(),
        l["corroborated_windows"]
    );
    println!(
        "alerts raised on these recordings (scan's rules): {} with the shipped thresholds, {} calibrated",
        d["alerts_raised_shipped"], d["alerts_raised_calibrated"]
    );
    let _ = std::io::stdout().flush();
}

/// An error and its causes, skipping a cause whose text is already quoted (as `main` prints errors).
fn error_text(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg
}

/// The value at quantile `q` of sorted `v` (nearest rank), `None` when empty.
fn nearest_rank(sorted: &[f32], q: f64) -> Option<f32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn percent(x: f64) -> String {
    let p = x * 100.0;
    if p != 0.0 && p < 0.1 { format!("{p:.3} %") } else { format!("{p:.1} %") }
}

fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Write through a temporary file beside `path`, then rename: a reader never sees half a calibration.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "calibration.json".into());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    rfc3339(secs)
}

fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(nearest_rank(&v, 0.99), Some(99.0));
        assert_eq!(nearest_rank(&v, 0.5), Some(50.0));
        assert_eq!(nearest_rank(&[3.0], 0.99), Some(3.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn targets_are_checked() {
        assert!(parse_target("0.01").is_ok());
        assert!(parse_target("0").is_err() && parse_target("0.5").is_err() && parse_target("x").is_err());
    }

    #[test]
    fn replayed_alerts_follow_the_thresholds() {
        let w = |score: f32| Win {
            face_ratio: 1.0,
            audio_ratio: 1.0,
            score: Some(score),
            corroborated: true,
            unjudged: None,
            sync: None,
        };
        let windows = [w(0.1), w(0.8), w(0.85), w(0.1), w(0.1), w(0.9), w(0.92), w(0.1)];
        let base = VerdictConfig { raise_windows: 2, clear_windows: 2, ..VerdictConfig::default() };
        let shipped = Thresholds { threshold: 0.777, suspicious: 0.4662, clear: 0.4662 };
        assert_eq!(replay_alerts(&windows, &shipped, &base), 2);
        let raised = Thresholds { threshold: 0.86, suspicious: 0.5, clear: 0.5 };
        assert_eq!(replay_alerts(&windows, &raised, &base), 1);
    }
}
