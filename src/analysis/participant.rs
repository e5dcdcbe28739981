//! The per-participant analyser: a sans-IO state machine. Feed it decoded frames and audio with their media
//! timestamps; poll it for window reports. It never reads a clock and never blocks: the same input gives
//! the same output.

use std::collections::VecDeque;

use deepfake_guard_plugin_api::{AudioFeatures, Detector, FaceFeatures, FrameFeatures, Signal, Window};

use super::audio::{AudioFeaturizer, AudioFrame};
use super::crop::{Normalize, Roi, sample_roi};
use super::face::{BlazeFaceDecoder, Detection, mesh, roi_from_landmarks};
use super::frame::{AudioChunk, VideoFrame};
use super::lipsync::{LipSync, LipSyncConfig, SyncEstimate};
use crate::inference::{InferenceError, Models};

/// Settings of the analysis core. `Default` gives the values the product ships with.
#[derive(Clone, Debug)]
pub struct AnalyzerConfig {
    /// Run face detection at least every this many analysed frames (landmarks track the face in between).
    pub detect_every: u32,
    /// Analyse every n-th video frame (1 = all).
    pub frame_stride: u32,
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
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            detect_every: 10,
            frame_stride: 1,
            backbone_every: 1,
            min_presence: 0.5,
            window_us: 3_200_000,
            hop_us: 1_600_000,
            expect_audio: true,
            audio_wait_us: 1_000_000,
            lipsync: LipSyncConfig::default(),
            frame_reports: false,
        }
    }
}

/// A window's findings.
#[derive(Clone, Debug)]
pub struct WindowReport {
    pub start_us: i64,
    pub end_us: i64,
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
    /// Every detector's signal, by detector name (the built-in `lipsync` first).
    pub signals: Vec<(String, Signal)>,
}

impl WindowReport {
    /// Whether a face was present for most of the window.
    pub fn face(&self) -> bool {
        self.face_ratio >= 0.5
    }
}

/// What the analyser produces.
#[derive(Clone, Debug)]
pub enum Output {
    Window(WindowReport),
    /// Per-frame measurements, only when [`AnalyzerConfig::frame_reports`] is on (for debugging and research).
    Frame(FrameReport),
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
    pub detections_run: u64,
    pub windows: u64,
    pub sync: Option<SyncEstimate>,
}

impl Summary {
    pub fn face_ratio(&self) -> f32 {
        if self.analysed_frames == 0 { 0.0 } else { self.face_frames as f32 / self.analysed_frames as f32 }
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
}

/// Errors of the analysis core.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A model failed to run.
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// The sans-IO analyser of one participant.
pub struct Analyzer {
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
    next_window_start: Option<i64>,
    last_frame_us: i64,
    frame_interval_us: i64,
    outputs: VecDeque<Output>,
    summary: Summary,
    // Scratch buffers reused every frame.
    tensor: Vec<f32>,
    detections: Vec<Detection>,
    frame_counter: u64,
}

impl Analyzer {
    /// An analyser whose crops follow the models' preprocessing.
    pub fn new(cfg: AnalyzerConfig, models: &Models) -> Self {
        Self {
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
            next_window_start: None,
            last_frame_us: i64::MIN,
            frame_interval_us: 40_000,
            outputs: VecDeque::new(),
            summary: Summary::default(),
            tensor: Vec::new(),
            detections: Vec::new(),
            frame_counter: 0,
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

    /// Feed decoded audio (16 kHz mono).
    pub fn push_audio(&mut self, chunk: AudioChunk<'_>) {
        self.audio.push(chunk);
        self.flush_ready(false);
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
        self.flush_ready(false);
        Ok(())
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
        }
        self.since_detect += 1;
        let Some(roi) = self.track else {
            self.last_mouth = None;
            return Ok(false);
        };
        sample_roi(img, &roi, &self.lm_norm, &mut self.tensor);
        let n = self.lm_norm.size();
        let (points, flag) = models.landmarks.run(&self.tensor)?;
        let presence = 1.0 / (1.0 + (-flag.clamp(-50.0, 50.0)).exp());
        if presence < self.cfg.min_presence {
            self.track = None; // lost: detect again on the next frame
            self.last_mouth = None;
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
        // Spatial embedding of the aligned face crop.
        out.has_embedding = false;
        if self.backbone_count.is_multiple_of(self.cfg.backbone_every.max(1)) {
            let face_roi = Roi { size: next.size / 1.5 * 1.2, ..next };
            sample_roi(img, &face_roi, &self.bb_norm, &mut self.tensor);
            let e = models.backbone.run(&self.tensor)?;
            out.embedding.clear();
            out.embedding.extend_from_slice(e);
            out.has_embedding = true;
        }
        self.backbone_count = self.backbone_count.wrapping_add(1);
        Ok(true)
    }

    /// Finish frames whose audio is known (or will never come), in order.
    fn flush_ready(&mut self, at_end: bool) {
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
            self.finish_frame(&rec, &audio);
            self.pool.push(rec);
        }
    }

    fn finish_frame(&mut self, rec: &FrameRec, audio: &AudioFrame) {
        self.next_window_start.get_or_insert(rec.pts_us);
        // Close every window that ends at or before this frame.
        self.close_windows_before(rec.pts_us);
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
        self.tallies.push_back(Tally {
            pts_us: rec.pts_us,
            faces: rec.faces,
            has_face: rec.face.is_some(),
            mouth_open: rec.face.as_ref().map_or(0.0, |f| f.mouth_open),
            has_audio: audio.present,
        });
    }

    fn close_windows_before(&mut self, now_us: i64) {
        while let Some(start) = self.next_window_start {
            let end = start + self.cfg.window_us;
            if now_us < end {
                break;
            }
            self.emit_window(Window { start_us: start, end_us: end });
            self.next_window_start = Some(start + self.cfg.hop_us);
        }
    }

    fn emit_window(&mut self, window: Window) {
        // Drop tallies no later window needs.
        while self.tallies.front().is_some_and(|t| t.pts_us < window.start_us) {
            self.tallies.pop_front();
        }
        let (mut frames, mut face, mut faces, mut mouth, mut audio) = (0u32, 0u32, 0u32, 0.0f32, 0u32);
        for t in self.tallies.iter().take_while(|t| t.pts_us < window.end_us) {
            frames += 1;
            faces = faces.max(t.faces);
            if t.has_face {
                face += 1;
                mouth += t.mouth_open;
            }
            audio += t.has_audio as u32;
        }
        if frames == 0 {
            return;
        }
        let mut signals = Vec::with_capacity(1 + self.detectors.len());
        signals.push(("lipsync".to_string(), self.lipsync.assess(window)));
        for d in &mut self.detectors {
            signals.push((d.name().to_string(), d.assess(window)));
        }
        self.summary.windows += 1;
        self.outputs.push_back(Output::Window(WindowReport {
            start_us: window.start_us,
            end_us: window.end_us,
            frames,
            face_ratio: face as f32 / frames as f32,
            faces,
            mouth_open: (face > 0).then(|| mouth / face as f32),
            audio_ratio: audio as f32 / frames as f32,
            sync: self.lipsync.last(),
            signals,
        }));
    }

    /// End of input: finish waiting frames and report the last, partial window if it holds at least half a
    /// window of media.
    pub fn finish(&mut self) {
        self.flush_ready(true);
        if let Some(start) = self.next_window_start
            && self.last_frame_us != i64::MIN
        {
            let end = self.last_frame_us + self.frame_interval_us;
            if end - start >= self.cfg.window_us / 2 && end > start {
                // Only report if this partial window adds media not covered by the previous full window.
                if self.summary.windows == 0 || end > start - self.cfg.hop_us + self.cfg.window_us {
                    self.emit_window(Window { start_us: start, end_us: end });
                }
            }
            self.next_window_start = None;
        }
        self.summary.sync = self.lipsync.overall();
    }

    /// Next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Totals so far (the stream-level sync estimate is final after [`finish`](Self::finish)).
    pub fn summary(&self) -> Summary {
        let mut s = self.summary.clone();
        if s.sync.is_none() {
            s.sync = self.lipsync.overall();
        }
        s
    }
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
