//! Shared set-up of the benches: real test clips (made once by the talking-head generator into
//! `target/bench-data/`), decoded into memory, and the shipped models.
//!
//! Every bench runs on one thread: the ONNX sessions are built with one intra-op thread, FFmpeg decoders
//! with one thread, and criterion runs the routines on the calling thread.

#![allow(dead_code)] // each bench binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use deepfake_guard::analysis::frame::{I420, I420Buf, VideoFrame};
use deepfake_guard::inference::{Manifest, Models};
use deepfake_guard::media::file::{FileSource, MediaEvent};

/// Short defaults, fit for a shared 2-core machine; any criterion flag given after `--` overrides them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .without_plots()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where generated clips live (ignored by git, kept between runs).
pub fn data_dir() -> PathBuf {
    repo().join("target/bench-data")
}

/// A bench clip: 8 s of a talking head (astronaut photo, seed 3) at 25 fps = 200 frames, with speech.
#[derive(Clone, Copy, Debug)]
pub struct Clip {
    pub width: u32,
    pub height: u32,
    /// `mp4` (H.264 + AAC) or `webm` (VP8 + Opus).
    pub ext: &'static str,
}

pub const CLIP_720P_H264: Clip = Clip { width: 1280, height: 720, ext: "mp4" };
pub const CLIP_720P_VP8: Clip = Clip { width: 1280, height: 720, ext: "webm" };
pub const CLIP_480P_H264: Clip = Clip { width: 640, height: 480, ext: "mp4" };

pub const CLIP_SECONDS: u32 = 8;
pub const CLIP_SEED: u32 = 3;

impl Clip {
    pub fn label(&self) -> String {
        let codec = if self.ext == "webm" { "vp8" } else { "h264" };
        format!("{}x{}_{codec}", self.width, self.height)
    }

    /// The clip with audio, generated if missing.
    pub fn path(&self) -> PathBuf {
        let path = data_dir().join(format!("talk_{}x{}.{}", self.width, self.height, self.ext));
        if !path.exists() {
            generate(self, &path);
        }
        path
    }

    /// The same clip with its audio stream removed (stream copy, no re-encoding): decode benches time the
    /// video decoder alone.
    pub fn video_only_path(&self) -> PathBuf {
        let src = self.path();
        let path = data_dir().join(format!("talk_{}x{}_video.{}", self.width, self.height, self.ext));
        if !path.exists() {
            let tmp = tmp_name(&path);
            let status = Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-i"])
                .arg(&src)
                .args(["-map", "0:v:0", "-c", "copy", "-an"])
                .arg(&tmp)
                .status()
                .unwrap_or_else(|e| panic!("cannot run ffmpeg (install it with `bash scripts/setup.sh`): {e}"));
            assert!(status.success(), "ffmpeg could not strip the audio of {}", src.display());
            std::fs::rename(&tmp, &path).expect("rename the stripped clip into place");
        }
        path
    }
}

fn tmp_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap().to_string_lossy();
    path.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

fn generate(clip: &Clip, path: &Path) {
    let repo = repo();
    let python = repo.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the benches make their test clips with the talking-head generator, which needs the project's Python \
         venv ({} is missing): run `bash scripts/setup.sh` first",
        python.display()
    );
    std::fs::create_dir_all(data_dir()).expect("create target/bench-data");
    let tmp = tmp_name(path);
    eprintln!("bench: generating {} (talkgen, {} s)", path.display(), CLIP_SECONDS);
    let status = Command::new(&python)
        .arg(repo.join("scripts/talkgen.py"))
        .args(["--face", "astronaut", "--quiet"])
        .args(["--seconds", &CLIP_SECONDS.to_string(), "--seed", &CLIP_SEED.to_string()])
        .args(["--width", &clip.width.to_string(), "--height", &clip.height.to_string()])
        .arg("--out")
        .arg(&tmp)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `bash scripts/setup.sh`", python.display()));
    assert!(
        status.success(),
        "talkgen failed to make {} (exit {status}); check `bash scripts/setup.sh` ran cleanly",
        path.display()
    );
    std::fs::rename(&tmp, path).expect("rename the generated clip into place");
}

/// A clip decoded into memory: every video frame (owned I420) and all audio (16 kHz mono).
pub struct Decoded {
    pub frames: Vec<(i64, I420Buf)>,
    pub audio_t0_us: i64,
    pub audio: Vec<f32>,
}

impl Decoded {
    pub fn frame(&self, i: usize) -> VideoFrame<'_> {
        let (pts_us, buf) = &self.frames[i % self.frames.len()];
        VideoFrame { pts_us: *pts_us, image: buf.view() }
    }

    pub fn image(&self, i: usize) -> I420<'_> {
        self.frames[i % self.frames.len()].1.view()
    }
}

pub fn decode_all(path: &Path) -> Decoded {
    let mut src = FileSource::open(path, None).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Decoded { frames: Vec::new(), audio_t0_us: 0, audio: Vec::new() };
    while let Some(ev) = src.next_event().unwrap_or_else(|e| panic!("{e}")) {
        match ev {
            MediaEvent::Video(f) => {
                let i = f.image;
                let buf = I420Buf {
                    width: i.width,
                    height: i.height,
                    y: i.y.to_vec(),
                    u: i.u.to_vec(),
                    v: i.v.to_vec(),
                    stride_y: i.stride_y,
                    stride_u: i.stride_u,
                    stride_v: i.stride_v,
                };
                out.frames.push((f.pts_us, buf));
            }
            MediaEvent::Audio(a) => {
                if out.audio.is_empty() {
                    out.audio_t0_us = a.pts_us;
                }
                out.audio.extend_from_slice(a.samples);
            }
        }
    }
    assert!(!out.frames.is_empty(), "{}: no video frames decoded", path.display());
    out
}

/// The shipped model manifest (int8 backbone) or the fp32 one beside it.
pub fn manifest(fp32: bool) -> Manifest {
    let path = if fp32 { repo().join("models/manifest.fp32.json") } else { Manifest::default_path() };
    Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn models(fp32: bool) -> Models {
    Models::load(&manifest(fp32)).unwrap_or_else(|e| panic!("{e}"))
}
