//! The whole per-frame path of one participant, as the scan CLI and the bot run it: decode the next frame
//! (and the audio around it) with `FileSource`, feed it to `Analyzer::push_video` with the default config
//! (BlazeFace every 10 frames, landmark tracking in between, face crops, FaceMesh, int8 backbone), feed the
//! audio to `push_audio` (features, lip-sync windows), and drain the outputs.
//!
//! One criterion iteration is one video frame, but the timer always covers whole detection cycles: each
//! measured block is 10 consecutive frames (exactly one detection run) and the reported time is the block
//! time / 10, so detection is amortised as in a real stream. The source plays the 200-frame clip in a loop;
//! reopening the file and starting a fresh analyser at the wrap happen outside the timer.
//!
//! Run with `cargo bench --bench per_frame` (or `bash scripts/bench.sh`). One thread.

mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deepfake_guard::analysis::{Analyzer, AnalyzerConfig};
use deepfake_guard::inference::Models;
use deepfake_guard::media::file::{FileSource, MediaEvent};

use common::{CLIP_480P_H264, CLIP_720P_H264, CLIP_720P_VP8};

/// Frames per timed block: one detection cycle of the default config.
const BLOCK: u64 = 10;

struct Player {
    path: PathBuf,
    src: FileSource,
    analyzer: Analyzer,
    /// Video frames in the clip, and those analysed since the file was (re)opened.
    clip_frames: u64,
    frames: u64,
    total_frames: u64,
    detections: u64,
}

impl Player {
    fn open(path: PathBuf, models: &Models) -> Self {
        let mut src = FileSource::open(&path, None).unwrap_or_else(|e| panic!("{e}"));
        let mut clip_frames = 0;
        while let Some(ev) = src.next_event().unwrap_or_else(|e| panic!("{e}")) {
            clip_frames += matches!(ev, MediaEvent::Video(_)) as u64;
        }
        assert!(clip_frames >= BLOCK, "{}: too few frames for a detection cycle", path.display());
        let src = FileSource::open(&path, None).unwrap_or_else(|e| panic!("{e}"));
        let analyzer = Analyzer::new(AnalyzerConfig::default(), models);
        Self { path, src, analyzer, clip_frames, frames: 0, total_frames: 0, detections: 0 }
    }

    /// Restart at the top of the clip (untimed).
    fn rewind(&mut self, models: &Models) {
        self.detections += self.analyzer.summary().detections_run;
        self.src = FileSource::open(&self.path, None).unwrap_or_else(|e| panic!("{e}"));
        self.analyzer = Analyzer::new(AnalyzerConfig::default(), models);
        self.frames = 0;
    }

    /// Decode and analyse events up to and including the next video frame. False at the end of the file.
    fn frame(&mut self, models: &mut Models) -> bool {
        loop {
            match self.src.next_event().unwrap_or_else(|e| panic!("{e}")) {
                Some(MediaEvent::Audio(a)) => self.analyzer.push_audio(a, models).unwrap(),
                Some(MediaEvent::Video(f)) => {
                    self.analyzer.push_video(f, models).unwrap_or_else(|e| panic!("{e}"));
                    while let Some(out) = self.analyzer.poll_output() {
                        black_box(out);
                    }
                    self.frames += 1;
                    self.total_frames += 1;
                    return true;
                }
                None => return false,
            }
        }
    }
}

fn per_frame(c: &mut Criterion) {
    let mut models = common::models(false);
    let mut g = c.benchmark_group("per_frame");
    g.throughput(Throughput::Elements(1));
    for clip in [CLIP_720P_H264, CLIP_480P_H264, CLIP_720P_VP8] {
        let mut player = Player::open(clip.path(), &models);
        g.bench_function(clip.label(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Whole blocks only: rewind (untimed) when the rest of the clip is shorter than a block.
                    if player.frames + BLOCK > player.clip_frames {
                        player.rewind(&models);
                    }
                    let t = Instant::now();
                    for _ in 0..BLOCK {
                        assert!(player.frame(&mut models), "the clip ended earlier than counted");
                    }
                    total += t.elapsed();
                }
                total / BLOCK as u32
            });
        });
        player.rewind(&models);
        eprintln!(
            "bench: per_frame/{}: {} frames analysed, {} detections (one per {:.1} frames)",
            clip.label(),
            player.total_frames,
            player.detections,
            player.total_frames as f64 / player.detections.max(1) as f64
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = per_frame
}
criterion_main!(benches);
