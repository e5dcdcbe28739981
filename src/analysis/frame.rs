//! Inputs of the analysis core: decoded video frames and audio samples, each with its media timestamp.
//!
//! Video comes as planar I420 (YUV 4:2:0), which is what every WebRTC and FFmpeg decoder produces: the core
//! samples face crops straight from the planes, so a full-frame RGB conversion never happens.

/// A borrowed I420 picture: three planes with their strides.
#[derive(Clone, Copy, Debug)]
pub struct I420<'a> {
    pub width: u32,
    pub height: u32,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub stride_y: usize,
    pub stride_u: usize,
    pub stride_v: usize,
}

/// An owned I420 picture (planes packed with the given strides). Reused between frames by decoders.
#[derive(Clone, Debug, Default)]
pub struct I420Buf {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub stride_y: usize,
    pub stride_u: usize,
    pub stride_v: usize,
}

impl I420Buf {
    /// Borrow as an [`I420`] view.
    pub fn view(&self) -> I420<'_> {
        I420 {
            width: self.width,
            height: self.height,
            y: &self.y,
            u: &self.u,
            v: &self.v,
            stride_y: self.stride_y,
            stride_u: self.stride_u,
            stride_v: self.stride_v,
        }
    }

    /// Resize (keeping capacity) to a tightly packed `width` x `height` picture.
    pub fn reshape(&mut self, width: u32, height: u32) {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        self.width = width;
        self.height = height;
        self.stride_y = w;
        self.stride_u = cw;
        self.stride_v = cw;
        self.y.resize(w * h, 0);
        self.u.resize(cw * ch, 128);
        self.v.resize(cw * ch, 128);
    }
}

/// One decoded video frame with its presentation time in microseconds (media clock, not wall clock).
#[derive(Clone, Copy, Debug)]
pub struct VideoFrame<'a> {
    pub pts_us: i64,
    pub image: I420<'a>,
}

/// A run of 16 kHz mono audio samples in [-1, 1]; `pts_us` is the time of the first sample.
#[derive(Clone, Copy, Debug)]
pub struct AudioChunk<'a> {
    pub pts_us: i64,
    pub samples: &'a [f32],
}

/// The sample rate the core expects its audio in.
pub const AUDIO_RATE: u32 = 16_000;
