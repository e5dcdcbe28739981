//! Offline media input: decode any file FFmpeg demuxes (mp4, webm, mkv, y4m, ...) into the analysis core's
//! inputs: I420 [`VideoFrame`]s and 16 kHz mono f32 [`AudioChunk`]s, each stamped with its media time in
//! microseconds, counted from the start of the file.
//!
//! ```no_run
//! # use deepfake_guard::media::file::{FileSource, MediaEvent};
//! let mut src = FileSource::open("call.mp4".as_ref(), None)?;
//! while let Some(ev) = src.next_event()? {
//!     match ev {
//!         MediaEvent::Video(f) => println!("video {} us {}x{}", f.pts_us, f.image.width, f.image.height),
//!         MediaEvent::Audio(a) => println!("audio {} us, {} samples", a.pts_us, a.samples.len()),
//!     }
//! }
//! # Ok::<(), deepfake_guard::media::file::MediaError>(())
//! ```
//!
//! Decoding is single-threaded per source (the caller decides parallelism, e.g. one source per thread).
//! Frames and audio chunks are written into buffers owned by the [`FileSource`] and lent out by
//! [`FileSource::next_event`]; once warm, decoding a frame allocates nothing.
//!
//! Ordering: with one file, events come in the demuxer's interleaved order (roughly by time). With a
//! separate audio file, all audio up to [`AUDIO_LEAD_US`] past a video frame's time is emitted before that
//! frame. Corrupt packets or frames are skipped and counted ([`FileSource::decode_errors`]), never fatal.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Once;

use ff::ffi;
use ff::format::Pixel;
use ff::media::Type as MediaType;
use ff::packet::Mut as _;
use ffmpeg_next as ff;

use crate::analysis::frame::{AUDIO_RATE, AudioChunk, I420Buf, VideoFrame};

/// With a separate audio file: before a video frame at time `t` is returned, all audio up to `t` plus this
/// much (microseconds) is emitted first.
pub const AUDIO_LEAD_US: i64 = 200_000;

/// After this many read errors in a row the input is treated as ended (its decoders are flushed).
const MAX_READ_ERRORS_IN_ROW: u32 = 16;
/// After this many decoder errors in a row while receiving, the decoder is moved on (next packet / done).
const MAX_RECEIVE_ERRORS_IN_ROW: u32 = 8;
/// Audio timestamps that drift less than this from the running sample count are taken as continuous.
const AUDIO_JITTER_US: i64 = 10_000;

/// What a media file holds, as probed at [`FileSource::open`].
#[derive(Clone, Debug, PartialEq)]
pub struct MediaInfo {
    /// Coded picture size of the video stream (frames may change size later; each frame carries its own).
    pub width: u32,
    pub height: u32,
    /// Average frame rate if the container states one.
    pub fps: Option<f64>,
    /// Duration of the video file, if known.
    pub duration_us: Option<i64>,
    /// FFmpeg's decoder name for the video stream, e.g. `h264`, `vp8`, `rawvideo`.
    pub video_codec: String,
    /// Whether audio events will be produced (from the separate audio file or the video file).
    pub has_audio: bool,
    /// FFmpeg's decoder name for the audio stream, e.g. `aac`, `opus`, `pcm_s16le`.
    pub audio_codec: Option<String>,
}

/// One decoded event. Its buffers belong to the [`FileSource`] and are reused by the next call.
#[derive(Clone, Copy, Debug)]
pub enum MediaEvent<'a> {
    Video(VideoFrame<'a>),
    Audio(AudioChunk<'a>),
}

/// Failures of [`FileSource::open`] and [`FileSource::next_event`]; each names the file concerned.
#[derive(thiserror::Error, Debug)]
pub enum MediaError {
    /// The file could not be opened or probed (missing, unreadable, or not a format FFmpeg knows).
    #[error("cannot open media file {}: {source}", .path.display())]
    Open { path: PathBuf, source: ff::Error },
    /// The file holds no video stream.
    #[error("{}: no video stream in this file", .path.display())]
    NoVideoStream { path: PathBuf },
    /// The separate audio file holds no audio stream.
    #[error("{}: no audio stream in this file", .path.display())]
    NoAudioStream { path: PathBuf },
    /// This FFmpeg build has no decoder for the stream's codec.
    #[error("{}: no {kind} decoder for codec `{codec}` in this FFmpeg build", .path.display())]
    UnsupportedCodec { path: PathBuf, kind: &'static str, codec: String },
    /// The decoder for a stream could not be set up.
    #[error("{}: cannot open the {codec} {kind} decoder: {source}", .path.display())]
    Decoder { path: PathBuf, kind: &'static str, codec: String, source: ff::Error },
    /// The pixel-format converter (swscale) or audio resampler (swresample) could not be set up.
    #[error("{}: cannot convert {what}: {source}", .path.display())]
    Convert { path: PathBuf, what: String, source: ff::Error },
}

/// Initialise FFmpeg once per process. libav*'s own messages (one per corrupt packet on damaged input) are
/// routed into the `log` crate under target `ffmpeg`: fatal ones as errors, errors and warnings at debug
/// level (the skipped packets are counted by [`FileSource::decode_errors`]), info at trace.
pub(crate) fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = ff::init() {
            log::warn!("ffmpeg init: {e}");
        }
        ff::util::log::set_level(ff::util::log::Level::Warning);
        route_av_log();
    });
}

#[cfg(target_arch = "x86_64")]
fn route_av_log() {
    use std::ffi::{CStr, c_char, c_int, c_void};

    unsafe extern "C" fn callback(avcl: *mut c_void, level: c_int, fmt: *const c_char, vl: *mut ffi::__va_list_tag) {
        let lvl = match level {
            l if l <= ffi::AV_LOG_FATAL => log::Level::Error,
            l if l <= ffi::AV_LOG_WARNING => log::Level::Debug,
            l if l <= ffi::AV_LOG_VERBOSE => log::Level::Trace,
            _ => return,
        };
        if !log::log_enabled!(target: "ffmpeg", lvl) {
            return;
        }
        let mut line = [0 as c_char; 1024];
        let mut print_prefix: c_int = 1;
        // SAFETY: formats FFmpeg's own message into a local buffer (NUL-terminated, truncated to its size).
        let text = unsafe {
            ffi::av_log_format_line2(avcl, level, fmt, vl, line.as_mut_ptr(), line.len() as c_int, &mut print_prefix);
            CStr::from_ptr(line.as_ptr())
        };
        log::log!(target: "ffmpeg", lvl, "{}", text.to_string_lossy().trim_end());
    }
    // SAFETY: the callback is thread-safe (stack buffer only) and lives for the whole program.
    unsafe { ffi::av_log_set_callback(Some(callback)) };
}

/// Elsewhere the C type of `va_list` differs; FFmpeg keeps printing errors to stderr itself.
#[cfg(not(target_arch = "x86_64"))]
fn route_av_log() {
    ff::util::log::set_level(ff::util::log::Level::Error);
}

/// Decoder life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DecState {
    /// Wants a packet.
    Feed,
    /// A packet was sent: receive frames until the decoder asks for more.
    Drain,
    /// End of input was signalled: receive the remaining frames.
    Flush,
    /// Fully drained.
    Done,
}

/// An opened demuxer plus its reusable packet.
struct Input {
    ctx: ff::format::context::Input,
    path: PathBuf,
    packet: ff::Packet,
    start_us: i64,
    eof: bool,
    read_errors_in_row: u32,
}

impl Input {
    fn open(path: &Path) -> Result<Self, MediaError> {
        let err = |source| MediaError::Open { path: path.to_path_buf(), source };
        // Always through the file protocol: a name with a colon must not be read as a URL, and a non-UTF-8
        // path must not panic (ffmpeg-next's own `format::input` unwraps `to_str`).
        let mut url = b"file:".to_vec();
        url.extend_from_slice(path.as_os_str().as_bytes());
        let url = CString::new(url).map_err(|_| err(ff::Error::Other { errno: ffi::EINVAL }))?;
        // SAFETY: plain libavformat open/probe sequence; on failure the context is freed by libavformat
        // (open) or by us (probe); on success ownership moves into `Input::wrap`.
        let ctx = unsafe {
            let mut ps = ptr::null_mut();
            let r = ffi::avformat_open_input(&mut ps, url.as_ptr(), ptr::null_mut(), ptr::null_mut());
            if r < 0 {
                return Err(err(ff::Error::from(r)));
            }
            let r = ffi::avformat_find_stream_info(ps, ptr::null_mut());
            if r < 0 {
                ffi::avformat_close_input(&mut ps);
                return Err(err(ff::Error::from(r)));
            }
            ff::format::context::Input::wrap(ps)
        };
        // SAFETY: reading a plain field of a live context.
        let start = unsafe { (*ctx.as_ptr()).start_time };
        let start_us = if start == ffi::AV_NOPTS_VALUE { 0 } else { start };
        Ok(Input {
            ctx,
            path: path.to_path_buf(),
            packet: ff::Packet::empty(),
            start_us,
            eof: false,
            read_errors_in_row: 0,
        })
    }

    /// Tell the demuxer to drop every stream but `keep` (saves demuxing work on extra tracks).
    fn discard_all_but(&mut self, keep: &[usize]) {
        for i in 0..self.ctx.nb_streams() as usize {
            if !keep.contains(&i) {
                // SAFETY: `i` < nb_streams; `discard` is meant to be set by the user before reading.
                unsafe { (**(*self.ctx.as_mut_ptr()).streams.add(i)).discard = ffi::AVDiscard::AVDISCARD_ALL };
            }
        }
    }

    fn duration_us(&self) -> Option<i64> {
        let d = self.ctx.duration();
        (d > 0 && d != ffi::AV_NOPTS_VALUE).then_some(d)
    }
}

/// `ts` in `tb` units to microseconds (no overflow for any i64 timestamp).
fn to_us(ts: i64, tb: ff::Rational) -> i64 {
    if tb.denominator() == 0 {
        return 0;
    }
    (ts as i128 * tb.numerator() as i128 * 1_000_000 / tb.denominator() as i128) as i64
}

fn rational_f64(r: ff::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| r.numerator() as f64 / r.denominator() as f64)
}

/// Opens a single-threaded decoder for `stream`.
fn open_decoder(
    path: &Path,
    stream: &ff::format::stream::Stream,
    kind: &'static str,
) -> Result<(ff::decoder::Opened, String), MediaError> {
    let params = stream.parameters();
    let id = params.id();
    let Some(codec) = ff::decoder::find(id) else {
        return Err(MediaError::UnsupportedCodec { path: path.into(), kind, codec: format!("{id:?}").to_lowercase() });
    };
    let name = codec.name().to_string();
    let derr = |source| MediaError::Decoder { path: path.into(), kind, codec: name.clone(), source };
    let mut ctx = ff::codec::Context::from_parameters(params).map_err(derr)?;
    ctx.set_threading(ff::codec::threading::Config::count(1));
    let mut dec = ctx.decoder();
    dec.set_packet_time_base(stream.time_base());
    let opened = dec.open_as(codec).map_err(derr)?;
    Ok((opened, name))
}

/// Result of one receive attempt.
enum Recv {
    /// An event was produced into the track's buffer.
    Event,
    /// Nothing produced; state may have changed; try again.
    Nothing,
}

struct VideoTrack {
    stream: usize,
    dec: ff::decoder::Video,
    tb: ff::Rational,
    start_us: i64,
    frame_dur_us: i64,
    state: DecState,
    errors_in_row: u32,
    frame: ff::frame::Video,
    scaler: Option<(Pixel, u32, u32, Scaler)>,
    buf: I420Buf,
    pts_us: i64,
    last_pts_us: Option<i64>,
}

impl VideoTrack {
    fn send(&mut self, packet: &ff::Packet, path: &Path, errors: &mut u64) {
        match self.dec.send_packet(packet) {
            Ok(()) => self.state = DecState::Drain,
            Err(e) => {
                *errors += 1;
                log::debug!("{}: video packet (pts {:?}) rejected by decoder: {e}", path.display(), packet.pts());
            }
        }
    }

    fn receive(&mut self, path: &Path, errors: &mut u64) -> Result<Recv, MediaError> {
        match self.dec.receive_frame(&mut self.frame) {
            Ok(()) => {
                self.errors_in_row = 0;
                if self.frame.width() == 0 || self.frame.height() == 0 {
                    return Ok(Recv::Nothing);
                }
                let pts = match self.frame.timestamp() {
                    Some(ts) => to_us(ts, self.tb) - self.start_us,
                    None => self.last_pts_us.map_or(0, |p| p + self.frame_dur_us),
                };
                if self.convert(path, errors)? {
                    self.pts_us = pts;
                    self.last_pts_us = Some(pts);
                    Ok(Recv::Event)
                } else {
                    Ok(Recv::Nothing)
                }
            }
            Err(ff::Error::Other { errno: ffi::EAGAIN }) => {
                self.state = DecState::Feed;
                Ok(Recv::Nothing)
            }
            Err(ff::Error::Eof) => {
                self.state = DecState::Done;
                Ok(Recv::Nothing)
            }
            Err(e) => {
                *errors += 1;
                self.errors_in_row += 1;
                log::debug!("{}: video decode error: {e}", path.display());
                if self.errors_in_row >= MAX_RECEIVE_ERRORS_IN_ROW {
                    self.errors_in_row = 0;
                    self.state = if self.state == DecState::Flush { DecState::Done } else { DecState::Feed };
                }
                Ok(Recv::Nothing)
            }
        }
    }

    /// Copy or convert the decoded frame into `buf`. Ok(false): frame skipped.
    fn convert(&mut self, path: &Path, errors: &mut u64) -> Result<bool, MediaError> {
        let f = &self.frame;
        let (w, h, fmt) = (f.width(), f.height(), f.format());
        self.buf.reshape(w, h);
        // SAFETY: reading plain fields of a decoded frame.
        let linesize = unsafe { (*f.as_ptr()).linesize };
        let flipped = linesize[..3].iter().any(|&l| l < 0);
        if matches!(fmt, Pixel::YUV420P | Pixel::YUVJ420P) && !flipped {
            let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
            copy_plane(&mut self.buf.y, w as usize, h as usize, f.data(0), f.stride(0));
            copy_plane(&mut self.buf.u, cw, ch, f.data(1), f.stride(1));
            copy_plane(&mut self.buf.v, cw, ch, f.data(2), f.stride(2));
            return Ok(true);
        }
        if !matches!(&self.scaler, Some((p, sw, sh, _)) if *p == fmt && *sw == w && *sh == h) {
            let sws = ff::software::scaling::Context::get(
                fmt,
                w,
                h,
                Pixel::YUV420P,
                w,
                h,
                ff::software::scaling::Flags::BILINEAR,
            )
            .map_err(|source| MediaError::Convert {
                path: path.into(),
                what: format!("video {fmt:?} {w}x{h} to yuv420p"),
                source,
            })?;
            self.scaler = Some((fmt, w, h, Scaler(sws)));
        }
        let sws = &mut self.scaler.as_mut().expect("scaler set above").3.0;
        let b = &mut self.buf;
        let dst = [b.y.as_mut_ptr(), b.u.as_mut_ptr(), b.v.as_mut_ptr(), ptr::null_mut()];
        let dst_stride = [b.stride_y as i32, b.stride_u as i32, b.stride_v as i32, 0];
        // SAFETY: source planes/strides come from a decoded frame of the size and format the context was
        // made for; destination planes were sized by `reshape` for a packed w x h yuv420p picture.
        let r = unsafe {
            let src = &*f.as_ptr();
            ffi::sws_scale(
                sws.as_mut_ptr(),
                src.data.as_ptr() as *const *const u8,
                src.linesize.as_ptr(),
                0,
                h as i32,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if r <= 0 {
            *errors += 1;
            log::debug!("{}: swscale failed on a {fmt:?} frame ({r})", path.display());
            return Ok(false);
        }
        Ok(true)
    }
}

/// An swscale context owned by one source.
struct Scaler(ff::software::scaling::Context);

// SAFETY: an SwsContext has no thread affinity; it is owned by one `VideoTrack` and only used through
// `&mut self`, so moving it to another thread is sound (ffmpeg-next just does not say so).
unsafe impl Send for Scaler {}

fn copy_plane(dst: &mut [u8], width: usize, rows: usize, src: &[u8], stride: usize) {
    if stride == width {
        dst[..width * rows].copy_from_slice(&src[..width * rows]);
    } else {
        for (d, s) in dst.chunks_exact_mut(width).zip(src.chunks(stride)).take(rows) {
            d.copy_from_slice(&s[..width]);
        }
    }
}

struct AudioTrack {
    stream: usize,
    dec: ff::decoder::Audio,
    tb: ff::Rational,
    start_us: i64,
    state: DecState,
    errors_in_row: u32,
    frame: ff::frame::Audio,
    /// Resampler and the input it was made for (format, layout, rate).
    swr: Option<(ff::format::Sample, ff::ChannelLayout, u32, ff::software::resampling::Context)>,
    out: Vec<f32>,
    /// Time of the first sample emitted since the last resync, and samples emitted since.
    anchor_us: Option<i64>,
    samples_since_anchor: u64,
    /// pts of the chunk in `out`.
    pts_us: i64,
}

impl AudioTrack {
    /// Time just after the last emitted sample (`i64::MIN` before the first chunk).
    fn end_us(&self) -> i64 {
        match self.anchor_us {
            Some(a) => a + (self.samples_since_anchor * 1_000_000 / AUDIO_RATE as u64) as i64,
            None => i64::MIN,
        }
    }

    fn send(&mut self, packet: &ff::Packet, path: &Path, errors: &mut u64) {
        match self.dec.send_packet(packet) {
            Ok(()) => self.state = DecState::Drain,
            Err(e) => {
                *errors += 1;
                log::debug!("{}: audio packet (pts {:?}) rejected by decoder: {e}", path.display(), packet.pts());
            }
        }
    }

    fn receive(&mut self, path: &Path, errors: &mut u64) -> Result<Recv, MediaError> {
        match self.dec.receive_frame(&mut self.frame) {
            Ok(()) => {
                self.errors_in_row = 0;
                self.resample(path, errors)
            }
            Err(ff::Error::Other { errno: ffi::EAGAIN }) => {
                self.state = DecState::Feed;
                Ok(Recv::Nothing)
            }
            Err(ff::Error::Eof) => {
                self.state = DecState::Done;
                Ok(self.flush_resampler())
            }
            Err(e) => {
                *errors += 1;
                self.errors_in_row += 1;
                log::debug!("{}: audio decode error: {e}", path.display());
                if self.errors_in_row >= MAX_RECEIVE_ERRORS_IN_ROW {
                    self.errors_in_row = 0;
                    if self.state == DecState::Flush {
                        self.state = DecState::Done;
                        return Ok(self.flush_resampler());
                    }
                    self.state = DecState::Feed;
                }
                Ok(Recv::Nothing)
            }
        }
    }

    fn resample(&mut self, path: &Path, errors: &mut u64) -> Result<Recv, MediaError> {
        let f = &self.frame;
        let n_in = f.samples();
        if n_in == 0 {
            return Ok(Recv::Nothing);
        }
        let (fmt, rate, channels) = (f.format(), f.rate(), f.channels());
        let mut layout = f.channel_layout();
        if layout.is_empty() || layout.channels() != channels as i32 {
            layout = ff::ChannelLayout::default(channels as i32);
        }
        if !matches!(&self.swr, Some((sf, sl, sr, _)) if *sf == fmt && *sl == layout && *sr == rate) {
            let swr = ff::software::resampling::Context::get(
                fmt,
                layout,
                rate,
                ff::format::Sample::F32(ff::format::sample::Type::Packed),
                ff::ChannelLayout::MONO,
                AUDIO_RATE,
            )
            .map_err(|source| MediaError::Convert {
                path: path.into(),
                what: format!("audio {fmt:?} {channels} ch {rate} Hz to 16 kHz mono"),
                source,
            })?;
            if self.swr.is_some() {
                log::debug!("{}: audio format changed to {fmt:?} {channels} ch {rate} Hz", path.display());
            }
            self.swr = Some((fmt, layout, rate, swr));
        }
        let swr = &mut self.swr.as_mut().expect("resampler set above").3;
        // SAFETY: live resampler.
        let delay_us = unsafe { ffi::swr_get_delay(swr.as_mut_ptr(), 1_000_000) };
        let end_us = self.end_us();
        // Time of the next output sample: this frame's start minus what the resampler still holds.
        let next_us = f.timestamp().map(|ts| to_us(ts, self.tb) - self.start_us - delay_us);
        match (self.anchor_us, next_us) {
            (None, t) => {
                self.anchor_us = Some(t.unwrap_or(0));
                self.samples_since_anchor = 0;
            }
            (Some(_), Some(t)) if (t - end_us).abs() > AUDIO_JITTER_US => {
                log::debug!("{}: audio timestamps jump by {} us; resyncing", path.display(), t - end_us);
                self.anchor_us = Some(t);
                self.samples_since_anchor = 0;
            }
            _ => {}
        }
        let swr = &mut self.swr.as_mut().expect("resampler set above").3;
        // SAFETY: `extended_data` holds one pointer per plane of `n_in` samples each, as decoded.
        let n = unsafe {
            let cap = ffi::swr_get_out_samples(swr.as_mut_ptr(), n_in as i32).max(0) as usize;
            self.out.resize(cap, 0.0);
            let mut dst = self.out.as_mut_ptr() as *mut u8;
            ffi::swr_convert(
                swr.as_mut_ptr(),
                &mut dst,
                cap as i32,
                (*f.as_ptr()).extended_data as *mut *const u8,
                n_in as i32,
            )
        };
        if n < 0 {
            *errors += 1;
            log::debug!("{}: swresample failed on a frame ({n})", path.display());
        }
        let n = n.max(0) as usize;
        self.out.truncate(n);
        Ok(self.take_chunk())
    }

    /// Drain what the resampler still holds (end of stream).
    fn flush_resampler(&mut self) -> Recv {
        let Some((_, _, _, swr)) = self.swr.as_mut() else {
            return Recv::Nothing;
        };
        // SAFETY: flushing a live resampler into a buffer of the size it asks for.
        let n = unsafe {
            let cap = ffi::swr_get_out_samples(swr.as_mut_ptr(), 0).max(0) as usize;
            if cap == 0 {
                return Recv::Nothing;
            }
            self.out.resize(cap, 0.0);
            let mut dst = self.out.as_mut_ptr() as *mut u8;
            ffi::swr_convert(swr.as_mut_ptr(), &mut dst, cap as i32, ptr::null_mut(), 0).max(0) as usize
        };
        self.out.truncate(n);
        self.take_chunk()
    }

    /// Stamp the samples in `out` and advance the running clock.
    fn take_chunk(&mut self) -> Recv {
        if self.out.is_empty() {
            return Recv::Nothing;
        }
        self.pts_us = self.end_us();
        self.samples_since_anchor += self.out.len() as u64;
        Recv::Event
    }
}

/// Which buffer holds the event just produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    Video,
    Audio,
    End,
}

/// Decode one input until its video or audio track yields an event, or everything has ended.
fn step(
    input: &mut Input,
    mut video: Option<&mut VideoTrack>,
    mut audio: Option<&mut AudioTrack>,
    errors: &mut u64,
) -> Result<Got, MediaError> {
    loop {
        let receiving = |s: DecState| matches!(s, DecState::Drain | DecState::Flush);
        if let Some(v) = video.as_deref_mut().filter(|v| receiving(v.state)) {
            if let Recv::Event = v.receive(&input.path, errors)? {
                return Ok(Got::Video);
            }
            continue;
        }
        if let Some(a) = audio.as_deref_mut().filter(|a| receiving(a.state)) {
            if let Recv::Event = a.receive(&input.path, errors)? {
                return Ok(Got::Audio);
            }
            continue;
        }
        // Every decoder is waiting for input or done.
        if input.eof {
            return Ok(Got::End);
        }
        // SAFETY: drop the previous packet's reference before reading into it again.
        unsafe { ffi::av_packet_unref(input.packet.as_mut_ptr()) };
        match input.packet.read(&mut input.ctx) {
            Ok(()) => {
                input.read_errors_in_row = 0;
                let idx = input.packet.stream();
                if let Some(v) = video.as_deref_mut().filter(|v| v.stream == idx && v.state == DecState::Feed) {
                    v.send(&input.packet, &input.path, errors);
                } else if let Some(a) = audio.as_deref_mut().filter(|a| a.stream == idx && a.state == DecState::Feed) {
                    a.send(&input.packet, &input.path, errors);
                }
            }
            Err(e) => {
                if e != ff::Error::Eof {
                    *errors += 1;
                    input.read_errors_in_row += 1;
                    if input.read_errors_in_row < MAX_READ_ERRORS_IN_ROW {
                        log::debug!("{}: read error: {e}", input.path.display());
                        continue;
                    }
                    log::warn!(
                        "{}: {} read errors in a row, ending input: {e}",
                        input.path.display(),
                        input.read_errors_in_row
                    );
                }
                input.eof = true;
                if let Some(v) = video.as_deref_mut().filter(|v| v.state == DecState::Feed) {
                    v.state = if v.dec.send_eof().is_ok() { DecState::Flush } else { DecState::Done };
                }
                if let Some(a) = audio.as_deref_mut().filter(|a| a.state == DecState::Feed) {
                    a.state = if a.dec.send_eof().is_ok() { DecState::Flush } else { DecState::Done };
                }
            }
        }
    }
}

/// A decoded media file (plus optionally a separate audio file), read event by event.
pub struct FileSource {
    info: MediaInfo,
    main: Input,
    /// Separate audio file, if one was given.
    aux: Option<Input>,
    video: VideoTrack,
    audio: Option<AudioTrack>,
    /// Two-file mode: a frame sits in `video.buf` waiting for the audio to catch up.
    held_video: bool,
    video_ended: bool,
    errors: u64,
}

impl FileSource {
    /// Open `video` (mp4, webm, mkv, y4m, anything FFmpeg demuxes); audio from `audio` if given (e.g. a
    /// .wav beside a .y4m), else from the video file's best audio stream if any.
    pub fn open(video: &Path, audio: Option<&Path>) -> Result<Self, MediaError> {
        init_ffmpeg();
        let mut main = Input::open(video)?;
        // FFmpeg's pick, unless that is a cover picture (mp3/m4a artwork): then the first real video stream.
        let is_picture =
            |s: &ff::format::stream::Stream| s.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC);
        let vstream = main
            .ctx
            .streams()
            .best(MediaType::Video)
            .filter(|s| !is_picture(s))
            .or_else(|| main.ctx.streams().find(|s| s.parameters().medium() == MediaType::Video && !is_picture(s)))
            .ok_or_else(|| MediaError::NoVideoStream { path: video.into() })?;
        let (vdec, video_codec) = open_decoder(video, &vstream, "video")?;
        let vdec = vdec.video().map_err(|source| MediaError::Decoder {
            path: video.into(),
            kind: "video",
            codec: video_codec.clone(),
            source,
        })?;
        let fps = rational_f64(vstream.avg_frame_rate()).or_else(|| rational_f64(vstream.rate()));
        let vtb = vstream.time_base();
        let vidx = vstream.index();
        let duration_us = main.duration_us().or_else(|| {
            let d = vstream.duration();
            (d > 0 && d != ffi::AV_NOPTS_VALUE).then(|| to_us(d, vtb))
        });

        let mut aux = match audio {
            Some(p) => Some(Input::open(p)?),
            None => None,
        };
        let (apath, ainput) = match (&mut aux, audio) {
            (Some(a), Some(p)) => (p, a),
            _ => (video, &mut main),
        };
        let astream = ainput.ctx.streams().best(MediaType::Audio);
        if astream.is_none() && audio.is_some() {
            return Err(MediaError::NoAudioStream { path: apath.into() });
        }
        let audio_track = match astream {
            Some(s) => {
                let (dec, name) = open_decoder(apath, &s, "audio")?;
                let dec = dec.audio().map_err(|source| MediaError::Decoder {
                    path: apath.into(),
                    kind: "audio",
                    codec: name.clone(),
                    source,
                })?;
                Some((
                    AudioTrack {
                        stream: s.index(),
                        dec,
                        tb: s.time_base(),
                        start_us: ainput.start_us,
                        state: DecState::Feed,
                        errors_in_row: 0,
                        frame: ff::frame::Audio::empty(),
                        swr: None,
                        out: Vec::new(),
                        anchor_us: None,
                        samples_since_anchor: 0,
                        pts_us: 0,
                    },
                    name,
                ))
            }
            None => None,
        };
        let (audio_track, audio_codec) = match audio_track {
            Some((t, n)) => (Some(t), Some(n)),
            None => (None, None),
        };
        match (&mut aux, &audio_track) {
            (Some(a), Some(t)) => {
                main.discard_all_but(&[vidx]);
                a.discard_all_but(&[t.stream]);
            }
            (None, Some(t)) => main.discard_all_but(&[vidx, t.stream]),
            _ => main.discard_all_but(&[vidx]),
        }

        let info = MediaInfo {
            width: vdec.width(),
            height: vdec.height(),
            fps,
            duration_us,
            video_codec,
            has_audio: audio_track.is_some(),
            audio_codec,
        };
        let frame_dur_us = fps.map_or(0, |f| (1e6 / f).round() as i64);
        let video = VideoTrack {
            stream: vidx,
            dec: vdec,
            tb: vtb,
            start_us: main.start_us,
            frame_dur_us,
            state: DecState::Feed,
            errors_in_row: 0,
            frame: ff::frame::Video::empty(),
            scaler: None,
            buf: I420Buf::default(),
            pts_us: 0,
            last_pts_us: None,
        };
        Ok(FileSource { info, main, aux, video, audio: audio_track, held_video: false, video_ended: false, errors: 0 })
    }

    /// What the file holds, as probed at open.
    pub fn info(&self) -> &MediaInfo {
        &self.info
    }

    /// Next decoded event in (roughly) timestamp order; None at the end. Borrowed buffers are reused between
    /// calls (no per-frame allocation once warm).
    pub fn next_event(&mut self) -> Result<Option<MediaEvent<'_>>, MediaError> {
        let got = if self.aux.is_some() {
            self.step_two_files()?
        } else {
            step(&mut self.main, Some(&mut self.video), self.audio.as_mut(), &mut self.errors)?
        };
        Ok(match got {
            Got::Video => {
                Some(MediaEvent::Video(VideoFrame { pts_us: self.video.pts_us, image: self.video.buf.view() }))
            }
            Got::Audio => {
                let a = self.audio.as_ref().expect("audio event without an audio track");
                Some(MediaEvent::Audio(AudioChunk { pts_us: a.pts_us, samples: &a.out }))
            }
            Got::End => None,
        })
    }

    /// Count of packets/frames that failed to decode and were skipped (corrupt media must not abort the
    /// scan), read errors included.
    pub fn decode_errors(&self) -> u64 {
        self.errors
    }

    /// Video from `main`, audio from `aux`: audio runs up to [`AUDIO_LEAD_US`] ahead of each video frame.
    fn step_two_files(&mut self) -> Result<Got, MediaError> {
        let aux = self.aux.as_mut().expect("two-file mode");
        let audio = self.audio.as_mut().expect("two-file mode has an audio track");
        loop {
            if self.held_video {
                if audio.state != DecState::Done && audio.end_us() <= self.video.pts_us.saturating_add(AUDIO_LEAD_US) {
                    match step(aux, None, Some(audio), &mut self.errors)? {
                        Got::Audio => return Ok(Got::Audio),
                        _ => continue,
                    }
                }
                self.held_video = false;
                return Ok(Got::Video);
            }
            if !self.video_ended {
                match step(&mut self.main, Some(&mut self.video), None, &mut self.errors)? {
                    Got::Video => self.held_video = true,
                    _ => self.video_ended = true,
                }
                continue;
            }
            return step(aux, None, Some(audio), &mut self.errors);
        }
    }
}
