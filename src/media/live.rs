//! Live media: encoded samples from WebRTC tracks turned into the analysis core's inputs.
//!
//! - [`TrackClock`]: RTP timestamps -> one media clock per participant (arrival-anchored, so the audio and
//!   video of a participant line up the way they arrived);
//! - [`VideoDecoder`]: VP8 / H.264 through libavcodec, waiting for a keyframe after a start or a loss, frames
//!   lent as [`I420`] views of the decoder's own planes (no copy);
//! - [`AudioDecoder`]: Opus straight to 16 kHz mono (libopus resamples internally), with packet-loss
//!   concealment for gaps.
//!
//! No I/O and no threads here: the guard's workers own these and call them.

use ffmpeg_next as ff;

use crate::analysis::frame::{AUDIO_RATE, I420};

/// The codecs the guard decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    Vp8,
    H264,
    Opus,
}

impl Codec {
    /// From a MIME type as WebRTC names it (`video/VP8`, `video/H264`, `audio/opus`); case-insensitive.
    pub fn from_mime(mime: &str) -> Option<Codec> {
        match mime.to_ascii_lowercase().as_str() {
            "video/vp8" => Some(Codec::Vp8),
            "video/h264" => Some(Codec::H264),
            "audio/opus" => Some(Codec::Opus),
            _ => None,
        }
    }

    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Opus)
    }

    pub fn clock_rate(self) -> u32 {
        if self.is_video() { 90_000 } else { 48_000 }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8",
            Codec::H264 => "h264",
            Codec::Opus => "opus",
        }
    }
}

/// Whether an encoded video frame can start decoding: a VP8 key frame, or H.264 with an IDR slice.
pub fn is_keyframe(codec: Codec, data: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => data.first().is_some_and(|b| b & 1 == 0),
        Codec::H264 => h264_nal_types(data).any(|t| t == 5),
        Codec::Opus => true,
    }
}

/// NAL unit types of an Annex-B H.264 access unit (what the RTP depacketizer produces).
fn h264_nal_types(data: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 3 < data.len() {
            if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                let t = data[i + 3] & 0x1f;
                i += 3;
                return Some(t);
            }
            i += 1;
        }
        None
    })
}

/// Maps one track's RTP timestamps onto the participant's media clock (microseconds since the participant
/// was first seen). A sample's time is its RTP time (unwrapped) plus the smallest transit seen lately, so
/// network jitter does not shake the clock, and a sender clock that drifts is followed within a minute.
/// Times never go backwards.
#[derive(Debug)]
pub struct TrackClock {
    rate: i64,
    last_rtp: Option<u32>,
    ext: i64,
    offset: Option<i64>,
    period_min: i64,
    period_start: i64,
    /// Last (pts, media time).
    last_pts: Option<(i64, i64)>,
}

/// How long a transit minimum stays valid before it is re-measured.
const CLOCK_PERIOD_US: i64 = 15_000_000;

/// The most the transit may rise from one period to the next: 5 ms in 15 s follows a sender clock 330 ppm
/// slow (real ones are within 100).
const CLOCK_MAX_RISE_US: i64 = 5_000;

impl TrackClock {
    pub fn new(clock_rate: u32) -> Self {
        TrackClock {
            rate: clock_rate as i64,
            last_rtp: None,
            ext: 0,
            offset: None,
            period_min: i64::MAX,
            period_start: 0,
            last_pts: None,
        }
    }

    /// The media time of a sample with RTP timestamp `rtp` that arrived at `arrival_us` (participant clock).
    pub fn pts(&mut self, rtp: u32, arrival_us: i64) -> i64 {
        if let Some(last) = self.last_rtp {
            self.ext += rtp.wrapping_sub(last) as i32 as i64;
        }
        self.last_rtp = Some(rtp);
        let media_us = self.ext * 1_000_000 / self.rate;
        let transit = arrival_us - media_us;
        let offset = match self.offset {
            None => {
                self.period_start = arrival_us;
                transit
            }
            Some(o) => {
                self.period_min = self.period_min.min(transit);
                if arrival_us - self.period_start >= CLOCK_PERIOD_US {
                    // A new period: follow the minimum of the one that ended, down at once, up by at most
                    // CLOCK_MAX_RISE_US (a sender clock running slow; a period when this process got little CPU
                    // and read every packet late must not move the clock by the backlog).
                    let m = self.period_min.min(o + CLOCK_MAX_RISE_US);
                    self.period_min = i64::MAX;
                    self.period_start = arrival_us;
                    m
                } else {
                    o.min(transit)
                }
            }
        };
        if let Some(o) = self.offset.filter(|o| (o - offset).abs() > 10_000) {
            log::debug!(
                "clock {} Hz: transit {} -> {} ms at {} ms",
                self.rate,
                o / 1000,
                offset / 1000,
                arrival_us / 1000
            );
        }
        self.offset = Some(offset);
        let mut pts = media_us + offset;
        if let Some((last, last_media)) = self.last_pts {
            // When a smaller transit is found (a burst at the start), the clock steps back: keep at least half
            // the media interval between samples instead of squashing them together.
            pts = pts.max(last + ((media_us - last_media) / 2).max(1));
        }
        self.last_pts = Some((pts, media_us));
        pts
    }
}

/// What happened to one encoded video frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoOutcome {
    /// A picture is ready: see [`VideoDecoder::picture`].
    Picture,
    /// Nothing to show (the decoder buffers, or a frame before the first keyframe was skipped).
    Nothing,
    /// Waiting for a keyframe (after a start, a loss or an error): ask the sender for one.
    NeedKeyframe,
}

/// VP8 / H.264 decoder over libavcodec (one thread: the guard decodes many participants side by side).
pub struct VideoDecoder {
    codec: Codec,
    dec: ff::decoder::Video,
    frame: ff::frame::Video,
    synced: bool,
    pub frames: u64,
    pub errors: u64,
    pub skipped: u64,
}

// SAFETY: the AVCodecContext and AVFrame are owned by this value and only used through `&mut self`;
// libavcodec contexts have no thread affinity (ffmpeg-next just does not say so).
unsafe impl Send for VideoDecoder {}

impl VideoDecoder {
    pub fn new(codec: Codec) -> anyhow::Result<Self> {
        super::file::init_ffmpeg();
        let id = match codec {
            Codec::Vp8 => ff::codec::Id::VP8,
            Codec::H264 => ff::codec::Id::H264,
            Codec::Opus => anyhow::bail!("opus is not a video codec"),
        };
        let c = ff::codec::decoder::find(id).ok_or_else(|| anyhow::anyhow!("FFmpeg has no {codec:?} decoder"))?;
        let mut ctx = ff::codec::context::Context::new_with_codec(c);
        ctx.set_threading(ff::threading::Config { kind: ff::threading::Type::None, count: 1, ..Default::default() });
        let dec = ctx.decoder().video()?;
        Ok(VideoDecoder {
            codec,
            dec,
            frame: ff::frame::Video::empty(),
            synced: false,
            frames: 0,
            errors: 0,
            skipped: 0,
        })
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Forget the reference chain: the next frame to decode must be a keyframe (after lost packets).
    pub fn resync(&mut self) {
        self.synced = false;
    }

    /// Decode one encoded frame.
    pub fn decode(&mut self, data: &[u8]) -> VideoOutcome {
        if !self.synced {
            if !is_keyframe(self.codec, data) {
                self.skipped += 1;
                return VideoOutcome::NeedKeyframe;
            }
            self.dec.flush();
            self.synced = true;
        }
        if let Err(e) = self.dec.send_packet(&ff::Packet::borrow(data)) {
            self.errors += 1;
            log::debug!("{} decode error: {e}", self.codec.name());
            self.synced = false;
            return VideoOutcome::NeedKeyframe;
        }
        match self.dec.receive_frame(&mut self.frame) {
            Ok(()) if self.frame.width() > 0 && self.picture().is_some() => {
                self.frames += 1;
                VideoOutcome::Picture
            }
            Ok(()) => {
                self.errors += 1;
                VideoOutcome::Nothing
            }
            Err(ff::Error::Other { errno: ff::ffi::EAGAIN }) => VideoOutcome::Nothing,
            Err(e) => {
                self.errors += 1;
                log::debug!("{} decode error: {e}", self.codec.name());
                self.synced = false;
                VideoOutcome::NeedKeyframe
            }
        }
    }

    /// The last decoded picture, as a view of the decoder's planes (valid until the next `decode`).
    /// `None` for anything but 8-bit 4:2:0 (which is all WebRTC sends).
    pub fn picture(&self) -> Option<I420<'_>> {
        let f = &self.frame;
        if !matches!(f.format(), ff::format::Pixel::YUV420P | ff::format::Pixel::YUVJ420P) {
            return None;
        }
        let (w, h) = (f.width(), f.height());
        let ch = h.div_ceil(2) as usize;
        let (sy, su, sv) = (f.stride(0), f.stride(1), f.stride(2));
        if sy < w as usize || su < w.div_ceil(2) as usize || sv < w.div_ceil(2) as usize {
            return None;
        }
        Some(I420 {
            width: w,
            height: h,
            y: &f.data(0)[..sy * h as usize],
            u: &f.data(1)[..su * ch],
            v: &f.data(2)[..sv * ch],
            stride_y: sy,
            stride_u: su,
            stride_v: sv,
        })
    }
}

/// Opus -> 16 kHz mono f32.
pub struct AudioDecoder {
    dec: opus::Decoder,
    pcm: Vec<f32>,
    next_seq: Option<u16>,
    /// Samples in the last packet (the size of a concealed one).
    last_frame: usize,
    pub packets: u64,
    pub errors: u64,
    pub concealed: u64,
}

/// The longest Opus frame (120 ms) at 16 kHz.
const MAX_OPUS_SAMPLES: usize = AUDIO_RATE as usize * 120 / 1000;

impl AudioDecoder {
    pub fn new() -> anyhow::Result<Self> {
        Ok(AudioDecoder {
            dec: opus::Decoder::new(AUDIO_RATE, opus::Channels::Mono)?,
            pcm: vec![0.0; MAX_OPUS_SAMPLES],
            next_seq: None,
            last_frame: AUDIO_RATE as usize / 50,
            packets: 0,
            errors: 0,
            concealed: 0,
        })
    }

    /// Decode one packet (RTP sequence number `seq`); returns the samples and how many of them, at the
    /// front, conceal up to two lost packets before this one (longer gaps stay gaps: the core sees the time
    /// jump). The slice is valid until the next call.
    pub fn decode(&mut self, seq: u16, data: &[u8]) -> (usize, &[f32]) {
        let mut n = 0;
        if let Some(expected) = self.next_seq {
            let lost = seq.wrapping_sub(expected);
            if (1..=2).contains(&lost) {
                // libopus conceals as many samples as the buffer it is given: one packet's worth each.
                let frame = self.last_frame;
                for _ in 0..lost {
                    if self.pcm.len() < n + frame {
                        self.pcm.resize(n + frame, 0.0);
                    }
                    match self.dec.decode_float(&[], &mut self.pcm[n..n + frame], false) {
                        Ok(k) => {
                            n += k;
                            self.concealed += 1;
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        self.next_seq = Some(seq.wrapping_add(1));
        let concealed = n;
        if self.pcm.len() - n < MAX_OPUS_SAMPLES {
            self.pcm.resize(n + MAX_OPUS_SAMPLES, 0.0);
        }
        match self.dec.decode_float(data, &mut self.pcm[n..], false) {
            Ok(k) => {
                self.packets += 1;
                if k > 0 {
                    self.last_frame = k;
                }
                n += k;
            }
            Err(e) => {
                self.errors += 1;
                log::debug!("opus decode error: {e}");
            }
        }
        (concealed, &self.pcm[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_follows_rtp_and_ignores_jitter() {
        let mut c = TrackClock::new(90_000);
        // 25 fps: 3600 ticks a frame; arrivals jitter by up to 15 ms, never earlier than the first.
        let jitter = [0i64, 15_000, 3_000, 9_000, 0, 12_000];
        let mut last = i64::MIN;
        for (i, j) in jitter.iter().enumerate() {
            let rtp = 1_000_000u32.wrapping_add(3600 * i as u32);
            let pts = c.pts(rtp, 500_000 + 40_000 * i as i64 + j);
            assert_eq!(pts, 500_000 + 40_000 * i as i64, "frame {i}");
            assert!(pts > last);
            last = pts;
        }
        // Wrap-around of the 32-bit timestamp.
        let mut c = TrackClock::new(48_000);
        assert_eq!(c.pts(u32::MAX - 959, 0), 0);
        assert_eq!(c.pts(0, 20_000), 20_000);
    }

    #[test]
    fn a_starved_period_does_not_move_the_clock() {
        let mut c = TrackClock::new(48_000);
        // 20 ms packets; the first period has a 10 ms transit.
        for i in 0..800i64 {
            assert_eq!(c.pts((i * 960) as u32, i * 20_000 + 10_000), i * 20_000 + 10_000);
        }
        // The next 45 s every packet is read 300 ms late (this process starved): the clock rises by at most
        // 5 ms per 15 s period, never by the backlog.
        let mut last = 0;
        for i in 800..3050i64 {
            let transit = c.pts((i * 960) as u32, i * 20_000 + 310_000) - i * 20_000;
            assert!((10_000..=25_000).contains(&transit), "packet {i}: {transit}");
            assert!(transit >= last);
            last = transit;
        }
        assert!(last > 10_000, "a slow sender clock is still followed");
    }

    #[test]
    fn keyframes() {
        assert!(is_keyframe(Codec::Vp8, &[0x10, 0x02, 0x00]));
        assert!(!is_keyframe(Codec::Vp8, &[0x11, 0x02, 0x00]));
        // SPS, PPS, IDR slice
        assert!(is_keyframe(Codec::H264, &[0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3]));
        assert!(!is_keyframe(Codec::H264, &[0, 0, 0, 1, 0x41, 9, 9]));
        assert_eq!(Codec::from_mime("video/H264"), Some(Codec::H264));
        assert_eq!(Codec::from_mime("video/VP9"), None);
    }

    #[test]
    fn opus_round_trip_at_16k_with_concealment() {
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let mut dec = AudioDecoder::new().unwrap();
        let tone: Vec<f32> = (0..960).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let mut pkt = vec![0u8; 1500];
        let n = enc.encode_float(&tone, &mut pkt).unwrap();
        assert_eq!(dec.decode(7, &pkt[..n]).1.len(), 320, "20 ms at 16 kHz");
        // Packet 8 lost: concealed in front of packet 9.
        let (lead, samples) = dec.decode(9, &pkt[..n]);
        assert_eq!((lead, samples.len()), (320, 640));
        assert_eq!(dec.concealed, 1);
        // A long gap is not filled.
        assert_eq!(dec.decode(40, &pkt[..n]).1.len(), 320);
        assert_eq!(dec.errors, 0);
    }
}
