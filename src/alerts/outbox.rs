//! The guard's side of the wire: every participant's current state, and the signed messages that tell the
//! call about it (`hello` on joining, a `verdict` on each state change, a periodic `heartbeat`).
//!
//! Pure: the caller passes the time and sends the texts; sequence numbers only grow, across reconnections.

use std::collections::BTreeMap;

use deepfake_guard_plugin_api::messages::{
    Heartbeat, Hello, Message, NotJudged, Participant, ParticipantStatus, Signals, State, Verdict, Window,
    format_sent_at,
};

use super::Signer;
use crate::analysis::WindowReport;

/// One participant as the guard last judged it.
#[derive(Clone, Debug)]
struct Known {
    display: Option<String>,
    state: Option<State>,
    score: Option<f64>,
    /// Participant media time of the window that set the state, ms.
    since_ms: Option<u64>,
    /// Why the participant is not judged now (with state `no-face`).
    not_judged: Option<NotJudged>,
    /// The last window that judged the participant, and the guard's wall time then (ms).
    judged: Option<(Window, u64)>,
}

/// What the guard says and has said to the room.
pub struct Outbox {
    signer: Signer,
    room: String,
    bot: Participant,
    seq: u64,
    participants: BTreeMap<u64, Known>,
}

/// A signed message ready for the data channel, with what it says (for printing).
pub struct Outgoing {
    pub wire: String,
    pub message: Message,
}

impl Outbox {
    pub fn new(signer: Signer, room: impl Into<String>, bot_display: impl Into<String>) -> Self {
        Outbox {
            signer,
            room: room.into(),
            bot: Participant::new("").with_display(bot_display),
            seq: 0,
            participants: BTreeMap::new(),
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The guard's own participant id in the room (known once it joined).
    pub fn set_bot_id(&mut self, id: u64) {
        self.bot.id = id.to_string();
    }

    fn sign(&mut self, message: Message) -> Outgoing {
        Outgoing { wire: self.signer.sign(&message), message }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn hello(&mut self, now_ms: u64) -> Outgoing {
        let mut h = Hello::new(
            self.next_seq(),
            &self.room,
            self.bot.clone(),
            self.signer.public_key_b64(),
            format_sent_at(now_ms),
        );
        h.key_id = Some(self.signer.key_id().to_owned());
        self.sign(Message::Hello(h))
    }

    /// A participant is being watched (its state is "not judged yet" until its first window).
    pub fn add(&mut self, id: u64, display: Option<String>) {
        self.participants
            .insert(id, Known { display, state: None, score: None, since_ms: None, not_judged: None, judged: None });
    }

    pub fn remove(&mut self, id: u64) {
        self.participants.remove(&id);
    }

    /// Forget every participant (the session ended; ids will be new).
    pub fn clear(&mut self) {
        self.participants.clear();
    }

    /// Every watched participant's current state (`None`: not judged yet).
    pub fn states(&self) -> impl Iterator<Item = Option<State>> + '_ {
        self.participants.values().map(|k| k.state)
    }

    pub fn display(&self, id: u64) -> Option<&str> {
        self.participants.get(&id).and_then(|k| k.display.as_deref())
    }

    /// Record a window; returns the signed verdict to send when the participant's state (or the reason it is
    /// not judged) changed.
    pub fn window(&mut self, id: u64, report: &WindowReport, changed: bool, now_ms: u64) -> Option<Outgoing> {
        let state = report.state?;
        let score = report.judged().then(|| report.head.map(|h| h.p_fake as f64)).flatten();
        let window = Window::new((report.start_us.max(0) / 1000) as u64, (report.end_us.max(0) / 1000) as u64);
        let known = self.participants.get_mut(&id)?;
        if report.judged() {
            known.judged = Some((window, now_ms));
        }
        if !changed && known.state == Some(state) && known.not_judged == report.not_judged {
            if score.is_some() {
                known.score = score;
            }
            return None;
        }
        known.state = Some(state);
        known.score = score;
        known.since_ms = Some(window.end_ms);
        known.not_judged = report.not_judged;
        let mut participant = Participant::new(id.to_string());
        participant.display = known.display.clone();
        let mut v =
            Verdict::new(self.next_seq(), &self.room, participant, state, score, window, format_sent_at(now_ms));
        v.signals = signals(report);
        v.not_judged = report.not_judged;
        Some(self.sign(Message::Verdict(v)))
    }

    /// A participant that cannot be judged for a reason the media shows before any window (no video, a codec
    /// the guard does not decode): its state becomes `no-face` with the reason; returns the verdict to send
    /// when that is news. `at_ms`: the participant's media time now (0 when none arrived).
    pub fn not_judged(&mut self, id: u64, reason: NotJudged, at_ms: u64, now_ms: u64) -> Option<Outgoing> {
        let known = self.participants.get_mut(&id)?;
        if known.state == Some(State::NoFace) && known.not_judged == Some(reason) {
            return None;
        }
        known.state = Some(State::NoFace);
        known.score = None;
        known.since_ms = Some(at_ms);
        known.not_judged = Some(reason);
        let mut participant = Participant::new(id.to_string());
        participant.display = known.display.clone();
        let window = Window::new(at_ms, at_ms);
        let mut v =
            Verdict::new(self.next_seq(), &self.room, participant, State::NoFace, None, window, format_sent_at(now_ms));
        v.not_judged = Some(reason);
        Some(self.sign(Message::Verdict(v)))
    }

    /// Every participant not judged now, with its reason (for metrics).
    pub fn reasons(&self) -> impl Iterator<Item = NotJudged> + '_ {
        self.participants.values().filter_map(|k| k.not_judged)
    }

    /// Every judged participant's current state.
    pub fn heartbeat(&mut self, uptime_s: u64, now_ms: u64) -> Outgoing {
        let participants = self
            .participants
            .iter()
            .filter_map(|(id, k)| {
                let mut p = ParticipantStatus::new(id.to_string(), k.state?);
                p.display = k.display.clone();
                p.score = k.score;
                p.since_ms = k.since_ms;
                p.not_judged = k.not_judged;
                if let Some((w, at)) = k.judged {
                    p.window = Some(w);
                    p.age_ms = Some(now_ms.saturating_sub(at));
                }
                Some(p)
            })
            .collect();
        let hb = Heartbeat::new(self.next_seq(), &self.room, participants, uptime_s, format_sent_at(now_ms));
        self.sign(Message::Heartbeat(hb))
    }
}

fn signals(r: &WindowReport) -> Signals {
    let mut s = Signals::default();
    s.lipsync = r.signals.iter().find(|(n, _)| n == "lipsync").and_then(|(_, sig)| sig.score).map(f64::from);
    s.av_offset_ms = r.sync.map(|e| e.offset_ms.round() as i64).or(r.head.map(|h| h.offset_ms.round() as i64));
    s.lipsync_confidence = r.sync.map(|e| e.confidence as f64);
    s.visual = r.judged().then(|| r.head.map(|h| h.p_fake as f64)).flatten();
    s.evidence = r.evidence.iter().map(|e| e.to_string()).collect();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::HeadOutput;
    use deepfake_guard_plugin_api::messages::{parse, split_signed};

    fn report(state: State, p: f32) -> WindowReport {
        WindowReport {
            start_us: 1_600_000,
            end_us: 4_800_000,
            frames: 80,
            skipped: 0,
            held_slots: 0,
            face_ratio: 1.0,
            faces: 1,
            mouth_open: Some(0.02),
            audio_ratio: 1.0,
            sync: None,
            sync_earlier: None,
            sync_recent: None,
            signals: Vec::new(),
            head: Some(HeadOutput { p_fake: p, offset_ms: 300.0 }),
            score: Some(p),
            corroborated: true,
            evidence: if state == State::Alert { vec!["temporal", "lipsync"] } else { vec!["temporal"] },
            not_judged: None,
            state: Some(state),
            head_input: None,
        }
    }

    #[test]
    fn verdicts_only_on_change_heartbeats_always_all_signed() {
        let mut o = Outbox::new(Signer::from_seed(&[7; 32]), "4321", "Deepfake Guard");
        o.set_bot_id(99);
        let h = o.hello(1_000);
        assert!(h.wire.contains("\"public_key\"") && split_signed(&h.wire).is_some());
        o.add(5, Some("mallory".into()));
        assert!(o.window(6, &report(State::Alert, 0.9), true, 2_000).is_none(), "unknown participant");
        let v = o.window(5, &report(State::Suspicious, 0.6), true, 2_000).expect("first state is news");
        assert!(o.window(5, &report(State::Suspicious, 0.65), false, 2_100).is_none());
        let a = o.window(5, &report(State::Alert, 0.9), true, 2_200).expect("a change is news");
        let Message::Verdict(a) = parse(&a.wire).unwrap() else { panic!("not a verdict") };
        assert_eq!((a.participant.id.as_str(), a.state, a.window.end_ms), ("5", State::Alert, 4_800));
        assert_eq!(a.participant.display.as_deref(), Some("mallory"));
        assert_eq!(a.signals.av_offset_ms, Some(300));
        assert_eq!(a.signals.evidence, ["temporal", "lipsync"], "an alert names the detectors that agreed");
        assert!(a.seq > v.message.seq());
        let hb = o.heartbeat(3, 2_300);
        let Message::Heartbeat(hb) = parse(&hb.wire).unwrap() else { panic!("not a heartbeat") };
        assert_eq!(hb.participants.len(), 1);
        assert_eq!(hb.participants[0].state, State::Alert);
        assert_eq!(hb.participants[0].window, Some(Window::new(1_600, 4_800)), "the window that judged it");
        assert_eq!(hb.participants[0].age_ms, Some(100), "judged at 2 200, sent at 2 300");
        assert_eq!(hb.seq, a.seq + 1);
        // later heartbeats say how old the judgement is; they never re-date it
        let Message::Heartbeat(hb) = parse(&o.heartbeat(9, 9_200).wire).unwrap() else { panic!() };
        assert_eq!(
            (hb.participants[0].window, hb.participants[0].age_ms),
            (Some(Window::new(1_600, 4_800)), Some(7_000))
        );
        // a reason not to judge is news, once
        let n = o.not_judged(5, NotJudged::CameraOff, 9_000, 9_300).expect("news");
        let Message::Verdict(n) = parse(&n.wire).unwrap() else { panic!() };
        assert_eq!((n.state, n.not_judged), (State::NoFace, Some(NotJudged::CameraOff)));
        assert!(o.not_judged(5, NotJudged::CameraOff, 9_100, 9_400).is_none());
        let Message::Heartbeat(hb) = parse(&o.heartbeat(10, 9_500).wire).unwrap() else { panic!() };
        assert_eq!(hb.participants[0].not_judged, Some(NotJudged::CameraOff));
    }
}
