//! Offline media input (`media::file`): files made at test time with the ffmpeg CLI decode into the expected
//! I420 frames and 16 kHz mono audio, with timestamps from 0; damaged or missing files never panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use deepfake_guard::media::file::*;

const SECONDS: f64 = 2.0;
const FPS: i64 = 25;
/// lavfi `sine` default amplitude is 1/8: RMS of a full-scale-1/8 sine.
const SINE_RMS: f64 = 0.125 / std::f64::consts::SQRT_2;

/// Run the ffmpeg CLI in `dir` (inputs: 2 s of testsrc2 320x240@25 and a 440 Hz sine at 48 kHz).
fn ffmpeg(dir: &Path, args: &[&str]) {
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI is needed to make test media (apt-get install ffmpeg)");
    assert!(out.status.success(), "ffmpeg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

const VIDEO_IN: [&str; 4] = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"];
const AUDIO_IN: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"];

/// Make `name` in `dir` from the test video + audio with the given codec options.
fn make(dir: &Path, name: &str, codec_args: &[&str]) -> PathBuf {
    let mut args: Vec<&str> = VIDEO_IN.iter().chain(AUDIO_IN.iter()).copied().collect();
    args.extend(["-t", "2"]);
    args.extend(codec_args);
    args.push(name);
    ffmpeg(dir, &args);
    dir.join(name)
}

fn make_mp4(dir: &Path) -> PathBuf {
    // faststart: the index goes first, so a file cut in half still opens.
    make(dir, "a.mp4", &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"])
}

#[derive(Default, Debug)]
struct Decoded {
    video_pts: Vec<i64>,
    sizes: Vec<(u32, u32)>,
    /// (pts, sample count) per audio chunk
    chunks: Vec<(i64, usize)>,
    samples: Vec<f32>,
    /// Before each video frame: end time of the audio emitted so far, and pts of the last audio chunk.
    audio_before_video: Vec<(i64, Option<i64>)>,
    luma_spread: Vec<u8>,
    errors: u64,
    /// Wall time of the whole decode loop (video and audio).
    elapsed: Duration,
}

fn decode(video: &Path, audio: Option<&Path>) -> (MediaInfo, Decoded) {
    let mut src = FileSource::open(video, audio).unwrap_or_else(|e| panic!("open: {e}"));
    let info = src.info().clone();
    let mut d = Decoded::default();
    let mut audio_end = i64::MIN;
    let t = Instant::now();
    while let Some(ev) = src.next_event().unwrap_or_else(|e| panic!("next_event: {e}")) {
        match ev {
            MediaEvent::Video(f) => {
                let im = f.image;
                let (w, h) = (im.width as usize, im.height as usize);
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                assert!(im.stride_y >= w && im.stride_u >= cw && im.stride_v >= cw, "strides {im:?}");
                assert!(im.y.len() >= im.stride_y * (h - 1) + w, "y plane too short");
                assert!(im.u.len() >= im.stride_u * (ch - 1) + cw && im.v.len() >= im.stride_v * (ch - 1) + cw);
                let row = &im.y[(h / 2) * im.stride_y..][..w];
                d.luma_spread.push(row.iter().max().unwrap() - row.iter().min().unwrap());
                d.video_pts.push(f.pts_us);
                d.sizes.push((im.width, im.height));
                d.audio_before_video.push((audio_end, d.chunks.last().map(|c| c.0)));
            }
            MediaEvent::Audio(a) => {
                assert!(!a.samples.is_empty(), "empty audio chunk");
                assert!(a.samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0), "samples out of range");
                d.chunks.push((a.pts_us, a.samples.len()));
                d.samples.extend_from_slice(a.samples);
                audio_end = a.pts_us + a.samples.len() as i64 * 1_000_000 / 16_000;
            }
        }
    }
    d.elapsed = t.elapsed();
    assert!(src.next_event().unwrap().is_none(), "next_event after the end must stay None");
    d.errors = src.decode_errors();
    (info, d)
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Frequency from rising zero crossings.
fn frequency(x: &[f32]) -> f64 {
    let ups = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    ups as f64 / (x.len() as f64 / 16_000.0)
}

/// Everything a clean 2 s test file must give.
fn check_clean(name: &str, info: &MediaInfo, d: &Decoded) {
    let n = d.video_pts.len() as i64;
    println!(
        "{name}: {info:?}\n  {n} frames, first pts {} us, {} audio chunks, {} samples, rms {:.4}, {:.1} Hz, \
         decode {:.3} ms per frame (debug build, audio included), errors {}",
        d.video_pts[0],
        d.chunks.len(),
        d.samples.len(),
        rms(&d.samples),
        frequency(&d.samples),
        d.elapsed.as_secs_f64() * 1e3 / n as f64,
        d.errors
    );
    assert_eq!((info.width, info.height), (320, 240), "{name}");
    assert!((info.fps.expect("fps") - 25.0).abs() < 0.01, "{name}: fps {:?}", info.fps);
    let dur = info.duration_us.expect("duration");
    assert!((dur - 2_000_000).abs() < 100_000, "{name}: duration {dur}");
    assert!(info.has_audio && info.audio_codec.is_some(), "{name}");
    assert_eq!(d.errors, 0, "{name}: decode errors on a clean file");

    // video: 50 frames, from ~0, every 40 ms
    assert!((n - (SECONDS as i64 * FPS)).abs() <= 1, "{name}: {n} frames");
    assert!(d.sizes.iter().all(|&s| s == (320, 240)), "{name}: frame sizes");
    assert!(d.luma_spread.iter().all(|&s| s > 50), "{name}: flat frames (not the test pattern)");
    assert!(d.video_pts[0].abs() < 50_000, "{name}: first video pts {}", d.video_pts[0]);
    for w in d.video_pts.windows(2) {
        assert!((w[1] - w[0] - 40_000).abs() <= 1_000, "{name}: video pts step {} -> {}", w[0], w[1]);
    }

    // audio: 2 s at 16 kHz of a 440 Hz sine at 1/8 amplitude, from ~0, chunks back to back
    let ns = d.samples.len() as f64;
    assert!((ns / 32_000.0 - 1.0).abs() < 0.02, "{name}: {ns} samples");
    let r = rms(&d.samples);
    assert!((r / SINE_RMS - 1.0).abs() < 0.05, "{name}: rms {r}");
    let f = frequency(&d.samples);
    assert!((f - 440.0).abs() < 440.0 * 0.02, "{name}: {f} Hz");
    let first = d.chunks[0].0;
    assert!(first.abs() < 50_000, "{name}: first audio pts {first}");
    for w in d.chunks.windows(2) {
        let expect = w[0].0 + w[0].1 as i64 * 1_000_000 / 16_000;
        assert!((w[1].0 - expect).abs() <= 2_000, "{name}: audio chunk at {} after {:?}", w[1].0, w[0]);
    }
}

#[test]
fn mp4_h264_aac() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_mp4(dir.path());
    let (info, d) = decode(&p, None);
    assert_eq!(info.video_codec, "h264");
    assert_eq!(info.audio_codec.as_deref(), Some("aac"));
    check_clean("mp4", &info, &d);
}

#[test]
fn webm_vp8_opus() {
    let dir = tempfile::tempdir().unwrap();
    let p = make(dir.path(), "b.webm", &["-c:v", "libvpx", "-c:a", "libopus"]);
    let (info, d) = decode(&p, None);
    assert_eq!(info.video_codec, "vp8");
    assert_eq!(info.audio_codec.as_deref(), Some("opus"));
    check_clean("webm", &info, &d);
}

/// 4:4:4 H.264 goes through swscale to I420; FLAC audio.
#[test]
fn mkv_h264_444_flac() {
    let dir = tempfile::tempdir().unwrap();
    let p = make(dir.path(), "c.mkv", &["-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "flac"]);
    let (info, d) = decode(&p, None);
    assert_eq!(info.audio_codec.as_deref(), Some("flac"));
    check_clean("mkv", &info, &d);

    // the converted chroma must match what the same file gives as native 4:2:0 (up to encoding loss)
    let p420 = dir.path().join("c420.mkv");
    ffmpeg(dir.path(), &["-i", "c.mkv", "-an", "-c:v", "ffv1", "-pix_fmt", "yuv420p", "c420.mkv"]);
    let mut a = FileSource::open(&p, None).unwrap();
    let mut b = FileSource::open(&p420, None).unwrap();
    let first = |s: &mut FileSource| loop {
        if let Some(MediaEvent::Video(f)) = s.next_event().unwrap() {
            break (f.image.y.to_vec(), f.image.u.to_vec(), f.image.v.to_vec());
        }
    };
    let (ya, ua, va) = first(&mut a);
    let (yb, ub, vb) = first(&mut b);
    assert_eq!((ya.len(), ua.len(), va.len()), (320 * 240, 160 * 120, 160 * 120), "tightly packed I420");
    assert_eq!(ya, yb, "luma is copied through unchanged");
    let mad =
        |x: &[u8], y: &[u8]| x.iter().zip(y).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>() / x.len() as f64;
    assert!(mad(&ua, &ub) < 2.0 && mad(&va, &vb) < 2.0, "chroma differs: {} {}", mad(&ua, &ub), mad(&va, &vb));
}

/// Raw video with the audio in a separate file: audio is interleaved ahead of the video by up to 200 ms.
#[test]
fn y4m_with_separate_wav() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = VIDEO_IN.to_vec();
    args.extend(["-t", "2", "-pix_fmt", "yuv420p", "d.y4m"]);
    ffmpeg(dir.path(), &args);
    let mut args: Vec<&str> = AUDIO_IN.to_vec();
    args.extend(["-t", "2", "d.wav"]);
    ffmpeg(dir.path(), &args);
    let (y4m, wav) = (dir.path().join("d.y4m"), dir.path().join("d.wav"));

    let (info, d) = decode(&y4m, Some(&wav));
    assert_eq!(info.video_codec, "rawvideo");
    assert_eq!(info.audio_codec.as_deref(), Some("pcm_s16le"));
    check_clean("y4m+wav", &info, &d);
    let audio_end = d.chunks.last().map(|c| c.0 + c.1 as i64 * 1_000_000 / 16_000).unwrap();
    for (&t, &(end, last_pts)) in d.video_pts.iter().zip(&d.audio_before_video) {
        assert!(end >= (t + 200_000).min(audio_end), "video {t}: audio only up to {end}");
        assert!(last_pts.unwrap() <= t + 200_000, "video {t}: audio chunk at {last_pts:?} emitted too early");
    }

    // the y4m alone has no audio
    let (info, d) = decode(&y4m, None);
    assert!(!info.has_audio && info.audio_codec.is_none() && d.chunks.is_empty());
    assert_eq!(d.video_pts.len(), 50);
}

/// A file cut in half and one with bytes flipped in the middle decode what they can, without panicking.
#[test]
fn damaged_files_decode_what_they_can() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_mp4(dir.path());
    let bytes = std::fs::read(&p).unwrap();

    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (_, d) = decode(&cut, None);
    println!("cut in half: {} frames, {} samples, {} errors", d.video_pts.len(), d.samples.len(), d.errors);
    assert!((10..45).contains(&d.video_pts.len()), "cut file: {} frames", d.video_pts.len());
    assert!(d.video_pts.windows(2).all(|w| w[1] > w[0]), "monotone pts");

    let flipped = dir.path().join("flipped.mp4");
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    let mut x = 0x9e37_79b9u32;
    for byte in &mut b[mid..mid + 4000] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte ^= (x as u8) | 1;
    }
    std::fs::write(&flipped, &b).unwrap();
    let (_, d) = decode(&flipped, None);
    println!("flipped: {} frames, {} samples, {} errors", d.video_pts.len(), d.samples.len(), d.errors);
    assert!(d.video_pts.len() >= 20, "flipped file: {} frames", d.video_pts.len());
    assert!(d.video_pts.windows(2).all(|w| w[1] > w[0]), "monotone pts");

    // the index of a plain (non-faststart) mp4 is at the end: cut, it cannot be opened, and says so
    let plain = make(dir.path(), "plain.mp4", &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"]);
    let bytes = std::fs::read(&plain).unwrap();
    let cut = dir.path().join("cut-plain.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    match FileSource::open(&cut, None) {
        Err(e) => assert!(e.to_string().contains("cut-plain.mp4"), "{e}"),
        Ok(mut s) => while s.next_event().unwrap().is_some() {},
    }
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.mp4");
    let e = FileSource::open(&missing, None).err().expect("missing file must fail");
    assert!(matches!(e, MediaError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("no-such-file.mp4"), "{e}");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a media file\n").unwrap();
    let e = FileSource::open(&text, None).err().expect("text file must fail");
    assert!(e.to_string().contains("notes.txt"), "{e}");

    let mut args: Vec<&str> = AUDIO_IN.to_vec();
    args.extend(["-t", "1", "tone.wav"]);
    ffmpeg(dir.path(), &args);
    let wav = dir.path().join("tone.wav");
    let e = FileSource::open(&wav, None).err().expect("audio-only file has no video");
    assert!(matches!(e, MediaError::NoVideoStream { .. }) && e.to_string().contains("tone.wav"), "{e}");
    // cover art is not a video stream
    let mut args: Vec<&str> = AUDIO_IN.iter().chain(VIDEO_IN.iter()).copied().collect();
    args.extend(["-t", "1", "-frames:v", "1", "-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "mjpeg"]);
    args.extend(["-disposition:v", "attached_pic", "song.m4a"]);
    ffmpeg(dir.path(), &args);
    let e = FileSource::open(&dir.path().join("song.m4a"), None).err().expect("cover art only");
    assert!(matches!(e, MediaError::NoVideoStream { .. }) && e.to_string().contains("song.m4a"), "{e}");

    // a separate audio file that is missing, or has no audio, is named too
    let mp4 = make_mp4(dir.path());
    let e = FileSource::open(&mp4, Some(&missing)).err().expect("missing audio file");
    assert!(e.to_string().contains("no-such-file.mp4"), "{e}");
    let mut args: Vec<&str> = VIDEO_IN.to_vec();
    args.extend(["-t", "1", "-c:v", "libvpx", "silent.webm"]);
    ffmpeg(dir.path(), &args);
    let e = FileSource::open(&mp4, Some(&dir.path().join("silent.webm"))).err().expect("no audio stream");
    assert!(matches!(e, MediaError::NoAudioStream { .. }) && e.to_string().contains("silent.webm"), "{e}");
}

/// A source can be moved to a worker thread.
#[test]
fn file_source_is_send() {
    fn send<T: Send>() {}
    send::<FileSource>();
}
