//! `deepfake-guard eval <list.csv>`: the detector's figures on any labelled clip list, through the same
//! runtime as `scan` (default windows, the manifest's temporal head and operating point).
//!
//! Clip score = mean window p(fake); clip verdict as `scan` gives it. Figures: AUC (clips and windows),
//! accuracy / recall / false-positive rate at the operating threshold, recall on lip-sync drift of 160 ms or
//! more, offset error where the list gives the true offset (the product's estimate: the lip-sync estimator's,
//! the head's where the estimator has none; each alone too), and false alerts per hour on genuine clips (an
//! alert raised = a participant entering `alert`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use deepfake_guard_plugin_api::messages::State;
use serde_json::{Value, json};

use super::dataset::{LabelledClip, analyse_file, read_clip_list, run_parallel};
use super::features::default_jobs;
use super::scan::window_score;
use crate::analysis::lipsync::SyncEstimate;
use crate::analysis::{AnalyzerConfig, Output, Verdict};
use crate::inference::Manifest;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Clip list: `path,label[,offset_ms[,group]]` per line (label 0 genuine / 1 fake), paths relative to
    /// the list's folder.
    pub list: PathBuf,
    /// Model manifest (default: models/manifest.json of this installation).
    #[arg(long, value_name = "MANIFEST")]
    pub models: Option<PathBuf>,
    /// Print the figures as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write one JSON line per clip (score, verdict, offsets, window scores) to this file.
    #[arg(long, value_name = "FILE")]
    pub per_clip: Option<PathBuf>,
    /// Clips analysed at once (each thread loads its own models).
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Judge as the live guard does with its default config (`join`'s window hop and alert rules) instead
    /// of as `scan` does (a window every 1.6 s).
    #[arg(long)]
    pub live: bool,
    /// Use the manifest's thresholds as shipped, ignoring a calibration beside it (`deepfake-guard calibrate`).
    #[arg(long)]
    pub no_calibration: bool,
}

/// What one clip gave.
#[derive(Clone, Debug)]
struct ClipResult {
    score: Option<f32>,
    verdict: Option<Verdict>,
    window_scores: Vec<f32>,
    /// Every window's score, lip-sync measurements and state (for `--per-clip`).
    windows: Vec<Value>,
    /// The lip-sync estimate over the whole clip.
    sync: Option<SyncEstimate>,
    head_offset_ms: Option<f32>,
    lipsync_offset_ms: Option<f32>,
    alerts_raised: u32,
    /// Media time (from the clip's start) at the end of the window that first raised `alert`.
    first_alert_s: Option<f64>,
    alert_windows: u64,
    seconds: f64,
    decode_errors: u64,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let clips = read_clip_list(&args.list)?;
    let manifest_path = args.models.clone().unwrap_or_else(Manifest::default_path);
    let manifest = super::scan::load_manifest(&manifest_path, args.no_calibration)?;
    if !manifest.models.contains_key(crate::inference::TemporalHead::ROLE) {
        bail!("{}: no temporal head (role `temporal_head`) to evaluate", manifest_path.display());
    }
    let results = run_parallel(&clips, args.jobs, &manifest, "eval", |clip, models| {
        let mut r = ClipResult {
            score: None,
            verdict: None,
            window_scores: Vec::new(),
            windows: Vec::new(),
            sync: None,
            head_offset_ms: None,
            lipsync_offset_ms: None,
            alerts_raised: 0,
            first_alert_s: None,
            alert_windows: 0,
            seconds: 0.0,
            decode_errors: 0,
        };
        let mut offsets = Vec::new();
        let mut last_state = None;
        let analysed = analyse_file(
            &clip.path,
            None,
            if args.live {
                crate::guard::analyzer_config(&crate::guard::GuardConfig::default())
            } else {
                AnalyzerConfig::default()
            },
            models,
            |o| {
                if let Output::Window(w) = o {
                    if args.per_clip.is_some() {
                        r.windows.push(json!({
                            "end_s": w.end_us as f64 / 1e6, "score": w.score, "corroborated": w.corroborated,
                            "state": w.state.map(super::scan::state_str), "sync": w.sync.map(sync_json),
                            "earlier": w.sync_earlier.map(sync_json),
                            "recent": w.sync_recent.map(|(e, span)| json!({"span_s": span as f64 / 1e6, "est": sync_json(e)})),
                        }));
                    }
                    if let Some(s) = window_score(&w) {
                        r.window_scores.push(s);
                        offsets.extend(w.head.map(|h| h.offset_ms));
                    }
                    if w.state == Some(State::Alert) && last_state != Some(State::Alert) {
                        r.alerts_raised += 1;
                        r.first_alert_s.get_or_insert(w.end_us as f64 / 1e6);
                    }
                    last_state = w.state;
                }
                Ok(())
            },
            |_| {},
        )
        .with_context(|| format!("analysing {}", clip.path.display()));
        // A clip that cannot be read is reported and left out, not the end of a long evaluation.
        let (summary, errors, info) = match analysed {
            Ok(x) => x,
            Err(e) => {
                log::warn!("{e:#}: left out of the figures");
                return Ok(None);
            }
        };
        r.score = summary.score();
        r.verdict = summary.verdict();
        r.head_offset_ms = median(&mut offsets);
        r.lipsync_offset_ms = summary.sync.map(|s| s.offset_ms);
        r.sync = summary.sync;
        r.alert_windows = summary.alert_windows;
        r.seconds = info.duration_us.map_or(summary.analysed_frames as f64 * 0.04, |d| d as f64 / 1e6);
        r.decode_errors = errors;
        Ok(Some(r))
    })?;
    let failed: Vec<&str> =
        clips.iter().zip(&results).filter(|(_, r)| r.is_none()).map(|(c, _)| c.name.as_str()).collect();
    if failed.len() == clips.len() {
        bail!("{}: no clip could be analysed (see the warnings above)", args.list.display());
    }
    let (clips, results): (Vec<LabelledClip>, Vec<ClipResult>) =
        clips.iter().cloned().zip(results).filter_map(|(c, r)| r.map(|r| (c, r))).unzip();
    let threshold = manifest.entry(crate::inference::TemporalHead::ROLE)?.head.as_ref().map_or(0.5, |h| h.threshold);
    let mut figures = figures(&clips, &results, threshold);
    figures["failed_clips"] = json!(failed);
    figures["calibration"] = json!(manifest.calibration.as_ref().map(|c| c.path.display().to_string()));
    if let Some(path) = &args.per_clip {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for (c, r) in clips.iter().zip(&results) {
            writeln!(
                f,
                "{}",
                json!({"path": c.name, "label": c.fake as u8, "offset_ms": c.offset_ms, "group": c.group,
                       "score": r.score, "verdict": r.verdict.map(|v| v.as_str()),
                       "head_offset_ms": r.head_offset_ms, "lipsync_offset_ms": r.lipsync_offset_ms,
                       "alerts_raised": r.alerts_raised, "first_alert_s": r.first_alert_s,
                       "window_scores": r.window_scores, "sync": r.sync.map(sync_json), "windows": r.windows,
                       "decode_errors": r.decode_errors})
            )?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    Ok(())
}

/// A lip-sync estimate as JSON (per-clip records).
fn sync_json(e: SyncEstimate) -> Value {
    json!({"offset_ms": e.offset_ms, "confidence": e.confidence, "peak": e.peak, "margin": e.margin,
           "in_sync_min": e.in_sync_min, "interior": e.interior})
}

fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

/// Area under the ROC curve (ties count half), `None` without both classes.
pub fn auc(scored: &[(f32, bool)]) -> Option<f64> {
    let pos = scored.iter().filter(|s| s.1).count();
    let neg = scored.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut v = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    // rank sum of the positives, average ranks for ties
    let (mut rank_sum, mut i) = (0.0f64, 0usize);
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += v[i..=j].iter().filter(|s| s.1).count() as f64 * avg;
        i = j + 1;
    }
    Some((rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64)
}

fn ratio(num: usize, den: usize) -> Value {
    if den == 0 { Value::Null } else { json!((num as f64 / den as f64 * 10000.0).round() / 10000.0) }
}

fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

fn figures(clips: &[LabelledClip], results: &[ClipResult], threshold: f32) -> Value {
    let predicted_fake = |r: &ClipResult| r.verdict == Some(Verdict::Fake);
    let clip_scores: Vec<(f32, bool)> =
        clips.iter().zip(results).filter_map(|(c, r)| r.score.map(|s| (s, c.fake))).collect();
    let window_scores: Vec<(f32, bool)> =
        clips.iter().zip(results).flat_map(|(c, r)| r.window_scores.iter().map(move |s| (*s, c.fake))).collect();
    let n_fake = clips.iter().filter(|c| c.fake).count();
    let n_genuine = clips.len() - n_fake;
    let correct = clips.iter().zip(results).filter(|(c, r)| predicted_fake(r) == c.fake).count();
    let caught = clips.iter().zip(results).filter(|(c, r)| c.fake && predicted_fake(r)).count();
    let false_pos = clips.iter().zip(results).filter(|(c, r)| !c.fake && predicted_fake(r)).count();
    let drift: Vec<bool> = clips
        .iter()
        .zip(results)
        .filter(|(c, _)| c.fake && c.offset_ms.is_some_and(|o| o.abs() >= 160.0))
        .map(|(_, r)| predicted_fake(r))
        .collect();
    let gen_windows: Vec<f32> = window_scores.iter().filter(|s| !s.1).map(|s| s.0).collect();
    let fake_windows: Vec<f32> = window_scores.iter().filter(|s| s.1).map(|s| s.0).collect();
    let errs = |get: &dyn Fn(&ClipResult) -> Option<f32>| -> (Option<f64>, usize) {
        let e: Vec<f64> =
            clips.iter().zip(results).filter_map(|(c, r)| Some((get(r)? - c.offset_ms?).abs() as f64)).collect();
        let n = clips.iter().filter(|c| c.offset_ms.is_some()).count();
        ((!e.is_empty()).then(|| e.iter().sum::<f64>() / e.len() as f64), n - e.len())
    };
    // The product's offset: the lip-sync estimator's, the head's where the estimator has none.
    let (mae, missing) = errs(&|r| r.lipsync_offset_ms.or(r.head_offset_ms));
    let (head_mae, head_missing) = errs(&|r| r.head_offset_ms);
    let (ls_mae, ls_missing) = errs(&|r| r.lipsync_offset_ms);
    let genuine_seconds: f64 = clips.iter().zip(results).filter(|(c, _)| !c.fake).map(|(_, r)| r.seconds).sum();
    let raised: u32 = clips.iter().zip(results).filter(|(c, _)| !c.fake).map(|(_, r)| r.alerts_raised).sum();
    let mut groups: BTreeMap<String, (usize, usize, f64)> = BTreeMap::new();
    for (c, r) in clips.iter().zip(results) {
        let name = c.group.clone().unwrap_or_else(|| if c.fake { "fake".into() } else { "genuine".into() });
        let g = groups.entry(name).or_default();
        g.0 += 1;
        g.1 += predicted_fake(r) as usize;
        g.2 += r.score.unwrap_or(0.0) as f64;
    }
    json!({
        "clips": clips.len(),
        "genuine_clips": n_genuine,
        "fake_clips": n_fake,
        "unscored_clips": results.iter().filter(|r| r.score.is_none()).count(),
        "threshold": threshold,
        "auc": auc(&clip_scores).map(|a| round(a, 4)),
        "accuracy": ratio(correct, clips.len()),
        "recall": ratio(caught, n_fake),
        "false_positive_rate": ratio(false_pos, n_genuine),
        "drift_160ms_recall": ratio(drift.iter().filter(|x| **x).count(), drift.len()),
        "drift_160ms_clips": drift.len(),
        "window_auc": auc(&window_scores).map(|a| round(a, 4)),
        "window_false_positive_rate": ratio(gen_windows.iter().filter(|s| **s >= threshold).count(), gen_windows.len()),
        "window_recall": ratio(fake_windows.iter().filter(|s| **s >= threshold).count(), fake_windows.len()),
        "windows": window_scores.len(),
        "offset_mae_ms": mae.map(|m| round(m, 1)),
        "offset_unmeasured_clips": missing,
        "head_offset_mae_ms": head_mae.map(|m| round(m, 1)),
        "head_offset_unmeasured_clips": head_missing,
        "lipsync_offset_mae_ms": ls_mae.map(|m| round(m, 1)),
        "lipsync_offset_unmeasured_clips": ls_missing,
        "genuine_minutes": round(genuine_seconds / 60.0, 2),
        "alerts_raised_on_genuine": raised,
        "false_alerts_per_hour": if genuine_seconds > 0.0 { json!(round(raised as f64 * 3600.0 / genuine_seconds, 2)) } else { Value::Null },
        "groups": groups.iter().map(|(k, (n, flagged, sum))| (k.clone(), json!({
            "clips": n, "flagged_fake": flagged, "flagged_ratio": ratio(*flagged, *n),
            "mean_score": round(sum / *n as f64, 4)}))).collect::<serde_json::Map<String, Value>>(),
    })
}

fn print_table(f: &Value) {
    let s = |k: &str| match &f[k] {
        Value::Null => "n/a".to_string(),
        v => v.to_string(),
    };
    println!(
        "clips {} ({} genuine, {} fake, {} unscored), threshold {}",
        s("clips"),
        s("genuine_clips"),
        s("fake_clips"),
        s("unscored_clips"),
        s("threshold")
    );
    println!("{:<34} {:>10}", "figure", "value");
    for (label, key) in [
        ("AUC (clips)", "auc"),
        ("accuracy at threshold", "accuracy"),
        ("recall (fakes caught)", "recall"),
        ("false-positive rate (genuine)", "false_positive_rate"),
        ("recall, drift >= 160 ms", "drift_160ms_recall"),
        ("AUC (windows)", "window_auc"),
        ("false-positive rate (windows)", "window_false_positive_rate"),
        ("recall (windows)", "window_recall"),
        ("offset MAE (ms)", "offset_mae_ms"),
        ("  of the lip-sync estimator alone", "lipsync_offset_mae_ms"),
        ("  of the temporal head alone", "head_offset_mae_ms"),
        ("genuine minutes", "genuine_minutes"),
        ("alerts raised on genuine", "alerts_raised_on_genuine"),
        ("false alerts per hour", "false_alerts_per_hour"),
    ] {
        println!("{label:<34} {:>10}", s(key));
    }
    if let Some(failed) = f["failed_clips"].as_array().filter(|a| !a.is_empty()) {
        println!("{:<34} {:>10}", "clips that could not be read", failed.len());
    }
    if let Some(groups) = f["groups"].as_object() {
        println!();
        println!("{:<20} {:>6} {:>12} {:>11}", "group", "clips", "flagged fake", "mean score");
        for (k, g) in groups {
            println!("{k:<20} {:>6} {:>12} {:>11}", g["clips"], g["flagged_fake"], g["mean_score"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::auc;

    #[test]
    fn auc_of_perfect_random_and_inverted_rankings() {
        let perfect = [(0.1, false), (0.2, false), (0.8, true), (0.9, true)];
        assert_eq!(auc(&perfect), Some(1.0));
        let inverted = [(0.9, false), (0.8, false), (0.2, true), (0.1, true)];
        assert_eq!(auc(&inverted), Some(0.0));
        let ties = [(0.5, false), (0.5, true)];
        assert_eq!(auc(&ties), Some(0.5));
        assert_eq!(auc(&[(0.5, true)]), None);
    }
}
