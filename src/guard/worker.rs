//! Analysis workers: threads off the async runtime that decode and analyse participants' media.
//!
//! Each worker owns one set of models and the participants assigned to it (decoders, media clocks and the
//! sans-IO [`Analyzer`]). The async side hands it encoded media through a bounded per-participant queue:
//! when a participant's queue is full the oldest video frame is dropped (and decoding waits for the next
//! keyframe); when a worker falls behind it decodes the oldest frames without analysing them. Both are
//! counted. What the analysis finds comes back as [`WorkerEvent`]s.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use deepfake_guard_plugin_api::messages::State as Verdict;
use tokio::sync::mpsc::UnboundedSender;

use crate::analysis::frame::{AUDIO_RATE, AudioChunk, VideoFrame};
use crate::analysis::{Analyzer, AnalyzerConfig, Output, WindowReport};
use crate::inference::{Manifest, Models};
use crate::media::live::{AudioDecoder, Codec, TrackClock, VideoDecoder, VideoOutcome};
use crate::metrics::Metrics;

/// One encoded media unit from a participant's track.
#[derive(Debug)]
pub struct Media {
    pub codec: Codec,
    pub data: Bytes,
    pub rtp_ts: u32,
    /// RTP sequence number (of the last packet of a video frame).
    pub seq: u16,
    /// Arrival on the participant's clock, microseconds since it was first seen.
    pub arrival_us: i64,
    /// Media before this unit was lost: decoding restarts at a keyframe.
    pub after_loss: bool,
}

/// What a worker reports to the async side.
#[derive(Debug)]
pub enum WorkerEvent {
    /// An analysis window closed. `changed`: the participant's state differs from the previous window's.
    Window { participant: u64, report: Box<WindowReport>, changed: bool },
    /// Decoding waits for a keyframe: ask the sender for one (picture loss indication).
    KeyframeWanted { participant: u64 },
}

/// Per-participant counters, readable from anywhere.
#[derive(Debug, Default)]
pub struct ParticipantStats {
    pub video_in: AtomicU64,
    pub audio_in: AtomicU64,
    pub frames_decoded: AtomicU64,
    pub frames_analysed: AtomicU64,
    /// Oldest video frames dropped from a full queue.
    pub dropped_queue_full: AtomicU64,
    /// Frames decoded but not analysed because the worker was behind.
    pub skipped_behind: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Video frames discarded while decoding waited for a keyframe.
    pub keyframe_wait: AtomicU64,
    pub audio_packets: AtomicU64,
    /// Oldest audio packets dropped from a full queue.
    pub audio_dropped: AtomicU64,
    pub windows: AtomicU64,
    /// Times the analysis of this participant panicked and started over.
    pub restarts: AtomicU64,
}

impl ParticipantStats {
    pub fn totals(&self) -> MediaTotals {
        let l = |a: &AtomicU64| a.load(Relaxed);
        MediaTotals {
            video_in: l(&self.video_in),
            frames_decoded: l(&self.frames_decoded),
            frames_analysed: l(&self.frames_analysed),
            dropped_queue_full: l(&self.dropped_queue_full),
            skipped_behind: l(&self.skipped_behind),
            keyframe_wait: l(&self.keyframe_wait),
            decode_errors: l(&self.decode_errors),
            audio_in: l(&self.audio_in),
            audio_dropped: l(&self.audio_dropped),
            restarts: l(&self.restarts),
        }
    }
}

/// Media counters summed over participants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaTotals {
    pub video_in: u64,
    pub frames_decoded: u64,
    pub frames_analysed: u64,
    pub dropped_queue_full: u64,
    pub skipped_behind: u64,
    pub keyframe_wait: u64,
    pub decode_errors: u64,
    pub audio_in: u64,
    pub audio_dropped: u64,
    pub restarts: u64,
}

impl MediaTotals {
    fn add(&mut self, o: &MediaTotals) {
        self.zip_with(o, |a, b| a + b);
    }

    /// Each field the larger of the two.
    pub fn max_each(mut self, o: &MediaTotals) -> MediaTotals {
        self.zip_with(o, u64::max);
        self
    }

    fn zip_with(&mut self, o: &MediaTotals, f: impl Fn(u64, u64) -> u64) {
        for (a, b) in [
            (&mut self.video_in, o.video_in),
            (&mut self.frames_decoded, o.frames_decoded),
            (&mut self.frames_analysed, o.frames_analysed),
            (&mut self.dropped_queue_full, o.dropped_queue_full),
            (&mut self.skipped_behind, o.skipped_behind),
            (&mut self.keyframe_wait, o.keyframe_wait),
            (&mut self.decode_errors, o.decode_errors),
            (&mut self.audio_in, o.audio_in),
            (&mut self.audio_dropped, o.audio_dropped),
            (&mut self.restarts, o.restarts),
        ] {
            *a = f(*a, b);
        }
    }
}

/// The counters of every participant the workers were given, the departed ones folded into one total, so
/// the sums only grow.
#[derive(Default)]
pub struct StatsBook {
    inner: Mutex<(Vec<Arc<ParticipantStats>>, MediaTotals)>,
}

impl StatsBook {
    fn add(&self, stats: Arc<ParticipantStats>) {
        self.inner.lock().unwrap().0.push(stats);
    }

    fn retire(&self, stats: &Arc<ParticipantStats>) {
        let mut b = self.inner.lock().unwrap();
        if let Some(i) = b.0.iter().position(|s| Arc::ptr_eq(s, stats)) {
            let gone = b.0.swap_remove(i);
            b.1.add(&gone.totals());
        }
    }

    /// Totals over every participant, current and departed.
    pub fn totals(&self) -> MediaTotals {
        let b = self.inner.lock().unwrap();
        let mut t = b.1;
        for s in &b.0 {
            t.add(&s.totals());
        }
        t
    }
}

/// The async side's end of a participant: push media, read counters. Dropping it does not stop the
/// analysis; [`Workers::remove`] does.
pub struct ParticipantHandle {
    pub id: u64,
    /// Time zero of the participant's media clock (arrival times are measured from it).
    pub epoch: std::time::Instant,
    pub stats: Arc<ParticipantStats>,
    worker: Arc<Shared>,
}

impl ParticipantHandle {
    /// Queue one media unit (never blocks; the oldest video frame makes room when the queue is full).
    pub fn push(&self, m: Media) {
        let video = m.codec.is_video();
        if video {
            self.stats.video_in.fetch_add(1, Relaxed);
        } else {
            self.stats.audio_in.fetch_add(1, Relaxed);
        }
        let mut st = self.worker.state.lock().unwrap();
        let cap = st.queue_frames;
        let Some(q) = st.slots.iter_mut().find(|s| s.id == self.id) else { return };
        if video
            && q.video_queued >= cap
            && let Some(i) = q.queue.iter().position(|m| m.codec.is_video())
        {
            q.queue.remove(i);
            q.video_queued -= 1;
            q.resync = true;
            self.stats.dropped_queue_full.fetch_add(1, Relaxed);
        }
        if !video && q.queue.len() >= cap * 4 {
            // Audio is small and never dropped before video, but stays bounded: drop its oldest packet.
            if let Some(i) = q.queue.iter().position(|m| !m.codec.is_video()) {
                q.queue.remove(i);
                self.stats.audio_dropped.fetch_add(1, Relaxed);
            }
        }
        q.video_queued += video as usize;
        q.queue.push_back(m);
        drop(st);
        self.worker.cv.notify_one();
    }
}

struct Queue {
    id: u64,
    queue: VecDeque<Media>,
    video_queued: usize,
    /// Video was dropped: the decoder must restart at a keyframe.
    resync: bool,
    removed: bool,
}

struct State {
    slots: Vec<Queue>,
    /// Participants waiting to be picked up by the worker thread.
    added: Vec<(u64, Arc<ParticipantStats>, std::time::Instant)>,
    next: usize,
    queue_frames: usize,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    participants: AtomicU64,
}

/// The worker pool.
pub struct Workers {
    workers: Vec<(Arc<Shared>, Option<JoinHandle<()>>)>,
    book: Arc<StatsBook>,
}

/// Settings the workers share.
#[derive(Clone)]
pub struct WorkerConfig {
    pub analyzer: AnalyzerConfig,
    pub queue_frames: usize,
    pub max_backlog_frames: usize,
}

impl Workers {
    /// Start `threads` workers, each loading its own models from `manifest` (fails if any cannot).
    pub fn start(
        threads: usize,
        manifest: &Manifest,
        cfg: WorkerConfig,
        metrics: Arc<Metrics>,
        events: UnboundedSender<WorkerEvent>,
    ) -> anyhow::Result<Workers> {
        let book = Arc::new(StatsBook::default());
        metrics.attach_media(book.clone());
        metrics.analysis_threads.set(threads.max(1) as i64);
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let models = Models::load(manifest)?;
            let shared = Arc::new(Shared {
                state: Mutex::new(State {
                    slots: Vec::new(),
                    added: Vec::new(),
                    next: 0,
                    queue_frames: cfg.queue_frames,
                    stop: false,
                }),
                cv: Condvar::new(),
                participants: AtomicU64::new(0),
            });
            let (s, c, m, ev) = (shared.clone(), cfg.clone(), metrics.clone(), events.clone());
            let h = std::thread::Builder::new()
                .name(format!("analysis-{i}"))
                .spawn(move || run(s, models, c, Outputs { metrics: m, events: ev }))?;
            workers.push((shared, Some(h)));
        }
        Ok(Workers { workers, book })
    }

    /// Every participant's counters, summed.
    pub fn book(&self) -> &Arc<StatsBook> {
        &self.book
    }

    /// Start analysing participant `id` on the least loaded worker.
    pub fn add(&self, id: u64) -> ParticipantHandle {
        let (w, _) =
            self.workers.iter().min_by_key(|(w, _)| w.participants.load(Relaxed)).expect("at least one worker");
        w.participants.fetch_add(1, Relaxed);
        let stats = Arc::new(ParticipantStats::default());
        self.book.add(stats.clone());
        let epoch = std::time::Instant::now();
        let mut st = w.state.lock().unwrap();
        st.slots.push(Queue { id, queue: VecDeque::new(), video_queued: 0, resync: false, removed: false });
        st.added.push((id, stats.clone(), epoch));
        drop(st);
        w.cv.notify_one();
        ParticipantHandle { id, epoch, stats, worker: w.clone() }
    }

    /// Stop analysing participant `id` (of this `handle`) and free what it held.
    pub fn remove(&self, handle: &ParticipantHandle) {
        let id = handle.id;
        self.book.retire(&handle.stats);
        for (w, _) in &self.workers {
            let mut st = w.state.lock().unwrap();
            if let Some(q) = st.slots.iter_mut().find(|q| q.id == id && !q.removed) {
                q.removed = true;
                q.queue.clear();
                w.participants.fetch_sub(1, Relaxed);
                drop(st);
                w.cv.notify_one();
                return;
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (w, _) in &self.workers {
            w.state.lock().unwrap().stop = true;
            w.cv.notify_all();
        }
        for (_, h) in &mut self.workers {
            if let Some(h) = h.take() {
                let _ = h.join();
            }
        }
    }
}

/// A participant as its worker holds it.
struct Slot {
    id: u64,
    stats: Arc<ParticipantStats>,
    /// Time zero of the participant's arrival times.
    epoch: std::time::Instant,
    analyzer: Analyzer,
    video: Option<VideoDecoder>,
    audio: Option<AudioDecoder>,
    video_clock: TrackClock,
    audio_clock: TrackClock,
    last_state: Option<Verdict>,
    decode_errors_seen: u64,
    size: (u32, u32),
}

/// Where a worker's findings go: the metrics, and events for the async side.
struct Outputs {
    metrics: Arc<Metrics>,
    events: UnboundedSender<WorkerEvent>,
}

fn run(shared: Arc<Shared>, mut models: Models, cfg: WorkerConfig, out: Outputs) {
    let mut slots: Vec<Slot> = Vec::new();
    loop {
        // Take one unit of work (or the news) under the lock; process it outside.
        let (id, media, backlog, resync) = {
            let mut st = shared.state.lock().unwrap();
            loop {
                if st.stop {
                    return;
                }
                for (id, stats, epoch) in st.added.drain(..) {
                    slots.push(Slot {
                        id,
                        stats,
                        epoch,
                        analyzer: Analyzer::new(cfg.analyzer.clone(), &models),
                        video: None,
                        audio: None,
                        video_clock: TrackClock::new(90_000),
                        audio_clock: TrackClock::new(48_000),
                        last_state: None,
                        decode_errors_seen: 0,
                        size: (0, 0),
                    });
                }
                st.slots.retain(|q| {
                    if q.removed {
                        slots.retain(|s| s.id != q.id);
                    }
                    !q.removed
                });
                // Round robin over participants with queued media.
                let n = st.slots.len();
                let start = st.next;
                let mut picked = None;
                for k in 0..n {
                    let i = (start + k) % n;
                    if !st.slots[i].queue.is_empty() {
                        picked = Some(i);
                        break;
                    }
                }
                if let Some(i) = picked {
                    st.next = i + 1;
                    let q = &mut st.slots[i];
                    let m = q.queue.pop_front().expect("non-empty");
                    if m.codec.is_video() {
                        q.video_queued -= 1;
                    }
                    let resync = std::mem::take(&mut q.resync);
                    break (q.id, m, q.video_queued, resync);
                }
                st = shared.cv.wait(st).unwrap();
            }
        };
        let Some(slot) = slots.iter_mut().find(|s| s.id == id) else { continue };
        // A bug in the analysis of one participant must not take the others on this worker down with it:
        // that participant starts over instead.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process(slot, media, backlog, resync, &cfg, &mut models, &out)
        }));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("participant {id}: analysis error: {e}"),
            Err(_) => {
                log::error!("participant {id}: the analysis panicked; starting this participant over");
                slot.analyzer = Analyzer::new(cfg.analyzer.clone(), &models);
                slot.video = None;
                slot.audio = None;
                slot.video_clock = TrackClock::new(90_000);
                slot.audio_clock = TrackClock::new(48_000);
                slot.stats.restarts.fetch_add(1, Relaxed);
            }
        }
    }
}

fn process(
    s: &mut Slot,
    m: Media,
    backlog: usize,
    resync: bool,
    cfg: &WorkerConfig,
    models: &mut Models,
    out: &Outputs,
) -> anyhow::Result<()> {
    let (metrics, events) = (&*out.metrics, &out.events);
    let arrived = s.epoch + std::time::Duration::from_micros(m.arrival_us.max(0) as u64);
    if m.codec.is_video() {
        if s.video.as_ref().is_none_or(|d| d.codec() != m.codec) {
            s.video = Some(VideoDecoder::new(m.codec)?);
        }
        let dec = s.video.as_mut().expect("set above");
        if resync || m.after_loss {
            dec.resync();
        }
        let pts = s.video_clock.pts(m.rtp_ts, m.arrival_us);
        let t0 = std::time::Instant::now();
        let outcome = dec.decode(&m.data);
        metrics.decode_time(t0.elapsed());
        if dec.errors > s.decode_errors_seen {
            s.stats.decode_errors.fetch_add(dec.errors - s.decode_errors_seen, Relaxed);
            s.decode_errors_seen = dec.errors;
        }
        match outcome {
            VideoOutcome::NeedKeyframe => {
                s.stats.keyframe_wait.fetch_add(1, Relaxed);
                let _ = events.send(WorkerEvent::KeyframeWanted { participant: s.id });
            }
            VideoOutcome::Nothing => {}
            VideoOutcome::Picture => {
                s.stats.frames_decoded.fetch_add(1, Relaxed);
                if backlog > cfg.max_backlog_frames {
                    s.stats.skipped_behind.fetch_add(1, Relaxed);
                    s.analyzer.skip_video(pts);
                } else if let Some(image) = dec.picture() {
                    if (image.width, image.height) != s.size {
                        log::debug!(
                            "participant {}: video {}x{} at {} ms",
                            s.id,
                            image.width,
                            image.height,
                            pts / 1000
                        );
                        s.size = (image.width, image.height);
                    }
                    s.analyzer.push_video(VideoFrame { pts_us: pts, image }, models)?;
                    s.stats.frames_analysed.fetch_add(1, Relaxed);
                }
            }
        }
    } else {
        if s.audio.is_none() {
            s.audio = Some(AudioDecoder::new()?);
        }
        let dec = s.audio.as_mut().expect("set above");
        let pts = s.audio_clock.pts(m.rtp_ts, m.arrival_us);
        let (lead, samples) = dec.decode(m.seq, &m.data);
        if !samples.is_empty() {
            s.stats.audio_packets.fetch_add(1, Relaxed);
            // Concealed samples come in front of the packet's own.
            let pts_us = pts - lead as i64 * 1_000_000 / AUDIO_RATE as i64;
            s.analyzer.push_audio(AudioChunk { pts_us, samples }, models)?;
        }
    }
    metrics.stage_times(&s.analyzer.take_stage_times());
    while let Some(output) = s.analyzer.poll_output() {
        if let Output::Window(report) = output {
            s.stats.windows.fetch_add(1, Relaxed);
            metrics.window(report.state);
            metrics.frame_to_verdict.observe(arrived.elapsed().as_secs_f64());
            let changed = report.state != s.last_state;
            s.last_state = report.state;
            let _ = events.send(WorkerEvent::Window { participant: s.id, report: Box::new(report), changed });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn count(text: &str, series: &str) -> u64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn exported_media_counters_keep_departed_participants() {
        let book = Arc::new(StatsBook::default());
        let metrics = Metrics::new();
        metrics.attach_media(book.clone());
        let (a, b) = (Arc::new(ParticipantStats::default()), Arc::new(ParticipantStats::default()));
        book.add(a.clone());
        book.add(b.clone());
        a.video_in.fetch_add(10, Relaxed);
        b.video_in.fetch_add(5, Relaxed);
        b.skipped_behind.fetch_add(2, Relaxed);
        let text = metrics.render();
        assert_eq!(count(&text, "deepfake_guard_video_frames_received_total "), 15);
        assert_eq!(count(&text, "deepfake_guard_video_frames_dropped_total{reason=\"behind\"}"), 2);
        // b leaves; a goes on: the totals only grow.
        book.retire(&b);
        a.video_in.fetch_add(1, Relaxed);
        let text = metrics.render();
        assert_eq!(count(&text, "deepfake_guard_video_frames_received_total "), 16);
        assert_eq!(count(&text, "deepfake_guard_video_frames_dropped_total{reason=\"behind\"}"), 2);
        book.retire(&b); // twice: no double count
        assert_eq!(book.totals().video_in, 16);
    }
}
