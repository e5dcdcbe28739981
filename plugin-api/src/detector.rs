//! The [`Detector`] trait: how a detector plugs into the analysis core.
//!
//! The core measures every analysed frame of a participant once (face box, landmarks, lip features, backbone
//! embedding, audio features on the frame clock) and hands the result to each registered detector through
//! [`Detector::observe`]. At the end of every analysis window the core asks each detector for its
//! [`Signal`] through [`Detector::assess`]. Detectors never see raw media, sockets or clocks: time is the media
//! timestamp carried by each frame, so the same input always gives the same signals.
//!
//! One detector instance serves one participant; the core creates one per participant with a factory.

/// Half-open span of media time `[start_us, end_us)` that an assessment covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_us: i64,
    pub end_us: i64,
}

impl Window {
    /// Length of the window in microseconds.
    pub fn len_us(&self) -> i64 {
        self.end_us - self.start_us
    }
}

/// Face measurements of one frame. Coordinates are frame pixels.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct FaceFeatures<'a> {
    /// Face box `[x0, y0, x1, y1]`.
    pub bbox: [f32; 4],
    /// Landmark model's face-presence probability in [0, 1].
    pub presence: f32,
    /// Face size used to normalise the lip features (inter-ocular distance in pixels).
    pub face_size: f32,
    /// The 468 FaceMesh landmarks `(x, y, z)`; `z` is relative depth in the same pixel scale.
    pub landmarks: &'a [[f32; 3]],
    /// Inner-lip gap divided by `face_size`.
    pub mouth_open: f32,
    /// Mouth-corner distance divided by `face_size`.
    pub mouth_width: f32,
    /// Change of `mouth_open` per second against the previous analysed frame (0 for the first one).
    pub mouth_velocity: f32,
    /// Backbone embedding of the aligned face crop, when the backbone ran on this frame.
    pub embedding: Option<&'a [f32]>,
}

/// Audio measured over one frame interval, centred on the frame's timestamp.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct AudioFeatures<'a> {
    /// Whether audio covered this frame's time at all (false: the participant sends no audio here).
    pub present: bool,
    /// RMS level in dBFS over the frame interval (-100 for digital silence).
    pub level_db: f32,
    /// Speech-band loudness envelope (linear, >= 0), the signal lips are matched against.
    pub envelope: f32,
    /// Onset strength: positive spectral flux, >= 0.
    pub onset: f32,
    /// Log-mel band energies (natural log), low to high.
    pub log_mel: &'a [f32],
}

/// Everything the core measured on one analysed video frame.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct FrameFeatures<'a> {
    /// Media timestamp of the frame, microseconds.
    pub pts_us: i64,
    /// Number of faces found by the last detection.
    pub faces: u32,
    /// The tracked face, if any.
    pub face: Option<FaceFeatures<'a>>,
    /// Audio on this frame's clock.
    pub audio: AudioFeatures<'a>,
}

impl<'a> FrameFeatures<'a> {
    /// Build the features of one frame (the struct is `#[non_exhaustive]`; this is its constructor).
    pub fn new(pts_us: i64, faces: u32, face: Option<FaceFeatures<'a>>, audio: AudioFeatures<'a>) -> Self {
        Self { pts_us, faces, face, audio }
    }
}

impl<'a> FaceFeatures<'a> {
    /// Constructor for the `#[non_exhaustive]` struct.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bbox: [f32; 4],
        presence: f32,
        face_size: f32,
        landmarks: &'a [[f32; 3]],
        mouth_open: f32,
        mouth_width: f32,
        mouth_velocity: f32,
        embedding: Option<&'a [f32]>,
    ) -> Self {
        Self { bbox, presence, face_size, landmarks, mouth_open, mouth_width, mouth_velocity, embedding }
    }
}

impl<'a> AudioFeatures<'a> {
    /// Constructor for the `#[non_exhaustive]` struct.
    pub fn new(present: bool, level_db: f32, envelope: f32, onset: f32, log_mel: &'a [f32]) -> Self {
        Self { present, level_db, envelope, onset, log_mel }
    }

    /// Features of a frame that no audio covers.
    pub fn absent() -> AudioFeatures<'static> {
        AudioFeatures { present: false, level_db: -100.0, envelope: 0.0, onset: 0.0, log_mel: &[] }
    }
}

/// What a detector concludes about one window.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Signal {
    /// Probability-like score that the window is manipulated, in [0, 1]. `None`: no opinion on this window
    /// (e.g. silence for a lip-sync detector); the core then does not count it.
    pub score: Option<f32>,
    /// How much the detector trusts its own score, in [0, 1].
    pub confidence: f32,
    /// Estimated audio/video offset in milliseconds, positive when the audio comes late (after the lips),
    /// for detectors that measure one.
    pub av_offset_ms: Option<f32>,
}

impl Signal {
    /// A signal with a score and a confidence.
    pub fn new(score: Option<f32>, confidence: f32) -> Self {
        Self { score, confidence, av_offset_ms: None }
    }

    /// The same signal carrying an audio/video offset estimate.
    pub fn with_av_offset_ms(mut self, ms: Option<f32>) -> Self {
        self.av_offset_ms = ms;
        self
    }
}

/// A detector that plugs into the analysis core. One instance per participant.
///
/// Implementations must be cheap in [`observe`](Detector::observe) (it runs on the per-frame path) and must
/// not block, sleep or read clocks.
pub trait Detector: Send {
    /// Stable short name, used in reports and metrics labels (e.g. `"lipsync"`).
    fn name(&self) -> &str;

    /// Called once per analysed frame, in timestamp order.
    fn observe(&mut self, frame: &FrameFeatures<'_>);

    /// Called at the end of each analysis window, after every frame of the window was observed.
    fn assess(&mut self, window: Window) -> Signal;

    /// Forget all state (the participant's stream restarted).
    fn reset(&mut self) {}
}
