//! The per-participant analyser: a sans-IO state machine. Feed it decoded frames and audio with their media
//! timestamps; poll it for window reports. It never blocks, and the same input gives the same output: the
//! only clock it reads times its own stages for the operator's metrics ([`StageTimes`]), and no result
//! depends on that.

use std::collections::VecDeque;
use std::time::Instant;

use deepfake_guard_plugin_api::messages::{NotJudged, State};
use deepfake_guard_plugin_api::{AudioFeatures, Detector, FaceFeatures, FrameFeatures, Signal, Window};

use super::audio::{AudioFeaturizer, AudioFrame};
use super::crop::{Normalize, Roi, sample_roi};
use super::face::{BlazeFaceDecoder, Detection, mesh, roi_from_landmarks};
use super::frame::{AudioChunk, VideoFrame};
use super::lipsync::{LipSync, LipSyncConfig, SyncEstimate};
use super::temporal::{self, AUX, FeatureRing, SYNC_LEN, ix};
use super::verdict::{Verdict, VerdictConfig, VerdictMachine};
use crate::inference::{HeadOutput, InferenceError, Models};

/// Settings of the analysis core. `Default` gives the values the product ships with.
#[derive(Clone, Debug)]
pub struct AnalyzerConfig {
    /// Run face detection at least every this many analysed frames (landmarks track the face in between).
    pub detect_every: u32,
    /// Analyse every n-th video frame (1 = all).
    pub frame_stride: u32,
    /// A frame closer than this (media time) to the last analysed one is not analysed: the head's grid is
    /// 40 ms, so 50 and 60 fps sources are analysed at 25 and 30 fps (half the work, the same verdicts).
    /// Such frames are not counted as skipped. 0 analyses every frame.
    pub min_frame_gap_us: i64,
    /// Run the backbone every n-th analysed frame with a face (1 = all).
    pub backbone_every: u32,
    /// Minimum face-presence probability from the landmark model to keep tracking.
    pub min_presence: f32,
    /// Analysis window length and hop, media time.
    pub window_us: i64,
    pub hop_us: i64,
    /// Whether audio is expected at all; when false, frames never wait for it.
    pub expect_audio: bool,
    /// How far video may run ahead of audio before frames are analysed as having no audio.
    pub audio_wait_us: i64,
    pub lipsync: LipSyncConfig,
    /// Also emit one [`Output::Frame`] per analysed frame.
    pub frame_reports: bool,
    /// Verdict thresholds; `None`: the temporal head's own operating point from the manifest, with
    /// `raise_windows`.
    pub verdict: Option<VerdictConfig>,
    /// With `verdict: None`: windows in a row at or above the threshold that raise an alert.
    pub raise_windows: u32,
    /// With `verdict: None`: windows in a row at or above 0.95, with the lip-sync estimator confidently
    /// measuring an offset beyond twice `natural_offset_ms`, that raise an alert sooner (0: off).
    pub strong_windows: u32,
    /// With `verdict: None`: windows in a row below the clearing threshold that end an alert or `suspicious`.
    pub clear_windows: u32,
    /// With `verdict: None`: whether the head's score alone may raise an alert (off: it needs the lip-sync
    /// estimator's corroboration; see [`VerdictConfig::head_alone_alerts`]).
    pub head_alone_alerts: bool,
    /// With `verdict: None`: media time of windows in a row that cannot be judged (frames missing, or the
    /// guard behind) after which the participant is reported as not judged, with the reason.
    pub stale_us: i64,
    /// Emit every frame's feature row ([`Output::Row`]) and each window's head input (for training).
    pub export_rows: bool,
    /// A steady audio/video offset up to this size (ms, either way) that the lip-sync estimator measures with
    /// confidence is taken as the client's capture offset: the head judges the window with the audio moved
    /// back by it (by this much of a larger offset: the rest is lip-sync drift). 0 turns it off.
    pub natural_offset_ms: f32,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            detect_every: 10,
            frame_stride: 1,
            min_frame_gap_us: 26_000,
            backbone_every: 1,
            min_presence: 0.5,
            window_us: 3_200_000,
            hop_us: 1_600_000,
            expect_audio: true,
            audio_wait_us: 1_000_000,
            lipsync: LipSyncConfig::default(),
            frame_reports: false,
            verdict: None,
            // One corroborated window is two measurements of the offset 1.6 s apart (the window and its
            // `LipSync::earlier` partner, the window before at scan's hop): 4.8 s of evidence, as scan's two windows
            // in a row were before corroboration asked for the earlier one. A head score alone
            // (`head_alone_alerts`) is counted by the same number of windows.
            raise_windows: 1,
            strong_windows: 0,
            clear_windows: VerdictConfig::default().clear_windows,
            head_alone_alerts: false,
            stale_us: 3_000_000,
            export_rows: false,
            natural_offset_ms: 60.0,
        }
    }
}

/// A window's findings.
#[derive(Clone, Debug)]
pub struct WindowReport {
    pub start_us: i64,
    pub end_us: i64,
    /// Frames that arrived in the window but were not analysed ([`Analyzer::skip_video`]). A window with
    /// more than 10 % of them is not scored.
    pub skipped: u32,
    /// Slots of the head's 40 ms grid inside a gap of lost frames (wider than `temporal::MAX_GAP_US`; slots
    /// between the frames of a slower source are interpolated and count as covered). A window with more than
    /// 5 % of them is not scored: the head never saw such input.
    pub held_slots: u32,
    /// Analysed frames in the window.
    pub frames: u32,
    /// Share of those with a tracked face.
    pub face_ratio: f32,
    /// Most faces seen at once.
    pub faces: u32,
    /// Mean mouth opening over frames with a face (relative to face size).
    pub mouth_open: Option<f32>,
    /// Share of frames covered by audio.
    pub audio_ratio: f32,
    /// Lip-sync estimate of the window, if it had face, motion and sound.
    pub sync: Option<SyncEstimate>,
    /// The estimate of the window half a window earlier ([`LipSync::earlier`]) and of the mean curve of the last
    /// windows with the media time they span ([`LipSync::recent`]): the second and third measurements the
    /// corroboration rule compares with `sync`.
    pub sync_earlier: Option<SyncEstimate>,
    pub sync_recent: Option<(SyncEstimate, i64)>,
    /// Every detector's signal, by detector name (the built-in `lipsync` first, then `temporal` when the
    /// head ran).
    pub signals: Vec<(String, Signal)>,
    /// The temporal head's p(fake) and offset estimate for the window, if the manifest has a head.
    pub head: Option<HeadOutput>,
    /// The head's score when it counts (a face, frames complete); `None`: the window was not judged.
    pub score: Option<f32>,
    /// Whether the lip-sync estimator measured, with confidence, an offset beyond the capture paths' range.
    pub corroborated: bool,
    /// The detectors whose evidence points to a manipulation in this window: `temporal` (the head's score at
    /// or above the alert threshold), `lipsync` (corroborated).
    pub evidence: Vec<&'static str>,
    /// Why the participant is not judged, when its state says so.
    pub not_judged: Option<NotJudged>,
    /// The participant's state after this window (`None` without a head).
    pub state: Option<State>,
    /// With [`AnalyzerConfig::export_rows`]: the row sequence number of each grid slot (-1: empty) and the
    /// sync vector, i.e. exactly what the head was (or would be) given.
    pub head_input: Option<(Vec<i64>, Vec<f32>)>,
}

impl WindowReport {
    /// Whether a face was present for most of the window.
    pub fn face(&self) -> bool {
        self.face_ratio >= 0.5
    }

    /// Whether the head's score of this window counts.
    pub fn judged(&self) -> bool {
        self.score.is_some()
    }
}

/// What the analyser produces.
#[derive(Clone, Debug)]
pub enum Output {
    Window(WindowReport),
    /// Per-frame measurements, only when [`AnalyzerConfig::frame_reports`] is on (for debugging and research).
    Frame(FrameReport),
    /// A frame's feature row, only when [`AnalyzerConfig::export_rows`] is on (training data).
    Row(FeatureRow),
}

/// One frame's feature row as the temporal head sees it (layout in [`temporal`]).
#[derive(Clone, Debug)]
pub struct FeatureRow {
    pub seq: u64,
    pub pts_us: i64,
    pub values: Vec<f32>,
}

/// One analysed frame's measurements.
#[derive(Clone, Copy, Debug)]
pub struct FrameReport {
    pub pts_us: i64,
    pub faces: u32,
    pub mouth_open: Option<f32>,
    pub mouth_width: Option<f32>,
    pub audio_level_db: Option<f32>,
    pub audio_envelope: Option<f32>,
}

/// Totals over everything analysed so far.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub frames: u64,
    pub analysed_frames: u64,
    pub face_frames: u64,
    pub audio_frames: u64,
    /// Frames whose audio is louder than silence (see `SPEECH_LEVEL_DB`).
    pub loud_frames: u64,
    pub detections_run: u64,
    pub windows: u64,
    pub sync: Option<SyncEstimate>,
    /// Windows the temporal head scored, the sum of their scores, and how many ended in `alert`.
    pub scored_windows: u64,
    pub score_sum: f64,
    pub alert_windows: u64,
    /// The thresholds verdicts were made with (`None` without a head).
    pub verdict_config: Option<VerdictConfig>,
    /// Windows with a face that were not judged: frames missing, or the analysis behind.
    pub too_few_frames_windows: u64,
    pub behind_windows: u64,
}

impl Summary {
    pub fn face_ratio(&self) -> f32 {
        if self.analysed_frames == 0 { 0.0 } else { self.face_frames as f32 / self.analysed_frames as f32 }
    }

    pub fn audio_ratio(&self) -> f32 {
        if self.analysed_frames == 0 { 0.0 } else { self.audio_frames as f32 / self.analysed_frames as f32 }
    }

    /// Mean p(fake) over the scored windows.
    pub fn score(&self) -> Option<f32> {
        (self.scored_windows > 0).then(|| (self.score_sum / self.scored_windows as f64) as f32)
    }

    /// `genuine`, `fake`, `suspicious`, `no-face` or `no-audio`; `None` without a temporal head, or with a face
    /// but no window judged ([`no_verdict_reason`](Self::no_verdict_reason) says why).
    pub fn verdict(&self) -> Option<Verdict> {
        let cfg = self.verdict_config.as_ref()?;
        // A silent track is no audio to judge the lips by.
        let silent = (self.loud_frames as f32) < MIN_LOUD_SHARE * self.analysed_frames as f32;
        let audio_ratio = if silent { 0.0 } else { self.audio_ratio() };
        Verdict::from_totals(self.face_ratio(), audio_ratio, self.score(), self.alert_windows, cfg)
    }

    /// Why [`verdict`](Self::verdict) is `None`, in words.
    pub fn no_verdict_reason(&self) -> Option<String> {
        if self.verdict().is_some() {
            return None;
        }
        Some(if self.verdict_config.is_none() {
            "the manifest has no temporal head".into()
        } else if self.windows == 0 {
            "the media is shorter than half an analysis window (1.6 s of video)".into()
        } else if self.too_few_frames_windows + self.behind_windows > 0 {
            let mut parts = Vec::new();
            if self.too_few_frames_windows > 0 {
                parts.push(format!(
                    "{} had frames missing (gaps over {} ms: a stalled sender, or under 7 fps)",
                    self.too_few_frames_windows,
                    temporal::MAX_GAP_US / 1000
                ));
            }
            if self.behind_windows > 0 {
                parts.push(format!("{} had frames skipped by an analysis that fell behind", self.behind_windows));
            }
            format!("no window could be judged: of {} windows, {}", self.windows, parts.join(", "))
        } else {
            format!("no window could be judged ({} windows)", self.windows)
        })
    }
}

/// Face measurements of one frame, owned (pooled) until the frame's audio is known.
#[derive(Clone, Default)]
struct FaceRec {
    bbox: [f32; 4],
    presence: f32,
    face_size: f32,
    landmarks: Vec<[f32; 3]>,
    mouth_open: f32,
    mouth_width: f32,
    mouth_velocity: f32,
    embedding: Vec<f32>,
    has_embedding: bool,
    /// Change cues against the previous frame: landmark motion, embedding change, thumbnail change,
    /// centre-minus-border brightness and its change.
    landmark_motion: f32,
    embedding_delta: f32,
    thumb_delta: f32,
    centre_border: f32,
    centre_border_delta: f32,
}

#[derive(Default)]
struct FrameRec {
    pts_us: i64,
    faces: u32,
    face: Option<FaceRec>,
}

/// Per-frame record kept for window statistics.
#[derive(Clone, Copy)]
struct Tally {
    pts_us: i64,
    faces: u32,
    has_face: bool,
    mouth_open: f32,
    has_audio: bool,
    /// Audio louder than [`SPEECH_LEVEL_DB`] (speech, not silence or a room's hiss).
    loud: bool,
}

/// Frame audio level (dBFS) above which a frame's audio counts as sound to check the lips against.
const SPEECH_LEVEL_DB: f32 = -45.0;
/// A window in which fewer than this share of frames carry such sound is judged as without audio (`no-audio`):
/// a muted microphone sends silence, and lips that move over silence are what a muted speaker looks like, not a
/// manipulation the guard can tell.
const MIN_LOUD_SHARE: f32 = 0.1;

/// Lip-sync confidence above which a window's small offset is taken as the client's own (see
/// `AnalyzerConfig::natural_offset_ms`).
const NATURAL_OFFSET_MIN_CONFIDENCE: f32 = 0.4;

/// Offsets smaller than this are left alone (the head was trained with clips within a few ms of sync).
const NATURAL_OFFSET_MIN_MS: f32 = 10.0;
/// Lip-sync confidence at which an offset beyond the natural range corroborates a high head score (the fast
/// alert path). Live genuine publishers measured 0.58-0.83 with offsets within 45 ms; a lip-synced fake 0.18-0.56
/// with +360 ms from its first window; a flat, ambiguous correlation curve stays below 0.2.
const CORROBORATION_MIN_CONFIDENCE: f32 = 0.2;

/// How far beyond the natural range (as a multiple of `AnalyzerConfig::natural_offset_ms`) a measured offset
/// must be to corroborate the fast alert path: 2 x 60 = 120 ms by default, past the -90 ms (audio early) at
/// which ITU-R BT.1359 finds a lag unacceptable to viewers; a genuine Chromium publisher measured -91 ms in
/// one window of a demo call, -48 to -63 ms in the rest.
const CORROBORATION_OFFSET_FACTOR: f32 = 2.0;

/// How close the offsets of the window, of a window half a window earlier ([`LipSync::earlier`]) and of the mean
/// curve of the last windows ([`LipSync::recent`]) must be for them to corroborate: three frames at 25 fps (the
/// per-window estimate of a drift wanders by a frame or two on a generator never trained on). A drift is one
/// offset; an accidental peak wanders further.
const CORROBORATION_AGREE_MS: f32 = 120.0;

/// How much earlier than the window a second window must begin whose own estimate measures the same offset
/// (within `CORROBORATION_AGREE_MS`): half a window, so the two share at most half their speech (the live
/// guard's windows, 0.2 s apart, share most of their media, and a confident wrong peak in the first seconds of
/// a stream lasts several of them).
const CORROBORATION_EARLIER_US: i64 = 1_600_000;

/// How far the recent mean curve's peak must stand above the in-sync lags' correlation (its
/// [`SyncEstimate::margin`]): an offset measured over 8 s of speech stands out by 0.27-0.43 for drifted clips of a
/// generator never trained on, a run of accidental peaks in a genuine clip by 0.01-0.05 (the in-sync lags come
/// back as the mean takes in more speech).
const CORROBORATION_MIN_RECENT_MARGIN: f32 = 0.1;

/// Lowest correlation at the in-sync lags of the recent mean curve for an offset elsewhere to corroborate.
/// Over whole clips of a generator never trained on (meshgen), drifted clips measured -0.02..0.15 there and genuine
/// clips of a face whose mouth measurement runs against the sound -0.17..-0.30; over 8 s, a drift of 160-280 ms
/// dips to -0.2 at times (the speech envelope's own negative lobe lands on zero lag), which costs a window or two
/// of such a fake, not the fake.
const CORROBORATION_MIN_IN_SYNC: f32 = -0.1;

/// Largest share of a window's frames that may have been skipped for its score to count.
const MAX_SKIPPED_SHARE: f32 = 0.1;

/// Largest share of a window's grid slots inside gaps of lost frames (wider than `temporal::MAX_GAP_US`) for its
/// score to count (4 of 80: one stall of about 300 ms; slots between the frames of a slower source are
/// interpolated and count as covered).
const MAX_HELD_SHARE: f32 = 0.05;

/// The same, for a window in which the lip-sync estimator confidently measures drift (see `corroborated`): a
/// sender's first seconds often drop frames (a video encoder ramping up holds 7-11 of the first 80 slots), and
/// a few held slots cannot make lips and sound drift apart by more than the natural range.
const MAX_HELD_SHARE_CORROBORATED: f32 = 0.15;

/// Errors of the analysis core.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A model failed to run.
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// A stage of the per-frame (and per-window) work, as the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Face detection (BlazeFace on the whole frame, every few frames), crop included.
    Face = 0,
    /// Landmarks (FaceMesh on the tracked crop) and the lip features.
    Landmarks = 1,
    /// The backbone embedding of the aligned face crop.
    Backbone = 2,
    /// The temporal head over one window.
    Temporal = 3,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Face, Stage::Landmarks, Stage::Backbone, Stage::Temporal];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Face => "face",
            Stage::Landmarks => "landmarks",
            Stage::Backbone => "backbone",
            Stage::Temporal => "temporal",
        }
    }
}

/// Wall time the stages took since the last [`Analyzer::take_stage_times`]: runs and total nanoseconds,
/// indexed by [`Stage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    pub runs: [u32; 4],
    pub nanos: [u64; 4],
}

impl StageTimes {
    fn record(&mut self, stage: Stage, since: Instant) {
        let i = stage as usize;
        self.runs[i] += 1;
        self.nanos[i] += since.elapsed().as_nanos() as u64;
    }
}

/// The sans-IO analyser of one participant.
pub struct Analyzer {
    times: StageTimes,
    cfg: AnalyzerConfig,
    decoder: BlazeFaceDecoder,
    det_norm: Normalize,
    lm_norm: Normalize,
    bb_norm: Normalize,
    audio: AudioFeaturizer,
    lipsync: LipSync,
    detectors: Vec<Box<dyn Detector>>,
    // Tracking state.
    track: Option<Roi>,
    since_detect: u32,
    last_faces: u32,
    last_mouth: Option<(i64, f32)>,
    backbone_count: u32,
    // Frames waiting for their audio, and a pool of spare records.
    pending: VecDeque<FrameRec>,
    pool: Vec<FrameRec>,
    spare_faces: Vec<FaceRec>,
    tallies: VecDeque<Tally>,
    /// Media times of frames that arrived but were not analysed (a live caller falling behind).
    skipped: VecDeque<i64>,
    next_window_start: Option<i64>,
    last_frame_us: i64,
    frame_interval_us: i64,
    outputs: VecDeque<Output>,
    summary: Summary,
    // Scratch buffers reused every frame.
    tensor: Vec<f32>,
    detections: Vec<Detection>,
    frame_counter: u64,
    // Previous frame's face, for the change cues.
    prev_landmarks: Vec<[f32; 3]>,
    prev_embedding: Vec<f32>,
    prev_thumb: Option<[f32; 64]>,
    prev_centre_border: Option<f32>,
    // Temporal head input and the verdict.
    ring: FeatureRing,
    row: Vec<f32>,
    head_frames: Vec<f32>,
    head_seqs: Vec<i64>,
    verdict: Option<VerdictMachine>,
}

impl Analyzer {
    /// An analyser whose crops follow the models' preprocessing.
    pub fn new(cfg: AnalyzerConfig, models: &Models) -> Self {
        Self {
            times: StageTimes::default(),
            decoder: BlazeFaceDecoder::new(models.detector.pre.size),
            det_norm: Normalize::from_preprocessing(&models.detector.pre),
            lm_norm: Normalize::from_preprocessing(&models.landmarks.pre),
            bb_norm: Normalize::from_preprocessing(&models.backbone.pre),
            audio: AudioFeaturizer::new(),
            lipsync: LipSync::new(cfg.lipsync.clone()),
            detectors: Vec::new(),
            track: None,
            since_detect: 0,
            last_faces: 0,
            last_mouth: None,
            backbone_count: 0,
            pending: VecDeque::new(),
            pool: Vec::new(),
            spare_faces: Vec::new(),
            tallies: VecDeque::new(),
            skipped: VecDeque::new(),
            next_window_start: None,
            last_frame_us: i64::MIN,
            frame_interval_us: 40_000,
            outputs: VecDeque::new(),
            summary: Summary::default(),
            tensor: Vec::new(),
            detections: Vec::new(),
            frame_counter: 0,
            prev_landmarks: Vec::new(),
            prev_embedding: Vec::new(),
            prev_thumb: None,
            prev_centre_border: None,
            ring: FeatureRing::new(AUX + models.backbone.dim, 8_000_000),
            row: Vec::with_capacity(AUX + models.backbone.dim),
            head_frames: Vec::new(),
            head_seqs: Vec::new(),
            verdict: models.head.as_ref().map(|h| {
                VerdictMachine::new(cfg.verdict.clone().unwrap_or(VerdictConfig {
                    alert: h.params.threshold,
                    suspicious: h.params.suspicious,
                    clear: h.params.clear,
                    raise_windows: cfg.raise_windows,
                    strong: VerdictConfig::default().strong.max(h.params.threshold),
                    strong_windows: cfg.strong_windows,
                    clear_windows: cfg.clear_windows,
                    head_alone_alerts: cfg.head_alone_alerts,
                    stale_windows: (cfg.stale_us.max(0) + cfg.hop_us.max(1) - 1) as u32 / cfg.hop_us.max(1) as u32,
                    ..VerdictConfig::default()
                }))
            }),
            cfg,
        }
    }

    /// Plug in an extra detector; it sees every analysed frame and is assessed on every window.
    pub fn add_detector(&mut self, detector: Box<dyn Detector>) {
        self.detectors.push(detector);
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.cfg
    }

    /// Feed decoded audio (16 kHz mono). Windows completed by it are assessed now (the temporal head runs).
    pub fn push_audio(&mut self, chunk: AudioChunk<'_>, models: &mut Models) -> Result<(), AnalysisError> {
        self.audio.push(chunk);
        self.flush_ready(false, models)
    }

    /// Feed one decoded video frame: runs the vision models now; the frame's audio part follows once audio
    /// covers its time.
    pub fn push_video(&mut self, frame: VideoFrame<'_>, models: &mut Models) -> Result<(), AnalysisError> {
        self.summary.frames += 1;
        self.frame_counter += 1;
        if self.cfg.frame_stride > 1 && !(self.frame_counter - 1).is_multiple_of(self.cfg.frame_stride as u64) {
            return Ok(());
        }
        if frame.pts_us <= self.last_frame_us {
            return Ok(()); // out of order or duplicate: the clock must advance
        }
        if self.last_frame_us != i64::MIN && frame.pts_us - self.last_frame_us < self.cfg.min_frame_gap_us {
            return Ok(()); // a source faster than the grid needs
        }
        if self.last_frame_us != i64::MIN {
            // Smoothed frame interval, for the audio window of each frame.
            let d = (frame.pts_us - self.last_frame_us).clamp(1_000, 1_000_000);
            self.frame_interval_us = (self.frame_interval_us * 7 + d) / 8;
        }
        self.last_frame_us = frame.pts_us;
        self.summary.analysed_frames += 1;
        let mut rec = self.pool.pop().unwrap_or_default();
        rec.pts_us = frame.pts_us;
        let mut face = rec.face.take().or_else(|| self.spare_faces.pop()).unwrap_or_default();
        let found = self.analyse_face(&frame, models, &mut face)?;
        rec.faces = self.last_faces;
        if found {
            rec.face = Some(face);
        } else {
            self.spare_faces.push(face); // keep its buffers for a later frame
        }
        self.pending.push_back(rec);
        self.flush_ready(false, models)
    }

    /// Detect or track, then landmarks, lip features and (maybe) the embedding. Returns whether a face was found.
    fn analyse_face(
        &mut self,
        frame: &VideoFrame<'_>,
        models: &mut Models,
        out: &mut FaceRec,
    ) -> Result<bool, AnalysisError> {
        let img = &frame.image;
        let need_detect = self.track.is_none() || self.since_detect >= self.cfg.detect_every;
        if need_detect {
            let t0 = Instant::now();
            self.since_detect = 0;
            self.summary.detections_run += 1;
            let roi = Roi::whole(img.width, img.height);
            sample_roi(img, &roi, &self.det_norm, &mut self.tensor);
            let raw = models.detector.run(&self.tensor)?;
            self.decoder.decode(&raw.scores, &raw.boxes, &roi, &mut self.detections);
            self.last_faces = self.detections.len() as u32;
            // The detector's eye-aligned box re-anchors the crop (landmark tracking alone can drift); the
            // face nearest the tracked one is kept, else the largest.
            let nearest = self.track.and_then(|t| {
                self.detections
                    .iter()
                    .filter(|d| dist2(d, &t).sqrt() < t.size * 0.5)
                    .min_by(|a, b| dist2(a, &t).total_cmp(&dist2(b, &t)))
            });
            let chosen = nearest.or_else(|| self.detections.iter().max_by(|a, b| a.area().total_cmp(&b.area())));
            self.track = chosen.map(|d| d.roi(1.5));
            self.times.record(Stage::Face, t0);
        }
        self.since_detect += 1;
        let Some(roi) = self.track else {
            self.forget_face();
            return Ok(false);
        };
        let t0 = Instant::now();
        sample_roi(img, &roi, &self.lm_norm, &mut self.tensor);
        let n = self.lm_norm.size();
        let (points, flag) = models.landmarks.run(&self.tensor)?;
        let presence = 1.0 / (1.0 + (-flag.clamp(-50.0, 50.0)).exp());
        if presence < self.cfg.min_presence {
            self.times.record(Stage::Landmarks, t0);
            self.track = None; // lost: detect again on the next frame
            self.forget_face();
            return Ok(false);
        }
        out.landmarks.clear();
        out.landmarks.extend(points.chunks_exact(3).map(|p| {
            let (x, y) = roi.to_frame(n, p[0], p[1]);
            [x, y, p[2] * roi.size / n as f32]
        }));
        let p = &out.landmarks;
        let d = |a: usize, b: usize| ((p[a][0] - p[b][0]).powi(2) + (p[a][1] - p[b][1]).powi(2)).sqrt();
        let face_size = d(mesh::RIGHT_EYE_OUTER, mesh::LEFT_EYE_OUTER).max(1.0);
        let mouth_open = mesh::INNER_LIP_PAIRS.iter().map(|&(a, b)| d(a, b)).sum::<f32>()
            / (mesh::INNER_LIP_PAIRS.len() as f32 * face_size);
        out.mouth_width = d(mesh::MOUTH_RIGHT, mesh::MOUTH_LEFT) / face_size;
        out.mouth_velocity = match self.last_mouth {
            Some((t, m)) if frame.pts_us > t => (mouth_open - m) * 1e6 / (frame.pts_us - t) as f32,
            _ => 0.0,
        };
        self.last_mouth = Some((frame.pts_us, mouth_open));
        out.landmark_motion = if self.prev_landmarks.len() == p.len() {
            p.iter()
                .zip(&self.prev_landmarks)
                .map(|(a, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
                .sum::<f32>()
                / (p.len() as f32 * face_size)
        } else {
            0.0
        };
        self.prev_landmarks.clear();
        self.prev_landmarks.extend_from_slice(p);
        out.mouth_open = mouth_open;
        out.face_size = face_size;
        out.presence = presence;
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for q in p.iter() {
            x0 = x0.min(q[0]);
            y0 = y0.min(q[1]);
            x1 = x1.max(q[0]);
            y1 = y1.max(q[1]);
        }
        out.bbox = [x0, y0, x1, y1];
        // The next frame's crop follows the landmarks, with hysteresis: a crop that moves by less than the
        // landmarks' own jitter stays put, so a still face is measured on a still crop.
        let fresh = roi_from_landmarks(p, 1.5);
        let next = if roi_close(&roi, &fresh) { roi } else { fresh };
        self.track = Some(next);
        self.times.record(Stage::Landmarks, t0);
        // Spatial embedding of the aligned face crop.
        out.has_embedding = false;
        if self.backbone_count.is_multiple_of(self.cfg.backbone_every.max(1)) {
            let t0 = Instant::now();
            let face_roi = Roi { size: next.size / 1.5 * 1.2, ..next };
            sample_roi(img, &face_roi, &self.bb_norm, &mut self.tensor);
            let mut thumb = [0.0f32; 64];
            temporal::thumbnail(&self.tensor, self.bb_norm.size() as usize, self.bb_norm.nchw(), &mut thumb);
            let cb = temporal::centre_minus_border(&thumb);
            out.thumb_delta =
                self.prev_thumb.map_or(0.0, |q| thumb.iter().zip(&q).map(|(a, b)| (a - b).abs()).sum::<f32>() / 64.0);
            out.centre_border = cb;
            out.centre_border_delta = self.prev_centre_border.map_or(0.0, |q| (cb - q).abs());
            self.prev_thumb = Some(thumb);
            self.prev_centre_border = Some(cb);
            let e = models.backbone.run(&self.tensor)?;
            out.embedding.clear();
            out.embedding.extend_from_slice(e);
            out.has_embedding = true;
            out.embedding_delta =
                if self.prev_embedding.len() == e.len() { 1.0 - cosine(e, &self.prev_embedding) } else { 0.0 };
            self.prev_embedding.clear();
            self.prev_embedding.extend_from_slice(e);
            self.times.record(Stage::Backbone, t0);
        }
        self.backbone_count = self.backbone_count.wrapping_add(1);
        Ok(true)
    }

    /// The tracked face is gone: change cues start again with the next face.
    fn forget_face(&mut self) {
        self.last_mouth = None;
        self.prev_landmarks.clear();
        self.prev_embedding.clear();
        self.prev_thumb = None;
        self.prev_centre_border = None;
    }

    /// Finish frames whose audio is known (or will never come), in order.
    fn flush_ready(&mut self, at_end: bool, models: &mut Models) -> Result<(), AnalysisError> {
        while let Some(front) = self.pending.front() {
            let t = front.pts_us;
            let audio = if !self.cfg.expect_audio {
                AudioFrame::ABSENT
            } else if let Some(a) = self.audio.frame_features(t, self.frame_interval_us) {
                a
            } else if at_end || self.last_frame_us - t > self.cfg.audio_wait_us {
                // Audio never reached this frame: finish it without.
                AudioFrame::ABSENT
            } else {
                break;
            };
            let rec = self.pending.pop_front().expect("front exists");
            let done = self.finish_frame(&rec, &audio, models);
            self.pool.push(rec);
            done?;
        }
        Ok(())
    }

    fn finish_frame(&mut self, rec: &FrameRec, audio: &AudioFrame, models: &mut Models) -> Result<(), AnalysisError> {
        self.next_window_start.get_or_insert(rec.pts_us);
        // The frame's row first: the windows this frame closes interpolate their last slots towards it.
        fill_row(&mut self.row, rec, audio, self.ring.dim());
        let seq = self.ring.push(rec.pts_us, &self.row);
        if self.cfg.export_rows {
            self.outputs.push_back(Output::Row(FeatureRow { seq, pts_us: rec.pts_us, values: self.row.clone() }));
        }
        // Close every window that ends at or before this frame.
        self.close_windows_before(rec.pts_us, models)?;
        let af = AudioFeatures::new(audio.present, audio.level_db, audio.envelope, audio.onset, &audio.log_mel);
        let face = rec.face.as_ref().map(|f| {
            FaceFeatures::new(
                f.bbox,
                f.presence,
                f.face_size,
                &f.landmarks,
                f.mouth_open,
                f.mouth_width,
                f.mouth_velocity,
                f.has_embedding.then_some(&f.embedding[..]),
            )
        });
        let features = FrameFeatures::new(rec.pts_us, rec.faces, face, af);
        self.lipsync.observe(&features);
        for d in &mut self.detectors {
            d.observe(&features);
        }
        if self.cfg.frame_reports {
            self.outputs.push_back(Output::Frame(FrameReport {
                pts_us: rec.pts_us,
                faces: rec.faces,
                mouth_open: rec.face.as_ref().map(|f| f.mouth_open),
                mouth_width: rec.face.as_ref().map(|f| f.mouth_width),
                audio_level_db: audio.present.then_some(audio.level_db),
                audio_envelope: audio.present.then_some(audio.envelope),
            }));
        }
        self.summary.face_frames += rec.face.is_some() as u64;
        self.summary.audio_frames += audio.present as u64;
        self.summary.loud_frames += (audio.present && audio.level_db > SPEECH_LEVEL_DB) as u64;
        self.tallies.push_back(Tally {
            pts_us: rec.pts_us,
            faces: rec.faces,
            has_face: rec.face.is_some(),
            mouth_open: rec.face.as_ref().map_or(0.0, |f| f.mouth_open),
            has_audio: audio.present,
            loud: audio.present && audio.level_db > SPEECH_LEVEL_DB,
        });
        Ok(())
    }

    fn close_windows_before(&mut self, now_us: i64, models: &mut Models) -> Result<(), AnalysisError> {
        while let Some(start) = self.next_window_start {
            let end = start + self.cfg.window_us;
            if now_us < end {
                break;
            }
            self.next_window_start = Some(start + self.cfg.hop_us);
            self.emit_window(Window { start_us: start, end_us: end }, models)?;
        }
        Ok(())
    }

    fn emit_window(&mut self, window: Window, models: &mut Models) -> Result<(), AnalysisError> {
        // Drop tallies no later window needs.
        while self.tallies.front().is_some_and(|t| t.pts_us < window.start_us) {
            self.tallies.pop_front();
        }
        while self.skipped.front().is_some_and(|&t| t < window.start_us) {
            self.skipped.pop_front();
        }
        let skipped = self.skipped.iter().take_while(|&&t| t < window.end_us).count() as u32;
        let (mut frames, mut face, mut faces, mut mouth, mut audio, mut loud) = (0u32, 0u32, 0u32, 0.0f32, 0u32, 0u32);
        for t in self.tallies.iter().take_while(|t| t.pts_us < window.end_us) {
            frames += 1;
            faces = faces.max(t.faces);
            if t.has_face {
                face += 1;
                mouth += t.mouth_open;
            }
            audio += t.has_audio as u32;
            loud += t.loud as u32;
        }
        if frames == 0 {
            return Ok(());
        }
        let mut signals = Vec::with_capacity(2 + self.detectors.len());
        signals.push(("lipsync".to_string(), self.lipsync.assess(window)));
        for d in &mut self.detectors {
            signals.push((d.name().to_string(), d.assess(window)));
        }
        // The temporal head over the grid slots that end with the window.
        let t0 = Instant::now();
        let mut sync = [0.0f32; SYNC_LEN];
        temporal::sync_vector(self.lipsync.last_curve(), &mut sync);
        let slots = models.head.as_ref().map_or(temporal::SLOTS, |h| h.slots);
        let phase = self.ring.phase(window.end_us, slots);
        let grid_end = window.end_us + phase;
        let covered = self.ring.gather(grid_end, slots, &mut self.head_frames, &mut self.head_seqs);
        if self.cfg.expect_audio {
            // Audio is continuous: each slot's audio columns come from the sound at the slot's own time, not
            // from the video frames around it (at 15 fps two slots in three have no frame of their own).
            let dim = self.head_frames.len() / slots.max(1);
            for k in 0..slots {
                let t = grid_end - (slots - k) as i64 * temporal::GRID_US;
                if let Some(a) = self.audio.frame_features(t, temporal::GRID_US) {
                    fill_audio(&mut self.head_frames[k * dim..(k + 1) * dim], &a);
                }
            }
        }
        // A small, steady audio/video offset is how real clients capture (Chromium's audio comes ~25 ms late
        // through Janus), not a manipulation; the head was trained on clips exactly in sync and reads 40 ms as
        // drift. When this window's lip-sync estimate is confident, up to the natural range of it is taken as
        // the client's: the head sees the window with its audio moved back by the offset, or by the natural
        // limit for a larger one (fractions of a slot interpolated). Clamping rather than all-or-nothing keeps
        // a client whose offset wanders around the limit (60 ms, then 63, then 55) from being judged in sync
        // in one window and 63 ms out in the next; a drift of 160 ms still leaves 100 ms to see.
        let natural = self.cfg.natural_offset_ms;
        let natural_shift = match (self.lipsync.last_curve(), self.lipsync.last()) {
            (Some(_), Some(e))
                if natural > 0.0
                    && e.confidence >= NATURAL_OFFSET_MIN_CONFIDENCE
                    && e.offset_ms.abs() >= NATURAL_OFFSET_MIN_MS =>
            {
                e.offset_ms.clamp(-natural, natural) / (temporal::GRID_US as f32 / 1000.0)
            }
            _ => 0.0,
        };
        if natural_shift != 0.0 {
            let dim = self.head_frames.len() / slots;
            temporal::shift_audio(&mut self.head_frames, dim, natural_shift);
            temporal::shift_sync(&mut sync, natural_shift);
        }
        let face_ratio = face as f32 / frames as f32;
        // Silence is no audio to judge the lips by (see MIN_LOUD_SHARE).
        let silent = (loud as f32) < MIN_LOUD_SHARE * frames as f32;
        let audio_ratio = if silent { 0.0 } else { audio as f32 / frames as f32 };
        let head = match models.head.as_mut() {
            Some(h) => Some(h.run(&self.head_frames, &sync)?).map(|mut o: HeadOutput| {
                o.offset_ms += natural_shift * (temporal::GRID_US as f32 / 1000.0);
                o
            }),
            None => None,
        };
        if head.is_some() {
            self.times.record(Stage::Temporal, t0);
        }
        // Without a face the head has nothing to judge, and with frames missing (the caller fell behind and
        // skipped them) its input has holes it was never trained on: in both cases its score does not count.
        let min_face = self.verdict.as_ref().map_or(0.5, |v| v.config().min_face_ratio);
        // Grid slots in a gap of lost frames (held from a frame beside it, or empty): the sender or the network
        // dropped frames there. Slots between frames of a slower source are interpolated on media time and
        // count as covered (`FeatureRing::gather`).
        let held = slots - covered;
        // An independent second opinion for the fast alert path: the classical lip-sync estimator measures, with
        // confidence, an offset well beyond what capture paths give (lip-sync drift): twice the natural range,
        // so that a client whose own offset wanders just past the natural limit never takes the fast path.
        // The offset must be a real peak, away from sync, measured again by a window half a window earlier (on
        // mostly other speech) and by the mean curve of the last 8 s, whose in-sync lags must not be
        // anti-correlated (see `lipsync`'s module doc): a mouth measurement that does not follow this face finds
        // confident peaks anywhere, for several overlapping windows in a row.
        let limit = (CORROBORATION_OFFSET_FACTOR * natural).max(NATURAL_OFFSET_MIN_MS);
        let offset = |e: &SyncEstimate| {
            e.confidence >= CORROBORATION_MIN_CONFIDENCE && e.offset_ms.abs() > limit && e.distinct()
        };
        let earlier = self.lipsync.earlier(CORROBORATION_EARLIER_US);
        let recent = self.lipsync.recent();
        let corroborated = match (self.lipsync.last(), recent) {
            (Some(e), Some((r, _))) => {
                offset(&e)
                    && earlier
                        .is_some_and(|p| offset(&p) && (p.offset_ms - e.offset_ms).abs() <= CORROBORATION_AGREE_MS)
                    && r.distinct()
                    && r.margin >= CORROBORATION_MIN_RECENT_MARGIN
                    && (r.offset_ms - e.offset_ms).abs() <= CORROBORATION_AGREE_MS
                    && r.in_sync_min >= CORROBORATION_MIN_IN_SYNC
            }
            _ => false,
        };
        let max_held = if corroborated { MAX_HELD_SHARE_CORROBORATED } else { MAX_HELD_SHARE };
        let complete = skipped as f32 <= MAX_SKIPPED_SHARE * (frames + skipped) as f32
            && held as f32 <= max_held * self.head_seqs.len() as f32;
        let score = head.map(|h| h.p_fake).filter(|_| face_ratio >= min_face && complete && !silent);
        if let Some(h) = head {
            signals
                .push(("temporal".to_string(), Signal::new(score, 1.0).with_av_offset_ms(score.map(|_| h.offset_ms))));
        }
        // Why a window with a face has no score: the guard skipped frames to keep up, or frames are missing.
        let unjudged = (head.is_some() && score.is_none() && face_ratio >= min_face && !silent).then(|| {
            if skipped as f32 > MAX_SKIPPED_SHARE * (frames + skipped) as f32 {
                NotJudged::OverCapacity
            } else {
                NotJudged::TooFewFrames
            }
        });
        let state =
            self.verdict.as_mut().and_then(|v| v.update(face_ratio, audio_ratio, score, corroborated, unjudged));
        let not_judged = self.verdict.as_ref().and_then(|v| v.reason()).filter(|_| state == Some(State::NoFace));
        let alert_threshold = self.verdict.as_ref().map_or(f32::INFINITY, |v| v.config().alert);
        let mut evidence = Vec::new();
        if score.is_some_and(|s| s >= alert_threshold) {
            evidence.push("temporal");
        }
        if corroborated && score.is_some() {
            evidence.push("lipsync");
        }
        if let Some(s) = score {
            self.summary.scored_windows += 1;
            self.summary.score_sum += s as f64;
        }
        self.summary.alert_windows += (state == Some(State::Alert)) as u64;
        match unjudged {
            Some(NotJudged::OverCapacity) => self.summary.behind_windows += 1,
            Some(_) => self.summary.too_few_frames_windows += 1,
            None => {}
        }
        self.summary.windows += 1;
        self.outputs.push_back(Output::Window(WindowReport {
            start_us: window.start_us,
            end_us: window.end_us,
            frames,
            skipped,
            held_slots: held as u32,
            face_ratio,
            faces,
            mouth_open: (face > 0).then(|| mouth / face as f32),
            audio_ratio,
            sync: self.lipsync.last(),
            sync_earlier: earlier,
            sync_recent: recent,
            signals,
            head,
            score,
            corroborated,
            evidence,
            not_judged,
            state,
            head_input: self.cfg.export_rows.then(|| (self.head_seqs.clone(), sync.to_vec())),
        }));
        Ok(())
    }

    /// End of input: finish waiting frames and report the last, partial window if it holds at least half a
    /// window of media.
    pub fn finish(&mut self, models: &mut Models) -> Result<(), AnalysisError> {
        self.flush_ready(true, models)?;
        if let Some(start) = self.next_window_start
            && self.last_frame_us != i64::MIN
        {
            let end = self.last_frame_us + self.frame_interval_us;
            if end - start >= self.cfg.window_us / 2 && end > start {
                // Only report if this partial window adds media not covered by the previous full window.
                if self.summary.windows == 0 || end > start - self.cfg.hop_us + self.cfg.window_us {
                    self.emit_window(Window { start_us: start, end_us: end }, models)?;
                }
            }
            self.next_window_start = None;
        }
        self.summary.sync = self.lipsync.overall();
        Ok(())
    }

    /// The participant's current state (`None` before the first window or without a temporal head).
    pub fn state(&self) -> Option<State> {
        self.verdict.as_ref().and_then(|v| v.state())
    }

    /// A video frame arrived at `pts_us` but will not be analysed (a live caller that fell behind drops
    /// frames to catch up). Windows with many such frames are reported but not scored.
    pub fn skip_video(&mut self, pts_us: i64) {
        if self.skipped.back().is_none_or(|&t| t < pts_us) {
            self.skipped.push_back(pts_us);
        }
    }

    /// Next output, if any.
    /// The stages' wall time since the last call (for metrics), and start counting again.
    pub fn take_stage_times(&mut self) -> StageTimes {
        std::mem::take(&mut self.times)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Totals so far (the stream-level sync estimate is final after [`finish`](Self::finish)).
    pub fn summary(&self) -> Summary {
        let mut s = self.summary.clone();
        if s.sync.is_none() {
            s.sync = self.lipsync.overall();
        }
        s.verdict_config = self.verdict.as_ref().map(|v| v.config().clone());
        s
    }
}

/// One frame's feature row: the aux values of [`temporal`] then the embedding (zeros where missing).
fn fill_row(row: &mut Vec<f32>, rec: &FrameRec, audio: &AudioFrame, dim: usize) {
    row.clear();
    row.resize(dim, 0.0);
    row[ix::MULTI_FACE] = (rec.faces > 1) as u8 as f32;
    if let Some(f) = &rec.face {
        row[ix::FACE] = 1.0;
        row[ix::PRESENCE] = f.presence;
        row[ix::MOUTH_OPEN] = f.mouth_open;
        row[ix::MOUTH_WIDTH] = f.mouth_width;
        row[ix::MOUTH_VELOCITY] = f.mouth_velocity;
        row[ix::LANDMARK_MOTION] = f.landmark_motion;
        if f.has_embedding {
            row[ix::EMBEDDING_DELTA] = f.embedding_delta;
            row[ix::THUMB_DELTA] = f.thumb_delta;
            row[ix::CENTRE_BORDER] = f.centre_border;
            row[ix::CENTRE_BORDER_DELTA] = f.centre_border_delta;
            let n = f.embedding.len().min(dim - AUX);
            row[AUX..AUX + n].copy_from_slice(&f.embedding[..n]);
        }
    }
    fill_audio(row, audio);
}

/// The audio columns of a row (zeros where there is no audio).
fn fill_audio(row: &mut [f32], audio: &AudioFrame) {
    if audio.present {
        row[ix::AUDIO] = 1.0;
        row[ix::LEVEL] = audio.level_db / 100.0;
        row[ix::ENVELOPE] = (audio.envelope + 1e-6).ln();
        row[ix::ONSET] = audio.onset;
        row[ix::LOG_MEL..ix::LOG_MEL + audio.log_mel.len()].copy_from_slice(&audio.log_mel);
    } else {
        row[ix::AUDIO..ix::LOG_MEL + audio.log_mel.len()].fill(0.0);
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa > 0.0 && bb > 0.0 { ab / (aa.sqrt() * bb.sqrt()) } else { 1.0 }
}

/// Whether two ROIs differ by less than landmark jitter (1% of the size in position or size, 3 degrees).
fn roi_close(a: &Roi, b: &Roi) -> bool {
    let tol = 0.01 * a.size;
    (a.cx - b.cx).abs() < tol
        && (a.cy - b.cy).abs() < tol
        && (a.size - b.size).abs() < tol
        && (a.angle - b.angle).abs() < 3f32.to_radians()
}

fn dist2(d: &Detection, roi: &Roi) -> f32 {
    let cx = (d.bbox[0] + d.bbox[2]) / 2.0;
    let cy = (d.bbox[1] + d.bbox[3]) / 2.0;
    (cx - roi.cx).powi(2) + (cy - roi.cy).powi(2)
}
