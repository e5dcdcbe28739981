//! One criterion group per stage of the per-frame path, on real frames of a generated 720p talking-head clip
//! (decoded once in set-up), so that a regression points at its stage:
//!
//! - `decode`: one 720p frame out of `FileSource::next_event` (H.264 and VP8, video-only copies of the clips);
//! - `crop`: sampling a model input straight from I420 (letterbox 128 NHWC, face 192 and 224 NCHW);
//! - `face_detection`: letterbox crop + BlazeFace + anchor decoding and weighted NMS, and each part alone;
//! - `landmarks`: face crop 192 + FaceMesh, and the model alone;
//! - `backbone`: face crop 224 + EfficientNet-Lite0, shipped int8 (`models/manifest.json`) and fp32
//!   (`models/manifest.fp32.json`);
//! - `audio_features`: 40 ms of 16 kHz audio pushed, then the features of one frame interval;
//! - `lipsync`: the estimate over a 3.2 s window (80 frames at 25 fps) after observing the frames;
//! - `temporal_head`: the Bi-LSTM head on one window's input (80 grid slots of feature rows + sync vector),
//!   taken from the analyser on the clip.
//!
//! Everything runs on one thread. Run with `cargo bench --bench stages` (or `bash scripts/bench.sh`).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use deepfake_guard::analysis::audio::AudioFeaturizer;
use deepfake_guard::analysis::crop::{Normalize, Roi, sample_roi};
use deepfake_guard::analysis::face::{BlazeFaceDecoder, Detection, roi_from_landmarks};
use deepfake_guard::analysis::frame::AudioChunk;
use deepfake_guard::analysis::lipsync::{LipSync, LipSyncConfig};
use deepfake_guard::analysis::{AnalyzerConfig, Output};
use deepfake_guard::cli::dataset::analyse_file;
use deepfake_guard::inference::{Backbone, Models};
use deepfake_guard::media::file::{FileSource, MediaEvent};
use deepfake_guard_plugin_api::{AudioFeatures, Detector, FaceFeatures, FrameFeatures, Window};

use common::{CLIP_720P_H264, CLIP_720P_VP8, Clip, Decoded};

/// The face of a frame as the analyser sees it: the detector's box, then the ROIs that follow the landmarks.
struct FaceRois {
    detection: Detection,
    /// Landmark crop (detector box x 1.5, eye-aligned), as on a detection frame.
    landmarks: Roi,
    /// Backbone crop (landmark extent x 1.2), as the analyser derives it.
    backbone: Roi,
}

fn face_rois(models: &mut Models, decoded: &Decoded) -> FaceRois {
    let img = decoded.image(0);
    let mut tensor = Vec::new();
    let roi = Roi::whole(img.width, img.height);
    sample_roi(&img, &roi, &Normalize::from_preprocessing(&models.detector.pre), &mut tensor);
    let mut dec = BlazeFaceDecoder::new(models.detector.pre.size);
    let raw = models.detector.run(&tensor).expect("BlazeFace run");
    let mut dets = Vec::new();
    dec.decode(&raw.scores, &raw.boxes, &roi, &mut dets);
    let detection = *dets.first().expect("the bench clip's first frame shows a face");
    let lm_roi = detection.roi(1.5);
    let lm_norm = Normalize::from_preprocessing(&models.landmarks.pre);
    sample_roi(&img, &lm_roi, &lm_norm, &mut tensor);
    let n = lm_norm.size();
    let (points, _) = models.landmarks.run(&tensor).expect("FaceMesh run");
    let pts: Vec<[f32; 3]> = points
        .chunks_exact(3)
        .map(|p| {
            let (x, y) = lm_roi.to_frame(n, p[0], p[1]);
            [x, y, p[2]]
        })
        .collect();
    let track = roi_from_landmarks(&pts, 1.5);
    let backbone = Roi { size: track.size / 1.5 * 1.2, ..track };
    FaceRois { detection, landmarks: lm_roi, backbone }
}

/// Per-frame decode time: each iteration pulls events until the next video frame; at the end of the file
/// the source is reopened outside the timed part.
fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for clip in [CLIP_720P_H264, CLIP_720P_VP8] {
        let path = clip.video_only_path();
        g.bench_function(clip.label(), |b| {
            let mut src = FileSource::open(&path, None).unwrap_or_else(|e| panic!("{e}"));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let t = Instant::now();
                    let ev = src.next_event().unwrap_or_else(|e| panic!("{e}"));
                    let got_video = match ev {
                        Some(MediaEvent::Video(f)) => {
                            black_box(f.image.y[0]);
                            true
                        }
                        Some(MediaEvent::Audio(_)) => false,
                        None => {
                            src = FileSource::open(&path, None).unwrap_or_else(|e| panic!("{e}"));
                            continue;
                        }
                    };
                    total += t.elapsed();
                    done += got_video as u64;
                }
                total
            });
        });
    }
    g.finish();
}

fn bench_crop(c: &mut Criterion, models: &Models, decoded: &Decoded, rois: &FaceRois) {
    let mut g = c.benchmark_group("crop");
    let cases = [
        ("letterbox_128_nhwc", Roi::whole(decoded.image(0).width, decoded.image(0).height), &models.detector.pre),
        ("face_192_nchw", rois.landmarks, &models.landmarks.pre),
        ("face_224_nchw", rois.backbone, &models.backbone.pre),
    ];
    for (name, roi, pre) in cases {
        let norm = Normalize::from_preprocessing(pre);
        let mut out = Vec::new();
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                sample_roi(&decoded.image(i), black_box(&roi), &norm, &mut out);
                black_box(out[0])
            })
        });
    }
    // The sampler takes round(roi / out) x round(roi / out) luma taps per output pixel (at most 4 x 4): the cost of a
    // 192 crop grows with the face's size in the frame. Same face, ROI of 1x to 4x the output size.
    let norm = Normalize::from_preprocessing(&models.landmarks.pre);
    let mut out = Vec::new();
    for taps in 1..=4u32 {
        let roi = Roi { size: (norm.size() * taps) as f32, ..rois.landmarks };
        let mut i = 0;
        g.bench_function(format!("face_192_taps_{taps}x{taps}"), |b| {
            b.iter(|| {
                i += 1;
                sample_roi(&decoded.image(i), black_box(&roi), &norm, &mut out);
                black_box(out[0])
            })
        });
    }
    g.finish();
}

fn bench_face_detection(c: &mut Criterion, models: &mut Models, decoded: &Decoded) {
    let mut g = c.benchmark_group("face_detection");
    let norm = Normalize::from_preprocessing(&models.detector.pre);
    let mut decoder = BlazeFaceDecoder::new(models.detector.pre.size);
    let mut tensor = Vec::new();
    let mut dets = Vec::new();
    let img0 = decoded.image(0);
    let roi = Roi::whole(img0.width, img0.height);
    let mut i = 0;
    g.bench_function("crop_run_decode", |b| {
        b.iter(|| {
            i += 1;
            sample_roi(&decoded.image(i), &roi, &norm, &mut tensor);
            let raw = models.detector.run(&tensor).expect("BlazeFace run");
            decoder.decode(&raw.scores, &raw.boxes, &roi, &mut dets);
            black_box(dets.len())
        })
    });
    sample_roi(&img0, &roi, &norm, &mut tensor);
    g.bench_function("model_only", |b| {
        b.iter(|| black_box(models.detector.run(black_box(&tensor)).expect("BlazeFace run").scores[0]))
    });
    let raw = models.detector.run(&tensor).expect("BlazeFace run");
    let (scores, boxes) = (raw.scores.clone(), raw.boxes.clone());
    g.bench_function("decode_nms", |b| {
        b.iter(|| {
            decoder.decode(black_box(&scores), &boxes, &roi, &mut dets);
            black_box(dets.len())
        })
    });
    g.finish();
}

fn bench_landmarks(c: &mut Criterion, models: &mut Models, decoded: &Decoded, rois: &FaceRois) {
    let mut g = c.benchmark_group("landmarks");
    let norm = Normalize::from_preprocessing(&models.landmarks.pre);
    let mut tensor = Vec::new();
    let mut i = 0;
    g.bench_function("crop_run", |b| {
        b.iter(|| {
            i += 1;
            sample_roi(&decoded.image(i), &rois.landmarks, &norm, &mut tensor);
            black_box(models.landmarks.run(&tensor).expect("FaceMesh run").1)
        })
    });
    sample_roi(&decoded.image(0), &rois.landmarks, &norm, &mut tensor);
    g.bench_function("model_only", |b| {
        b.iter(|| black_box(models.landmarks.run(black_box(&tensor)).expect("FaceMesh run").1))
    });
    g.finish();
}

fn bench_backbone(c: &mut Criterion, models: &mut Models, decoded: &Decoded, rois: &FaceRois) {
    let mut g = c.benchmark_group("backbone");
    let mut fp32 = Backbone::load(&common::manifest(true)).unwrap_or_else(|e| panic!("{e}"));
    for (name, backbone) in [("int8", &mut models.backbone), ("fp32", &mut fp32)] {
        let norm = Normalize::from_preprocessing(&backbone.pre);
        let mut tensor = Vec::new();
        let mut i = 0;
        g.bench_function(format!("{name}/crop_run"), |b| {
            b.iter(|| {
                i += 1;
                sample_roi(&decoded.image(i), &rois.backbone, &norm, &mut tensor);
                black_box(backbone.run(&tensor).expect("backbone run")[0])
            })
        });
        sample_roi(&decoded.image(0), &rois.backbone, &norm, &mut tensor);
        g.bench_function(format!("{name}/model_only"), |b| {
            b.iter(|| black_box(backbone.run(black_box(&tensor)).expect("backbone run")[0]))
        });
    }
    g.finish();
}

/// 40 ms (one 25 fps frame) of 16 kHz audio pushed, then the features of the newest complete frame interval.
fn bench_audio(c: &mut Criterion, decoded: &Decoded) {
    const FRAME_US: i64 = 40_000;
    const CHUNK: usize = 640;
    let mut g = c.benchmark_group("audio_features");
    let audio = &decoded.audio;
    assert!(audio.len() >= 10 * CHUNK, "the bench clip has too little audio");
    let chunks = audio.len() / CHUNK;
    let mut feat = AudioFeaturizer::new();
    let mut n: i64 = 0;
    let mut step = |feat: &mut AudioFeaturizer| {
        let k = n as usize % chunks;
        let pts_us = n * FRAME_US;
        feat.push(AudioChunk { pts_us, samples: &audio[k * CHUNK..(k + 1) * CHUNK] });
        n += 1;
        // The frame whose interval ends 20 ms before the newest sample: always covered by complete hops.
        feat.frame_features(n * FRAME_US - 2 * FRAME_US, FRAME_US)
    };
    // Warm the hop history (4 s kept) and check the query is answered (not the cheap `None` path).
    for _ in 0..200 {
        step(&mut feat);
    }
    assert!(step(&mut feat).is_some_and(|a| a.present), "audio features did not cover the queried frame");
    g.bench_function("push_40ms_frame_features", |b| b.iter(|| black_box(step(&mut feat))));
    g.finish();
}

/// Per-frame features (mouth opening, audio envelope and level) of the whole clip, as the analyser measured them.
fn frame_reports(models: &mut Models, clip: Clip) -> Vec<deepfake_guard::analysis::FrameReport> {
    let cfg = AnalyzerConfig { frame_reports: true, ..AnalyzerConfig::default() };
    let mut out = Vec::new();
    let keep = |o| {
        if let Output::Frame(f) = o {
            out.push(f);
        }
        Ok(())
    };
    analyse_file(&clip.path(), None, cfg, models, keep, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    out
}

fn observe_all(ls: &mut LipSync, reports: &[deepfake_guard::analysis::FrameReport]) {
    for r in reports {
        let face = r
            .mouth_open
            .map(|m| FaceFeatures::new([0.0; 4], 1.0, 100.0, &[], m, r.mouth_width.unwrap_or(0.0), 0.0, None));
        let audio = match (r.audio_level_db, r.audio_envelope) {
            (Some(db), Some(env)) => AudioFeatures::new(true, db, env, 0.0, &[]),
            _ => AudioFeatures::absent(),
        };
        ls.observe(&FrameFeatures::new(r.pts_us, r.faces, face, audio));
    }
}

fn bench_lipsync(c: &mut Criterion, models: &mut Models) {
    let reports = frame_reports(models, CLIP_720P_H264);
    assert!(reports.len() >= 160, "expected 200 analysed frames, got {}", reports.len());
    let mut g = c.benchmark_group("lipsync");
    // A 3.2 s window in the middle of the clip (80 frames), with the clip's frames around it for the lag search.
    let start = reports[60].pts_us;
    let window = Window { start_us: start, end_us: start + 3_200_000 };
    let frames = reports.iter().filter(|r| r.pts_us >= window.start_us && r.pts_us < window.end_us).count();
    assert_eq!(frames, 80, "the window should hold 80 frames at 25 fps");
    let mut ls = LipSync::new(LipSyncConfig::default());
    observe_all(&mut ls, &reports);
    let signal = ls.assess(window);
    assert!(
        signal.av_offset_ms.is_some(),
        "the lip-sync estimator gave no estimate on the bench window (not enough face, motion or sound): \
         the bench would time its early exit"
    );
    g.bench_function("assess_3.2s_window", |b| b.iter(|| black_box(ls.assess(black_box(window)))));
    // Fresh estimator: observe the window and the 20 frames (800 ms of lag) before it, then assess.
    let span: Vec<_> =
        reports.iter().filter(|r| r.pts_us >= start - 800_000 && r.pts_us < window.end_us).copied().collect();
    g.throughput(Throughput::Elements(span.len() as u64));
    g.bench_function("observe_100_then_assess", |b| {
        b.iter_batched_ref(
            || LipSync::new(LipSyncConfig::default()),
            |ls| {
                observe_all(ls, &span);
                black_box(ls.assess(window))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_temporal_head(c: &mut Criterion, models: &mut Models) {
    if models.head.is_none() {
        eprintln!("bench: models/manifest.json has no temporal head; skipping temporal_head");
        return;
    }
    // The analyser's own head input for a window in the middle of the clip.
    let cfg = AnalyzerConfig { export_rows: true, ..AnalyzerConfig::default() };
    let (mut rows, mut inputs) = (Vec::new(), Vec::new());
    let keep = |o| {
        match o {
            Output::Row(r) => rows.push(r.values),
            Output::Window(w) => inputs.extend(w.head_input),
            Output::Frame(_) => {}
        }
        Ok(())
    };
    analyse_file(&CLIP_720P_H264.path(), None, cfg, models, keep, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    let (seqs, sync) = inputs.get(1).or(inputs.first()).cloned().expect("at least one window");
    let dim = rows[0].len();
    let mut frames = vec![0.0f32; seqs.len() * dim];
    for (k, s) in seqs.iter().enumerate() {
        if *s >= 0 {
            frames[k * dim..(k + 1) * dim].copy_from_slice(&rows[*s as usize]);
        }
    }
    let head = models.head.as_mut().expect("checked above");
    let out = head.run(&frames, &sync).expect("head runs");
    eprintln!(
        "bench: temporal head on a window of the clip: p(fake) {:.3}, offset {:.0} ms",
        out.p_fake, out.offset_ms
    );
    let mut g = c.benchmark_group("temporal_head");
    g.bench_function("window_80x1319", |b| {
        b.iter(|| black_box(head.run(black_box(&frames), black_box(&sync)).unwrap()))
    });
    g.finish();
}

fn stages(c: &mut Criterion) {
    bench_decode(c);
    let decoded = common::decode_all(&CLIP_720P_H264.path());
    let mut models = common::models(false);
    let rois = face_rois(&mut models, &decoded);
    eprintln!(
        "bench: {} frames of {}x{}; face score {:.2}, landmark crop {:.0} px, backbone crop {:.0} px",
        decoded.frames.len(),
        decoded.image(0).width,
        decoded.image(0).height,
        rois.detection.score,
        rois.landmarks.size,
        rois.backbone.size
    );
    bench_crop(c, &models, &decoded, &rois);
    bench_face_detection(c, &mut models, &decoded);
    bench_landmarks(c, &mut models, &decoded, &rois);
    bench_backbone(c, &mut models, &decoded, &rois);
    bench_audio(c, &decoded);
    bench_lipsync(c, &mut models);
    bench_temporal_head(c, &mut models);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = stages
}
criterion_main!(benches);
