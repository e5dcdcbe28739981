//! The operator's view: Prometheus metrics of the live guard, served on `/metrics` with `/healthz` and
//! `/readyz` ([`http`]).
//!
//! Every metric is named `deepfake_guard_*`, in base units, counters end in `_total`, and no label carries a
//! participant: the labels are small fixed sets (state, stage, reason, type), each created at start so every
//! series exists from the first scrape. The per-frame path only touches handles resolved here at start
//! (one atomic add per counter, a few per histogram observation); the media counters are not even that:
//! the workers keep them per participant ([`ParticipantStats`](crate::guard::worker::ParticipantStats)) and
//! [`MediaCollector`] sums them when Prometheus scrapes.
//!
//! `deploy/grafana/deepfake-guard.json` and `deploy/prometheus/rules.yml` query these names; a test checks
//! that every name they use is exported.

pub mod http;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deepfake_guard_plugin_api::messages::{NotJudged, State};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::analysis::{Stage, StageTimes};
use crate::guard::worker::{MediaTotals, StatsBook};

/// The verdict states with a series, in [`state_index`] order; their label values are the wire names.
const STATES: [State; 5] = [State::Clear, State::Suspicious, State::Alert, State::NoFace, State::NoAudio];

/// `state` label values: the verdict states' wire names, then `extra` (a sixth value) when given.
fn state_labels<const N: usize>(extra: Option<&'static str>) -> [&'static str; N] {
    std::array::from_fn(|i| match (STATES.get(i), extra) {
        (Some(s), _) => s.as_str(),
        (None, Some(e)) if i == STATES.len() => e,
        _ => panic!("state labels: {N} values from {} states and {extra:?}", STATES.len()),
    })
}
/// Label values of `reason` on participants not judged (the wire names of [`NotJudged`]).
const NOT_JUDGED: [NotJudged; 5] = [
    NotJudged::TooFewFrames,
    NotJudged::OverCapacity,
    NotJudged::CameraOff,
    NotJudged::UnsupportedCodec,
    NotJudged::Other,
];
/// Label values of `stage`: decoding, then the analysis stages in [`Stage`] order.
const STAGES: [&str; 5] = ["decode", "face", "landmarks", "backbone", "temporal"];
/// Label values of `type` on data-channel messages.
const MESSAGES: [&str; 3] = ["hello", "verdict", "heartbeat"];
/// A media stream silent for this long, while participants are watched, makes the guard not ready.
const READY_MEDIA_GAP: Duration = Duration::from_secs(10);

/// Index into [`STATES`]; `None` for a state this build has no series for (the wire format may grow).
fn state_index(s: State) -> Option<usize> {
    match s {
        State::Clear => Some(0),
        State::Suspicious => Some(1),
        State::Alert => Some(2),
        State::NoFace => Some(3),
        State::NoAudio => Some(4),
        _ => None,
    }
}

/// A kind of signed message on the alert channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Hello = 0,
    Verdict = 1,
    Heartbeat = 2,
}

/// Every metric of the guard, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    /// 1 while the guard is in the room (joined, alert channel published), else 0.
    pub sfu_joined: IntGauge,
    /// Joins tried again after a lost connection or a failed join (a Janus restart may take several).
    pub sfu_reconnects: IntCounter,
    /// Participants being analysed.
    pub participants: IntGauge,
    /// Picture loss indications sent.
    pub keyframe_requests: IntCounter,
    /// Participants who entered the `alert` state.
    pub alerts: IntCounter,
    pub analysis_threads: IntGauge,
    /// Data-channel sends that failed.
    pub send_errors: IntCounter,
    /// From the arrival of the media unit that closed a window to its verdict.
    pub frame_to_verdict: Histogram,
    /// Participants per current state; index 5 is `pending`.
    states: [IntGauge; 6],
    /// Participants not judged now, by reason ([`NOT_JUDGED`] order).
    not_judged: [IntGauge; 5],
    /// Analysis windows by their state; index 5 is `none`.
    windows: [IntCounter; 6],
    /// Verdict messages (state changes) sent, by new state.
    verdicts: [IntCounter; 5],
    messages: [IntCounter; 3],
    stages: [Histogram; 5],
    media: Arc<MediaCollector>,
    /// Media totals and participants watched at the last readiness check, and when either last changed.
    media_seen: Mutex<(u64, i64, Instant)>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let reg = |c: Box<dyn Collector>| registry.register(c).expect("metric names are unique and valid");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };

        let build =
            IntGaugeVec::new(Opts::new("deepfake_guard_build_info", "The guard's version (always 1)."), &["version"])
                .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        reg(Box::new(build));

        let states = children(
            &registry,
            IntGaugeVec::new(
                Opts::new("deepfake_guard_participant_states", "Participants being analysed, by their current state."),
                &["state"],
            ),
            // `pending`: watched, not judged yet.
            state_labels::<6>(Some("pending")),
            |v, l| v.with_label_values(&[l]),
        );
        let not_judged = children(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "deepfake_guard_participants_not_judged",
                    "Participants the guard watches but cannot judge now (state no-face with a reason), by reason.",
                ),
                &["reason"],
            ),
            NOT_JUDGED.map(NotJudged::as_str),
            |v, l| v.with_label_values(&[l]),
        );
        let windows = children(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "deepfake_guard_windows_total",
                    "Analysis windows, by the state they left the participant in (none: not judged yet).",
                ),
                &["state"],
            ),
            // `none`: the window set no state (nothing judged yet).
            state_labels::<6>(Some("none")),
            |v, l| v.with_label_values(&[l]),
        );
        let verdicts = children(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "deepfake_guard_verdicts_total",
                    "Verdict messages sent to the call (one per state change), by the new state.",
                ),
                &["state"],
            ),
            state_labels::<5>(None),
            |v, l| v.with_label_values(&[l]),
        );
        let messages = children(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "deepfake_guard_datachannel_messages_sent_total",
                    "Signed messages sent on the alert channel.",
                ),
                &["type"],
            ),
            MESSAGES,
            |v, l| v.with_label_values(&[l]),
        );

        // 0.25 ms .. 128 ms: one model run on a CPU core.
        let stages = children(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "deepfake_guard_stage_duration_seconds",
                    "Wall time of one run of a stage: decode (one video frame), face (detection), landmarks, \
                     backbone, temporal (the head over one window).",
                )
                .buckets(prometheus::exponential_buckets(0.000_25, 2.0, 10).expect("valid buckets")),
                &["stage"],
            ),
            STAGES,
            |v, l| v.with_label_values(&[l]),
        );

        let frame_to_verdict = Histogram::with_opts(
            HistogramOpts::new(
                "deepfake_guard_frame_to_verdict_seconds",
                "From the arrival of the media unit that completed an analysis window to the window's verdict.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        )
        .expect("valid metric");
        reg(Box::new(frame_to_verdict.clone()));

        let media = Arc::new(MediaCollector::new());
        reg(Box::new(SharedCollector(media.clone())));
        #[cfg(target_os = "linux")]
        reg(Box::new(prometheus::process_collector::ProcessCollector::for_self()));

        Arc::new(Metrics {
            sfu_joined: gauge("deepfake_guard_sfu_joined", "1 while the guard is in the room, else 0."),
            sfu_reconnects: counter(
                "deepfake_guard_sfu_reconnects_total",
                "Joins tried again after a lost connection to the media server or a failed join.",
            ),
            participants: gauge("deepfake_guard_participants", "Participants being analysed."),
            keyframe_requests: counter(
                "deepfake_guard_keyframe_requests_total",
                "Picture loss indications sent after a loss or a decode error.",
            ),
            alerts: counter("deepfake_guard_alerts_total", "Times a participant entered the alert state."),
            analysis_threads: gauge("deepfake_guard_analysis_threads", "Analysis threads running."),
            send_errors: counter(
                "deepfake_guard_datachannel_send_errors_total",
                "Signed messages that could not be sent on the alert channel.",
            ),
            registry,
            frame_to_verdict,
            states,
            not_judged,
            windows,
            verdicts,
            messages,
            stages,
            media,
            media_seen: Mutex::new((0, 0, Instant::now())),
        })
    }

    /// The per-participant media counters to export (the analysis workers' book).
    pub fn attach_media(&self, book: Arc<StatsBook>) {
        *self.media.book.lock().unwrap() = Some(book);
    }

    /// Count one analysis window that left `state` (`None`: no state yet; the participant was never judged).
    #[inline]
    pub fn window(&self, state: Option<State>) {
        if let Some(i) = state.map_or(Some(5), state_index) {
            self.windows[i].inc();
        }
    }

    /// Count one verdict message sent for a participant now in `state`.
    #[inline]
    pub fn verdict(&self, state: State) {
        if let Some(i) = state_index(state) {
            self.verdicts[i].inc();
        }
        if state == State::Alert {
            self.alerts.inc();
        }
    }

    #[inline]
    pub fn message_sent(&self, kind: MessageKind) {
        self.messages[kind as usize].inc();
    }

    /// Set the participant gauges from every watched participant's state (`None`: not judged yet).
    pub fn set_states(&self, states: impl IntoIterator<Item = Option<State>>) {
        let mut n = [0i64; 6];
        let mut total = 0;
        for s in states {
            if let Some(i) = s.map_or(Some(5), state_index) {
                n[i] += 1;
            }
            total += 1;
        }
        for (g, v) in self.states.iter().zip(n) {
            g.set(v);
        }
        self.participants.set(total);
    }

    /// Set the not-judged gauges from the reasons of every participant not judged now.
    pub fn set_not_judged(&self, reasons: impl IntoIterator<Item = NotJudged>) {
        let mut n = [0i64; NOT_JUDGED.len()];
        for r in reasons {
            let i = NOT_JUDGED.iter().position(|&x| x == r).unwrap_or(NOT_JUDGED.len() - 1);
            n[i] += 1;
        }
        for (g, v) in self.not_judged.iter().zip(n) {
            g.set(v);
        }
    }

    /// One video frame's decode time.
    #[inline]
    pub fn decode_time(&self, d: Duration) {
        self.stages[0].observe(d.as_secs_f64());
    }

    /// The analysis stages' times since the analyser last reported them.
    #[inline]
    pub fn stage_times(&self, t: &StageTimes) {
        for s in Stage::ALL {
            let i = s as usize;
            if t.runs[i] > 0 {
                // Several runs between two reports (two windows closing at once): each is given the mean.
                let each = t.nanos[i] as f64 * 1e-9 / t.runs[i] as f64;
                for _ in 0..t.runs[i] {
                    self.stages[i + 1].observe(each);
                }
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let families = self.registry.gather();
        prometheus::TextEncoder::new().encode_utf8(&families, &mut out).expect("text encoding cannot fail");
        out
    }

    /// The names of every metric family exported (histograms and counters by their family name).
    pub fn names(&self) -> Vec<String> {
        self.registry.gather().iter().map(|f| f.name().to_owned()).collect()
    }

    /// `/readyz`: in the room, and (when anyone is watched) media arrived within the last 10 s.
    pub fn readiness(&self) -> Result<String, String> {
        if self.sfu_joined.get() == 0 {
            return Err("not in the room (joining, or the media server is unreachable)".into());
        }
        let watched = self.participants.get();
        if watched == 0 {
            return Ok("in the room; nobody else publishes".into());
        }
        let t = self.media.totals();
        let received = t.video_in + t.audio_in;
        let mut seen = self.media_seen.lock().unwrap();
        // The gap counts from the last media, or from when someone new was watched.
        if received != seen.0 || watched != seen.1 {
            *seen = (received, watched, Instant::now());
        }
        let quiet = seen.2.elapsed();
        if quiet > READY_MEDIA_GAP {
            return Err(format!(
                "in the room with {watched} participant(s), but no media for {:.0} s",
                quiet.as_secs_f64()
            ));
        }
        Ok(format!("in the room; analysing {watched} participant(s)"))
    }
}

/// Register a labelled metric and resolve one child per label value, in order (every series exists from the
/// start, and the hot path holds the children, not the labels).
fn children<V, M, const N: usize>(
    registry: &Registry,
    vec: prometheus::Result<V>,
    labels: [&str; N],
    child: impl Fn(&V, &str) -> M,
) -> [M; N]
where
    V: Collector + Clone + 'static,
{
    let vec = vec.expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("metric names are unique and valid");
    labels.map(|l| child(&vec, l))
}

/// Lets the registry hold the collector while [`Metrics`] keeps its own handle.
struct SharedCollector(Arc<MediaCollector>);

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }
    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

/// Exports the workers' per-participant counters as totals over every participant seen, summed at scrape
/// time, so the per-frame path pays nothing for them.
pub struct MediaCollector {
    book: Mutex<Option<Arc<StatsBook>>>,
    /// The totals already added to the counters below.
    exported: Mutex<MediaTotals>,
    video_in: IntCounter,
    decoded: IntCounter,
    analysed: IntCounter,
    dropped: IntCounterVec,
    decode_errors: IntCounter,
    audio_in: IntCounter,
    audio_dropped: IntCounterVec,
    restarts: IntCounter,
    descs: Vec<Desc>,
}

impl MediaCollector {
    fn new() -> Self {
        let c = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let dropped = IntCounterVec::new(
            Opts::new(
                "deepfake_guard_video_frames_dropped_total",
                "Video frames not analysed, by reason: queue_full (dropped, oldest first, from a full queue), \
                 behind (decoded but not analysed: the worker was behind), keyframe_wait (discarded until the \
                 next keyframe after a loss or a decode error).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for r in ["queue_full", "behind", "keyframe_wait"] {
            dropped.with_label_values(&[r]);
        }
        let audio_dropped = IntCounterVec::new(
            Opts::new("deepfake_guard_audio_packets_dropped_total", "Audio packets dropped, by reason."),
            &["reason"],
        )
        .expect("valid metric");
        audio_dropped.with_label_values(&["queue_full"]);
        let mut m = MediaCollector {
            book: Mutex::new(None),
            exported: Mutex::new(MediaTotals::default()),
            video_in: c("deepfake_guard_video_frames_received_total", "Video frames received (reassembled from RTP)."),
            decoded: c("deepfake_guard_video_frames_decoded_total", "Video frames decoded."),
            analysed: c("deepfake_guard_video_frames_analysed_total", "Video frames analysed."),
            dropped,
            decode_errors: c("deepfake_guard_video_decode_errors_total", "Video frames the decoder rejected."),
            audio_in: c("deepfake_guard_audio_packets_received_total", "Audio (Opus) packets received."),
            audio_dropped,
            restarts: c(
                "deepfake_guard_analysis_restarts_total",
                "Times the analysis of a participant failed and started over.",
            ),
            descs: Vec::new(),
        };
        m.descs = m.parts().iter().flat_map(|c| c.desc()).cloned().collect();
        m
    }

    fn parts(&self) -> [&dyn Collector; 8] {
        [
            &self.video_in,
            &self.decoded,
            &self.analysed,
            &self.dropped,
            &self.decode_errors,
            &self.audio_in,
            &self.audio_dropped,
            &self.restarts,
        ]
    }

    fn totals(&self) -> MediaTotals {
        self.book.lock().unwrap().as_ref().map(|b| b.totals()).unwrap_or_default()
    }
}

impl Collector for MediaCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = self.totals();
        let mut done = self.exported.lock().unwrap();
        let add = |c: &IntCounter, new: u64, old: u64| c.inc_by(new.saturating_sub(old));
        add(&self.video_in, now.video_in, done.video_in);
        add(&self.decoded, now.frames_decoded, done.frames_decoded);
        add(&self.analysed, now.frames_analysed, done.frames_analysed);
        add(&self.dropped.with_label_values(&["queue_full"]), now.dropped_queue_full, done.dropped_queue_full);
        add(&self.dropped.with_label_values(&["behind"]), now.skipped_behind, done.skipped_behind);
        add(&self.dropped.with_label_values(&["keyframe_wait"]), now.keyframe_wait, done.keyframe_wait);
        add(&self.decode_errors, now.decode_errors, done.decode_errors);
        add(&self.audio_in, now.audio_in, done.audio_in);
        add(&self.audio_dropped.with_label_values(&["queue_full"]), now.audio_dropped, done.audio_dropped);
        add(&self.restarts, now.restarts, done.restarts);
        // Totals only grow (departed participants stay in them), so what was exported never exceeds them.
        *done = now.max_each(&done);
        drop(done);
        self.parts().iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_from_the_start_with_prometheus_names() {
        let m = Metrics::new();
        let text = m.render();
        for line in [
            "deepfake_guard_participant_states{state=\"alert\"} 0",
            "deepfake_guard_participant_states{state=\"pending\"} 0",
            "deepfake_guard_video_frames_dropped_total{reason=\"keyframe_wait\"} 0",
            "deepfake_guard_windows_total{state=\"none\"} 0",
            "deepfake_guard_stage_duration_seconds_count{stage=\"temporal\"} 0",
            "deepfake_guard_datachannel_messages_sent_total{type=\"heartbeat\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains(&format!("deepfake_guard_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))));
        for name in m.names() {
            assert!(name.starts_with("deepfake_guard_") || name.starts_with("process_"), "{name}");
            let counter = text.contains(&format!("# TYPE {name} counter"));
            assert_eq!(counter, name.ends_with("_total"), "{name}: counters, and only they, end in _total");
        }
    }

    #[test]
    fn states_and_verdicts_are_counted_per_state() {
        let m = Metrics::new();
        m.set_states([Some(State::Alert), None, Some(State::Clear), Some(State::Clear)]);
        m.verdict(State::Alert);
        m.window(Some(State::Suspicious));
        let text = m.render();
        for line in [
            "deepfake_guard_participants 4",
            "deepfake_guard_participant_states{state=\"clear\"} 2",
            "deepfake_guard_participant_states{state=\"alert\"} 1",
            "deepfake_guard_participant_states{state=\"pending\"} 1",
            "deepfake_guard_verdicts_total{state=\"alert\"} 1",
            "deepfake_guard_alerts_total 1",
            "deepfake_guard_windows_total{state=\"suspicious\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?}");
        }
        m.set_states([]);
        assert!(m.render().contains("deepfake_guard_participant_states{state=\"alert\"} 0"));
    }

    #[test]
    fn stage_times_are_observed_per_run() {
        let m = Metrics::new();
        let mut t = StageTimes::default();
        t.runs[Stage::Temporal as usize] = 2;
        t.nanos[Stage::Temporal as usize] = 4_000_000;
        m.stage_times(&t);
        m.decode_time(Duration::from_micros(800));
        let text = m.render();
        assert!(text.contains("deepfake_guard_stage_duration_seconds_count{stage=\"temporal\"} 2"), "{text}");
        assert!(text.contains("deepfake_guard_stage_duration_seconds_sum{stage=\"temporal\"} 0.004"), "{text}");
        assert!(text.contains("deepfake_guard_stage_duration_seconds_count{stage=\"decode\"} 1"));
        assert!(text.contains("deepfake_guard_stage_duration_seconds_count{stage=\"face\"} 0"));
    }

    #[test]
    fn readiness_needs_the_room_and_flowing_media() {
        let m = Metrics::new();
        assert!(m.readiness().is_err(), "not joined yet");
        m.sfu_joined.set(1);
        assert!(m.readiness().is_ok(), "joined, nobody to watch");
        // in the room, alone, for long; then someone publishes: the gap starts now, not when the guard joined
        *m.media_seen.lock().unwrap() = (0, 0, Instant::now() - READY_MEDIA_GAP * 2);
        m.set_states([None]);
        assert!(m.readiness().is_ok(), "a new participant: the gap starts now");
        *m.media_seen.lock().unwrap() = (0, 1, Instant::now() - READY_MEDIA_GAP * 2);
        let e = m.readiness().unwrap_err();
        assert!(e.contains("no media"), "{e}");
    }
}
