//! The per-participant verdict state machine: window scores in, a state with hysteresis out.
//!
//! ```text
//!   no face in the window            -> no-face
//!   score >= alert, corroborated, for `raise` windows in a row            -> alert (two detectors agree)
//!   score >= strong, corroborated, for `strong_windows` windows in a row -> alert (sooner)
//!   score >= alert, not corroborated -> suspicious, never alert (a learned score alone; unless
//!                                       `head_alone_alerts`): such a window neither adds to nor breaks a run
//!   alert stays until score < clear for `lower` windows in a row
//!   otherwise score >= suspicious    -> suspicious; back to clear after `clear_windows` windows in a row below `clear`
//!   no audio and not alert           -> no-audio (lip sync cannot be judged)
//!   a window the head could not judge (no score) -> the state stays as it was (none before the first judged window)
//!   `stale_windows` such windows in a row, for a reason ([`NotJudged`]) -> no-face with that reason (an alert stays)
//! ```
//!
//! "Corroborated" is the caller's independent, non-learned evidence: the classical lip-sync estimator
//! measuring, with confidence, an offset beyond what capture paths give. The temporal head is learned: on faces,
//! voices and generators it never saw it can score genuine people high, so by default its score alone only ever
//! makes a participant `suspicious`.
//!
//! One bad window neither raises nor clears an alert: both need consecutive windows. The guard never says
//! `clear` about a participant it has not judged.

use deepfake_guard_plugin_api::messages::{NotJudged, State};

/// Thresholds and counts of the state machine.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictConfig {
    /// Window score at or above which a window counts towards an alert (the operating threshold).
    pub alert: f32,
    /// Window score at or above which a participant not in alert is `suspicious`.
    pub suspicious: f32,
    /// Window score below which a window counts towards clearing an alert.
    pub clear: f32,
    /// Consecutive windows at or above `alert` that raise an alert.
    pub raise_windows: u32,
    /// Consecutive windows below `clear` that end an alert (or a `suspicious` state).
    pub clear_windows: u32,
    /// Window score at or above which a window is overwhelming evidence.
    pub strong: f32,
    /// Consecutive windows at or above `strong` and corroborated by an independent signal (the caller's: the
    /// lip-sync estimator's confident offset beyond the natural range) that raise an alert before
    /// `raise_windows` (0: off).
    pub strong_windows: u32,
    /// Minimum share of a window's frames with a face / with audio.
    pub min_face_ratio: f32,
    pub min_audio_ratio: f32,
    /// Whether the head's score alone (without corroboration) may raise an alert after `raise_windows`. Off by
    /// default: a learned score is not evidence enough on faces it never saw.
    pub head_alone_alerts: bool,
    /// Consecutive windows that could not be judged, for a stated reason, after which the participant's state
    /// says so (`no-face` with the reason) instead of repeating an old judgement (0: never).
    pub stale_windows: u32,
}

impl Default for VerdictConfig {
    fn default() -> Self {
        Self {
            alert: 0.5,
            suspicious: 0.3,
            clear: 0.3,
            raise_windows: 2,
            clear_windows: 2,
            strong: 0.95,
            strong_windows: 0,
            min_face_ratio: 0.5,
            min_audio_ratio: 0.5,
            head_alone_alerts: false,
            stale_windows: 2,
        }
    }
}

impl VerdictConfig {
    /// Checks the thresholds are ordered and in [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        let in01 = |x: f32| (0.0..=1.0).contains(&x);
        if !(in01(self.alert) && in01(self.suspicious) && in01(self.clear) && in01(self.strong)) {
            return Err(format!("thresholds must lie in [0, 1]: {self:?}"));
        }
        if self.suspicious > self.alert || self.clear > self.alert {
            return Err(format!("`suspicious` and `clear` must not exceed `alert`: {self:?}"));
        }
        if self.strong_windows > 0 && self.strong < self.alert {
            return Err(format!("`strong` must not be below `alert`: {self:?}"));
        }
        if self.raise_windows == 0 || self.clear_windows == 0 {
            return Err("raise_windows and clear_windows must be at least 1".into());
        }
        Ok(())
    }
}

/// The verdict on a whole stream or clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Genuine,
    /// An alert was raised (two detectors agreed), or the head alone reached the threshold where it may alert.
    Fake,
    /// The head's mean score reached the alert threshold, but no independent detector agreed.
    Suspicious,
    NoFace,
    NoAudio,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Genuine => "genuine",
            Verdict::Fake => "fake",
            Verdict::Suspicious => "suspicious",
            Verdict::NoFace => "no-face",
            Verdict::NoAudio => "no-audio",
        }
    }

    /// The verdict from a stream's totals: `fake` when an alert was raised, `suspicious` when the mean window
    /// score reaches the alert threshold without one (`fake` with `head_alone_alerts`); no judgement without a
    /// face, and `no-audio` for a silent stream judged genuine.
    pub fn from_totals(
        face_ratio: f32,
        audio_ratio: f32,
        score: Option<f32>,
        alert_windows: u64,
        cfg: &VerdictConfig,
    ) -> Option<Verdict> {
        if face_ratio < cfg.min_face_ratio {
            return Some(Verdict::NoFace);
        }
        let high = score.is_some_and(|s| s >= cfg.alert);
        if alert_windows > 0 || (high && cfg.head_alone_alerts) {
            Some(Verdict::Fake)
        } else if audio_ratio < cfg.min_audio_ratio {
            Some(Verdict::NoAudio)
        } else if high {
            Some(Verdict::Suspicious)
        } else {
            score.map(|_| Verdict::Genuine)
        }
    }
}

/// State machine of one participant.
#[derive(Clone, Debug)]
pub struct VerdictMachine {
    cfg: VerdictConfig,
    alerting: bool,
    above: u32,
    strong: u32,
    below: u32,
    unjudged: u32,
    state: Option<State>,
    reason: Option<NotJudged>,
}

impl VerdictMachine {
    pub fn new(cfg: VerdictConfig) -> Self {
        Self { cfg, alerting: false, above: 0, strong: 0, below: 0, unjudged: 0, state: None, reason: None }
    }

    /// Why the participant is not judged now (with state `no-face`), if it is for a reason other than no face.
    pub fn reason(&self) -> Option<NotJudged> {
        self.reason
    }

    pub fn config(&self) -> &VerdictConfig {
        &self.cfg
    }

    /// The current state (`None` before the first window).
    pub fn state(&self) -> Option<State> {
        self.state
    }

    /// Feed one window; returns the new state (`None` while no window could be judged yet). `corroborated`:
    /// an independent signal says the same as a high score (see [`VerdictConfig::strong_windows`]).
    /// `unjudged`: why a window with a face has no score (ignored when it has one).
    pub fn update(
        &mut self,
        face_ratio: f32,
        audio_ratio: f32,
        score: Option<f32>,
        corroborated: bool,
        unjudged: Option<NotJudged>,
    ) -> Option<State> {
        let face = face_ratio >= self.cfg.min_face_ratio;
        match (face, score, unjudged) {
            (true, None, Some(reason)) => {
                self.unjudged += 1;
                if self.cfg.stale_windows > 0 && self.unjudged >= self.cfg.stale_windows && !self.alerting {
                    // The last judgement is stale: say so, and start the evidence again when windows are judged.
                    self.above = 0;
                    self.strong = 0;
                    self.below = 0;
                    self.reason = Some(reason);
                    self.state = Some(State::NoFace);
                    return self.state;
                }
            }
            _ => {
                self.unjudged = 0;
                self.reason = None;
            }
        }
        if self.reason.is_some() {
            return self.state; // still not judged
        }
        let state = if !face {
            // No face, no judgement: the evidence counters start again when the face is back.
            self.above = 0;
            self.strong = 0;
            self.below = 0;
            State::NoFace
        } else {
            if let Some(s) = score {
                if s >= self.cfg.alert {
                    // A learned score alone adds nothing to the run (nor breaks it), unless configured to.
                    if corroborated || self.cfg.head_alone_alerts {
                        self.above += 1;
                    }
                    self.below = 0;
                } else if s < self.cfg.clear {
                    self.below += 1;
                    self.above = 0;
                } else {
                    self.above = 0;
                    self.below = 0;
                }
                self.strong = if s >= self.cfg.strong && corroborated { self.strong + 1 } else { 0 };
                let strong = self.cfg.strong_windows > 0 && self.strong >= self.cfg.strong_windows;
                if !self.alerting && (self.above >= self.cfg.raise_windows || strong) {
                    self.alerting = true;
                } else if self.alerting && self.below >= self.cfg.clear_windows {
                    self.alerting = false;
                }
            }
            if self.alerting {
                State::Alert
            } else if audio_ratio < self.cfg.min_audio_ratio {
                State::NoAudio
            } else if let Some(s) = score {
                let held = self.state == Some(State::Suspicious) && self.below < self.cfg.clear_windows;
                if s >= self.cfg.suspicious || held { State::Suspicious } else { State::Clear }
            } else {
                // A window the head could not judge changes nothing.
                return self.state;
            }
        };
        self.state = Some(state);
        self.state
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.cfg.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &mut VerdictMachine, scores: &[f32]) -> Vec<State> {
        scores.iter().map(|s| m.update(1.0, 1.0, Some(*s), true, None).unwrap()).collect()
    }

    #[test]
    fn a_window_that_could_not_be_judged_changes_nothing() {
        let mut m = VerdictMachine::new(VerdictConfig::default());
        assert_eq!(m.update(1.0, 1.0, None, false, None), None, "never `clear` before a judged window");
        assert_eq!(m.update(1.0, 1.0, Some(0.9), false, None), Some(State::Suspicious));
        assert_eq!(m.update(1.0, 1.0, None, false, None), Some(State::Suspicious));
        assert_eq!(m.update(1.0, 1.0, Some(0.1), false, None), Some(State::Suspicious));
        assert_eq!(m.update(1.0, 1.0, Some(0.1), false, None), Some(State::Clear));
        assert_eq!(m.update(1.0, 1.0, None, false, None), Some(State::Clear));
        // an unjudged window breaks no run: the alert still needs two judged windows in a row
        assert_eq!(m.update(1.0, 1.0, Some(0.9), true, None), Some(State::Suspicious));
        assert_eq!(m.update(1.0, 1.0, None, false, None), Some(State::Suspicious));
        assert_eq!(m.update(1.0, 1.0, Some(0.9), true, None), Some(State::Alert));
    }

    #[test]
    fn one_bad_window_neither_raises_nor_clears_an_alert() {
        let mut m = VerdictMachine::new(VerdictConfig::default());
        use State::*;
        assert_eq!(run(&mut m, &[0.1, 0.9, 0.1, 0.1]), vec![Clear, Suspicious, Suspicious, Clear]);
        assert_eq!(run(&mut m, &[0.9, 0.9]), vec![Suspicious, Alert]);
        // one good window inside an alert does not clear it; two do
        assert_eq!(run(&mut m, &[0.1, 0.9, 0.1, 0.1]), vec![Alert, Alert, Alert, Clear]);
        // a window between `clear` and `alert` breaks both runs
        assert_eq!(run(&mut m, &[0.9, 0.4, 0.9]), vec![Suspicious, Suspicious, Suspicious]);
        // suspicious does not flicker: one good window between doubtful ones keeps it
        assert_eq!(
            run(&mut m, &[0.1, 0.4, 0.1, 0.35, 0.1, 0.1]),
            vec![Suspicious; 5].into_iter().chain([Clear]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn overwhelming_evidence_raises_sooner_but_never_on_one_window() {
        let cfg = VerdictConfig { raise_windows: 4, strong: 0.95, strong_windows: 2, ..VerdictConfig::default() };
        let mut m = VerdictMachine::new(cfg.clone());
        use State::*;
        assert_eq!(run(&mut m, &[0.99, 0.99]), vec![Suspicious, Alert]);
        let mut m = VerdictMachine::new(cfg.clone());
        assert_eq!(
            run(&mut m, &[0.99, 0.9, 0.99, 0.9]),
            vec![Suspicious, Suspicious, Suspicious, Alert],
            "4 above `alert`"
        );
        let mut m = VerdictMachine::new(cfg.clone());
        assert_eq!(run(&mut m, &[0.99, 0.1, 0.99, 0.1]), vec![Suspicious; 4], "strong windows must be in a row");
        // uncorroborated, high scores never alert: a learned score alone is not evidence enough
        let mut m = VerdictMachine::new(cfg.clone());
        let states: Vec<_> = (0..20).map(|_| m.update(1.0, 1.0, Some(0.99), false, None).unwrap()).collect();
        assert_eq!(states, vec![Suspicious; 20]);
        // ... unless the operator says so
        let mut m = VerdictMachine::new(VerdictConfig { head_alone_alerts: true, ..cfg.clone() });
        let states: Vec<_> = (0..4).map(|_| m.update(1.0, 1.0, Some(0.99), false, None).unwrap()).collect();
        assert_eq!(states, vec![Suspicious, Suspicious, Suspicious, Alert]);
        // uncorroborated windows inside a corroborated run neither add to it nor break it
        let mut m = VerdictMachine::new(cfg);
        let states: Vec<_> = [true, false, true, false, true, true]
            .iter()
            .map(|&c| m.update(1.0, 1.0, Some(0.9), c, None).unwrap())
            .collect();
        assert_eq!(states, vec![Suspicious, Suspicious, Suspicious, Suspicious, Suspicious, Alert]);
        let off = VerdictConfig { raise_windows: 3, strong_windows: 0, ..VerdictConfig::default() };
        let mut m = VerdictMachine::new(off);
        assert_eq!(run(&mut m, &[1.0, 1.0, 1.0]), vec![Suspicious, Suspicious, Alert]);
    }

    #[test]
    fn no_face_and_no_audio() {
        let mut m = VerdictMachine::new(VerdictConfig::default());
        assert_eq!(m.update(0.1, 1.0, Some(0.9), false, None), Some(State::NoFace));
        assert_eq!(m.update(1.0, 0.0, None, false, None), Some(State::NoAudio));
        // an alert still shows without audio
        m.update(1.0, 0.0, Some(0.9), true, None);
        assert_eq!(m.update(1.0, 0.0, Some(0.9), true, None), Some(State::Alert));
        // a face that disappears resets the evidence, but not an alert already raised
        assert_eq!(m.update(0.0, 1.0, Some(0.9), false, None), Some(State::NoFace));
        assert_eq!(m.update(1.0, 1.0, Some(0.9), false, None), Some(State::Alert));
    }

    #[test]
    fn windows_that_cannot_be_judged_for_a_reason_end_an_old_judgement() {
        let mut m = VerdictMachine::new(VerdictConfig { stale_windows: 3, ..VerdictConfig::default() });
        let few = Some(NotJudged::TooFewFrames);
        assert_eq!(m.update(1.0, 1.0, Some(0.1), false, None), Some(State::Clear));
        assert_eq!(m.update(1.0, 1.0, None, false, few), Some(State::Clear), "one window changes nothing");
        assert_eq!(m.update(1.0, 1.0, None, false, few), Some(State::Clear));
        assert_eq!(m.update(1.0, 1.0, None, false, few), Some(State::NoFace), "the old `clear` is stale");
        assert_eq!(m.reason(), few);
        assert_eq!(m.update(1.0, 1.0, None, false, None), Some(State::NoFace), "still nothing judged");
        assert_eq!(m.update(1.0, 1.0, Some(0.1), false, None), Some(State::Clear));
        assert_eq!(m.reason(), None);
        // never judged at all: the reason is the first state
        let mut m = VerdictMachine::new(VerdictConfig { stale_windows: 2, ..VerdictConfig::default() });
        assert_eq!(m.update(1.0, 1.0, None, false, few), None);
        assert_eq!(m.update(1.0, 1.0, None, false, few), Some(State::NoFace));
        // an alert is not withdrawn because frames went missing
        let mut m = VerdictMachine::new(VerdictConfig { stale_windows: 2, ..VerdictConfig::default() });
        m.update(1.0, 1.0, Some(0.9), true, None);
        assert_eq!(m.update(1.0, 1.0, Some(0.9), true, None), Some(State::Alert));
        for _ in 0..4 {
            assert_eq!(m.update(1.0, 1.0, None, false, few), Some(State::Alert));
        }
    }

    #[test]
    fn validate_rejects_disordered_thresholds() {
        let c = VerdictConfig { suspicious: 0.8, alert: 0.5, ..VerdictConfig::default() };
        assert!(c.validate().is_err());
        assert!(VerdictConfig::default().validate().is_ok());
    }
}
