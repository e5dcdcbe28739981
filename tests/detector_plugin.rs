//! A detector written against the plugin API plugs into the analysis core: it sees every analysed frame
//! with the core's measurements (face, landmarks, embedding, audio on the frame clock), in time order, and
//! its signal comes back in every window report between the built-in lip-sync one and the temporal head's.

mod common;

use deepfake_guard::analysis::{Analyzer, AnalyzerConfig, Output};
use deepfake_guard::media::file::{FileSource, MediaEvent};
use deepfake_guard_plugin_api::{Detector, FrameFeatures, Signal, Window};

/// Scores each window by the share of its frames where a face with an embedding and audio were present.
#[derive(Default)]
struct Coverage {
    seen: Vec<(i64, bool)>,
    embedding_dim: usize,
    landmarks: usize,
    last_pts: i64,
    out_of_order: bool,
}

impl Detector for Coverage {
    fn name(&self) -> &str {
        "coverage"
    }

    fn observe(&mut self, f: &FrameFeatures<'_>) {
        self.out_of_order |= f.pts_us <= self.last_pts && !self.seen.is_empty();
        self.last_pts = f.pts_us;
        let full = f.face.is_some_and(|face| {
            self.embedding_dim = face.embedding.map_or(0, <[f32]>::len);
            self.landmarks = face.landmarks.len();
            face.embedding.is_some()
        }) && f.audio.present
            && f.audio.log_mel.len() == 24;
        self.seen.push((f.pts_us, full));
    }

    fn assess(&mut self, w: Window) -> Signal {
        let inside: Vec<bool> =
            self.seen.iter().filter(|(t, _)| *t >= w.start_us && *t < w.end_us).map(|s| s.1).collect();
        let share = inside.iter().filter(|b| **b).count() as f32 / inside.len().max(1) as f32;
        Signal::new(Some(share), 1.0)
    }
}

#[test]
fn a_plugged_in_detector_sees_every_frame_and_reports_per_window() {
    let dir = common::tempdir();
    let clip = dir.path().join("clip.mp4");
    common::talkgen(&[
        "--face",
        "astronaut",
        "--seconds",
        "6",
        "--seed",
        "8",
        "--out",
        common::path_str(&clip),
        "--quiet",
    ]);

    let mut models = common::models();
    let mut analyzer = Analyzer::new(AnalyzerConfig::default(), &models);
    analyzer.add_detector(Box::new(Coverage::default()));
    let mut source = FileSource::open(&clip, None).unwrap();
    let mut windows = Vec::new();
    while let Some(event) = source.next_event().unwrap() {
        match event {
            MediaEvent::Audio(chunk) => analyzer.push_audio(chunk, &mut models).unwrap(),
            MediaEvent::Video(frame) => analyzer.push_video(frame, &mut models).unwrap(),
        }
        while let Some(Output::Window(w)) = analyzer.poll_output() {
            windows.push(w);
        }
    }
    analyzer.finish(&mut models).unwrap();
    while let Some(Output::Window(w)) = analyzer.poll_output() {
        windows.push(w);
    }
    assert!(windows.len() >= 3, "{windows:?}");
    for w in &windows {
        let names: Vec<&str> = w.signals.iter().map(|(n, _)| n.as_str()).collect();
        // the built-in lip-sync estimate first, plugged-in detectors in order, the temporal head last
        assert_eq!(names, ["lipsync", "coverage", "temporal"]);
        let coverage = w.signals[1].1.score.expect("a score");
        assert!(w.signals[2].1.score.is_some_and(|p| (0.0..=1.0).contains(&p)), "{w:?}");
        assert!(coverage > 0.95, "face, embedding and audio on (nearly) every frame: {coverage} in {w:?}");
    }
    assert_eq!(analyzer.summary().analysed_frames, 150);
}
