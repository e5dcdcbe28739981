//! A user's calibration of the temporal head's operating point (`calibration.json`, written by
//! `deepfake-guard calibrate` next to the manifest): thresholds raised so that the head's false-alert rate on
//! the user's own genuine recordings stays under a target.
//!
//! It is applied when the manifest is loaded ([`Manifest::load`]), so `scan`, `eval`, `join` and everything
//! else that loads models get it alike, and only when it was made for the very head the manifest names (the
//! head's sha256): a calibration made for another head is ignored with a warning. It can only raise the
//! manifest's thresholds, never lower them. A calibration that cannot be read is ignored with a warning
//! rather than stopping the guard.
//!
//! Where it is looked for: `$DEEPFAKE_GUARD_CALIBRATION` when set (a path; `off` ignores every calibration),
//! else `calibration.json` in the manifest's folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{HeadParams, Manifest};

/// The file name looked for in the manifest's folder.
pub const FILE_NAME: &str = "calibration.json";
/// Environment variable: a calibration file to use instead, or `off` to use none.
pub const ENV: &str = "DEEPFAKE_GUARD_CALIBRATION";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;
/// The manifest role a calibration applies to.
const ROLE: &str = "temporal_head";

/// The head's three thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub threshold: f32,
    pub suspicious: f32,
    pub clear: f32,
}

impl Thresholds {
    pub fn of(p: &HeadParams) -> Self {
        Thresholds { threshold: p.threshold, suspicious: p.suspicious, clear: p.clear }
    }

    /// In [0, 1], with `suspicious` and `clear` not above `threshold` (what the head loader accepts).
    pub fn valid(&self) -> bool {
        let in01 = |x: f32| (0.0..=1.0).contains(&x);
        in01(self.threshold)
            && in01(self.suspicious)
            && in01(self.clear)
            && self.suspicious <= self.threshold
            && self.clear <= self.threshold
    }

    /// These thresholds over `base`, each only upwards: never below `base`, and `suspicious` and `clear` never
    /// above the resulting `threshold`.
    pub fn raised_over(&self, base: &Thresholds) -> Thresholds {
        let threshold = self.threshold.max(base.threshold);
        Thresholds {
            threshold,
            suspicious: self.suspicious.max(base.suspicious).min(threshold),
            clear: self.clear.max(base.clear).min(threshold),
        }
    }
}

/// The contents of `calibration.json`. The loader reads `version`, `head_sha256` and `thresholds`; the rest
/// records how it was made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibration {
    pub version: u32,
    /// When it was made (UTC, RFC 3339).
    pub created: String,
    /// sha256 of the temporal head it was made for (the manifest entry's `sha256`).
    pub head_sha256: String,
    /// The target share of genuine windows at or above `thresholds.threshold`.
    pub target_window_fpr: f64,
    /// The thresholds to use.
    pub thresholds: Thresholds,
    /// The manifest's thresholds when it was made.
    pub shipped: Thresholds,
    /// Everything else the calibration recorded (recordings, windows, minutes, achieved rates, lip sync).
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// A calibration that was applied to a manifest.
#[derive(Clone, Debug)]
pub struct Applied {
    pub path: PathBuf,
    /// The manifest's own thresholds, and those in use now.
    pub shipped: Thresholds,
    pub thresholds: Thresholds,
}

/// Where to look for a calibration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `$DEEPFAKE_GUARD_CALIBRATION`, else `calibration.json` beside the manifest.
    Auto,
    /// None: the manifest's thresholds as shipped.
    Off,
    /// This file.
    File(PathBuf),
}

impl Source {
    /// The file to look at for a manifest in `manifest_dir`, `None` when calibration is off.
    pub fn resolve(&self, manifest_dir: &Path) -> Option<PathBuf> {
        match self {
            Source::Off => None,
            Source::File(p) => Some(p.clone()),
            Source::Auto => match std::env::var_os(ENV) {
                Some(v) if v.is_empty() => Some(default_path(manifest_dir)),
                Some(v) if ["off", "none", "0", "false"].iter().any(|o| v.eq_ignore_ascii_case(o)) => None,
                Some(v) => Some(PathBuf::from(v)),
                None => Some(default_path(manifest_dir)),
            },
        }
    }
}

/// `calibration.json` in the manifest's folder.
pub fn default_path(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join(FILE_NAME)
}

/// Read a calibration file.
pub fn read(path: &Path) -> Result<Calibration, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let c: Calibration = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if c.version != VERSION {
        return Err(format!("version {} (this build reads version {VERSION})", c.version));
    }
    if !c.thresholds.valid() {
        return Err(format!("thresholds out of order or outside [0, 1]: {:?}", c.thresholds));
    }
    Ok(c)
}

/// Apply the calibration `source` points to, if there is one and it was made for this manifest's temporal
/// head: its thresholds replace the head's where they are higher. Says on stderr (log level warn, shown by
/// default) what it did, or why a calibration found was not used.
pub fn apply(manifest: &mut Manifest, source: &Source) -> Option<Applied> {
    let path = source.resolve(&manifest.dir)?;
    let explicit = *source != Source::Auto || std::env::var_os(ENV).is_some_and(|v| !v.is_empty());
    if !path.exists() {
        if explicit {
            log::warn!("calibration {} not found: using the manifest's thresholds", path.display());
        }
        return None;
    }
    let ignore_hint = format!("`--no-calibration` or {ENV}=off ignores it");
    let cal = match read(&path) {
        Ok(c) => c,
        Err(e) => {
            log::warn!(
                "calibration {} cannot be used ({e}): IGNORED, the manifest's thresholds apply; make it again \
                 with `deepfake-guard calibrate`, or delete it",
                path.display()
            );
            return None;
        }
    };
    let manifest_path = manifest.path.clone();
    let Some(entry) = manifest.models.get_mut(ROLE) else {
        log::warn!("calibration {} ignored: {} has no temporal head", path.display(), manifest_path.display());
        return None;
    };
    if !entry.sha256.trim().eq_ignore_ascii_case(cal.head_sha256.trim()) {
        log::warn!(
            "calibration {} was made for another temporal head (sha256 {}…, this manifest's head {}…): IGNORED, \
             the manifest's thresholds apply; calibrate again for this head, or delete it",
            path.display(),
            short(&cal.head_sha256),
            short(&entry.sha256)
        );
        return None;
    }
    let head = entry.head.as_mut()?;
    let shipped = Thresholds::of(head);
    let thresholds = cal.thresholds.raised_over(&shipped);
    head.threshold = thresholds.threshold;
    head.suspicious = thresholds.suspicious;
    head.clear = thresholds.clear;
    log::warn!(
        "calibration {} applied (made {} for this head): threshold {} -> {}, suspicious {} -> {}, clear {} -> {}; \
         {ignore_hint}",
        path.display(),
        cal.created,
        shipped.threshold,
        thresholds.threshold,
        shipped.suspicious,
        thresholds.suspicious,
        shipped.clear,
        thresholds.clear
    );
    Some(Applied { path, shipped, thresholds })
}

fn short(sha: &str) -> &str {
    &sha[..12.min(sha.len())]
}

/// The smallest threshold on a grid of 0.0001 at which the share of `scores` at or above it is at most
/// `target` (an upper quantile: at most `floor(target * n)` of the `n` scores reach it). `None` without
/// scores, or when no threshold up to 1.0 gets there (more than that many scores are 1.0).
pub fn upper_quantile_threshold(scores: &[f32], target: f64) -> Option<f32> {
    if scores.is_empty() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let n = scores.len();
    let allowed = ((target.clamp(0.0, 1.0) * n as f64) + 1e-9).floor() as usize;
    if allowed >= n {
        return Some(0.0);
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // Every score above the threshold's own grid step below must be among the `allowed` highest: the
    // threshold must lie above the (allowed + 1)-th highest score.
    let bound = sorted[allowed];
    let mut step = (bound as f64 * 1e4).floor() as i64 + 1;
    while ((step as f64 / 1e4) as f32) <= bound {
        step += 1;
    }
    let t = (step as f64 / 1e4) as f32;
    if t <= 1.0 {
        Some(t)
    } else if scores.iter().filter(|s| **s >= 1.0).count() <= allowed {
        Some(1.0)
    } else {
        None
    }
}

/// Share of `scores` at or above `threshold` (0 without scores).
pub fn share_at_or_above(scores: &[f32], threshold: f32) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|s| **s >= threshold).count() as f64 / scores.len() as f64
}

/// The thresholds for genuine window `scores` at `target` (see [`upper_quantile_threshold`]), never below
/// `shipped`: `threshold` at `target`, `suspicious` at `suspicious_target` (looser) but not above
/// `threshold`, and `clear` raised by as much as `suspicious` was (the hysteresis gap kept), not above
/// `threshold`. `None` when no threshold up to 1.0 meets `target`.
pub fn choose(scores: &[f32], target: f64, suspicious_target: f64, shipped: &Thresholds) -> Option<Thresholds> {
    let threshold = upper_quantile_threshold(scores, target)?.max(shipped.threshold);
    let suspicious =
        upper_quantile_threshold(scores, suspicious_target).unwrap_or(threshold).max(shipped.suspicious).min(threshold);
    let clear = (shipped.clear + (suspicious - shipped.suspicious)).max(shipped.clear).min(threshold);
    // Rounding must not put `clear` above `suspicious` where the manifest had it at or below.
    let clear = if shipped.clear <= shipped.suspicious { clear.min(suspicious) } else { clear };
    Some(Thresholds { threshold, suspicious, clear })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_leaves_at_most_the_target_share_at_or_above_it() {
        // 100 scores 0.00, 0.01, ..., 0.99: at 1 % one score may reach the threshold.
        let scores: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let t = upper_quantile_threshold(&scores, 0.01).unwrap();
        assert!(t > 0.98 && t <= 0.9801, "{t}");
        assert_eq!(scores.iter().filter(|s| **s >= t).count(), 1);
        // 5 %: five may.
        let t5 = upper_quantile_threshold(&scores, 0.05).unwrap();
        assert!(t5 > 0.94 && t5 <= 0.9401, "{t5}");
        assert_eq!(scores.iter().filter(|s| **s >= t5).count(), 5);
        // At the bound itself one more score is in.
        assert!(share_at_or_above(&scores, 0.98) > 0.01);
        // Order does not matter.
        let mut rev = scores.clone();
        rev.reverse();
        assert_eq!(upper_quantile_threshold(&rev, 0.01), Some(t));
    }

    #[test]
    fn ties_and_saturated_scores() {
        // Ties at the boundary are all above or all below.
        let scores = [0.5f32, 0.9, 0.9, 0.9, 0.2, 0.1, 0.3, 0.4, 0.6, 0.7];
        let t = upper_quantile_threshold(&scores, 0.2).unwrap();
        assert!(share_at_or_above(&scores, t) <= 0.2, "{t}");
        assert!(t > 0.9, "three tied at 0.9 cannot fit in two: {t}");
        // Too many genuine windows at 1.0: no threshold can meet the target.
        let saturated = [1.0f32, 1.0, 0.2, 0.1];
        assert_eq!(upper_quantile_threshold(&saturated, 0.25), None);
        // One at 1.0, allowed one: 1.0 is not needed, just above the next.
        let one = [1.0f32, 0.3, 0.2, 0.1];
        let t = upper_quantile_threshold(&one, 0.25).unwrap();
        assert!(t > 0.3 && t <= 0.3001, "{t}");
        // A score just under 1.0 as the bound: the threshold is 1.0.
        let near = [0.99999f32, 0.99999, 0.1, 0.1];
        assert_eq!(upper_quantile_threshold(&near, 0.25), Some(1.0));
        assert_eq!(upper_quantile_threshold(&[], 0.01), None);
        assert_eq!(upper_quantile_threshold(&[0.5, f32::NAN], 0.01), None);
    }

    #[test]
    fn fewer_windows_than_one_over_target_put_the_threshold_above_the_highest() {
        let scores = [0.1f32, 0.2, 0.3];
        let t = upper_quantile_threshold(&scores, 0.01).unwrap();
        assert!(t > 0.3 && t <= 0.3001, "{t}");
    }

    #[test]
    fn choose_only_raises_and_keeps_the_order() {
        let shipped = Thresholds { threshold: 0.777, suspicious: 0.4662, clear: 0.4662 };
        // Low genuine scores: everything stays as shipped.
        let low: Vec<f32> = (0..200).map(|i| i as f32 / 1000.0).collect();
        assert_eq!(choose(&low, 0.01, 0.05, &shipped), Some(shipped));
        // High genuine scores: raised, ordered, the gap between suspicious and clear kept.
        let high: Vec<f32> = (0..200).map(|i| 0.5 + i as f32 / 400.0).collect();
        let c = choose(&high, 0.01, 0.05, &shipped).unwrap();
        assert!(c.threshold > shipped.threshold && c.suspicious > shipped.suspicious, "{c:?}");
        assert!(c.clear <= c.suspicious && c.suspicious <= c.threshold && c.valid(), "{c:?}");
        assert!((c.clear - c.suspicious).abs() < 1e-6, "{c:?}");
        assert!(share_at_or_above(&high, c.threshold) <= 0.01);
        assert!(share_at_or_above(&high, c.suspicious) <= 0.05);
        // A wider shipped gap stays as wide.
        let gap = Thresholds { threshold: 0.8, suspicious: 0.5, clear: 0.3 };
        let c = choose(&high, 0.01, 0.05, &gap).unwrap();
        assert!(((c.suspicious - c.clear) - 0.2).abs() < 1e-4, "{c:?}");
        // Saturated: nothing to choose.
        assert_eq!(choose(&[1.0; 10], 0.01, 0.05, &shipped), None);
    }

    #[test]
    fn raised_over_never_lowers() {
        let shipped = Thresholds { threshold: 0.777, suspicious: 0.4662, clear: 0.4662 };
        let lower = Thresholds { threshold: 0.5, suspicious: 0.3, clear: 0.2 };
        assert_eq!(lower.raised_over(&shipped), shipped);
        let higher = Thresholds { threshold: 0.9, suspicious: 0.95, clear: 0.6 };
        let r = higher.raised_over(&shipped);
        assert_eq!((r.threshold, r.suspicious, r.clear), (0.9, 0.9, 0.6));
    }

    #[test]
    fn the_file_round_trips_and_bad_ones_are_refused() {
        let dir = std::env::temp_dir().join(format!("dg-calib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE_NAME);
        let mut details = serde_json::Map::new();
        details.insert("windows".into(), serde_json::json!(120));
        let c = Calibration {
            version: VERSION,
            created: "2026-12-03T00:00:00Z".into(),
            head_sha256: "ab".repeat(32),
            target_window_fpr: 0.01,
            thresholds: Thresholds { threshold: 0.9, suspicious: 0.7, clear: 0.7 },
            shipped: Thresholds { threshold: 0.777, suspicious: 0.4662, clear: 0.4662 },
            details,
        };
        std::fs::write(&path, serde_json::to_string_pretty(&c).unwrap()).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.thresholds, c.thresholds);
        assert_eq!(back.details["windows"], 120);
        std::fs::write(&path, r#"{"version": 2}"#).unwrap();
        assert!(read(&path).is_err());
        let mut bad = c.clone();
        bad.thresholds.suspicious = 0.95;
        std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
        assert!(read(&path).unwrap_err().contains("out of order"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn source_resolution() {
        let dir = Path::new("/opt/models");
        assert_eq!(Source::Off.resolve(dir), None);
        assert_eq!(Source::File("/x.json".into()).resolve(dir), Some(PathBuf::from("/x.json")));
        if std::env::var_os(ENV).is_none() {
            assert_eq!(Source::Auto.resolve(dir), Some(PathBuf::from("/opt/models/calibration.json")));
        }
    }
}
