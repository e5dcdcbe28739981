//! Rotated, scaled crops sampled straight from I420 planes into a model's input tensor.
//!
//! One pass per crop: for each output pixel, bilinear samples of Y, U and V (several taps when shrinking, so
//! a 720p frame squeezed to 128x128 does not alias), converted to RGB (BT.601, limited range) and normalised
//! as the model's manifest says. The full frame is never converted to RGB.

use super::frame::I420;
use crate::inference::Preprocessing;

/// A square region of interest in frame pixels, rotated by `angle` (radians, clockwise in image coordinates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roi {
    pub cx: f32,
    pub cy: f32,
    pub size: f32,
    pub angle: f32,
}

impl Roi {
    /// The letterboxed whole frame (square, centred, no rotation).
    pub fn whole(width: u32, height: u32) -> Self {
        Self { cx: width as f32 / 2.0, cy: height as f32 / 2.0, size: width.max(height) as f32, angle: 0.0 }
    }

    /// Map a point given in crop pixels (crop of `out` x `out`) to frame pixels.
    #[inline]
    pub fn to_frame(&self, out: u32, u: f32, v: f32) -> (f32, f32) {
        let s = self.size / out as f32;
        let (dx, dy) = ((u - out as f32 / 2.0) * s, (v - out as f32 / 2.0) * s);
        let (sin, cos) = self.angle.sin_cos();
        (self.cx + dx * cos - dy * sin, self.cy + dx * sin + dy * cos)
    }
}

/// Tensor normalisation: `x = (pixel / 255 - mean) / std` per channel, as `scale * pixel + bias`.
#[derive(Clone, Copy, Debug)]
pub struct Normalize {
    scale: [f32; 3],
    bias: [f32; 3],
    nchw: bool,
    size: u32,
}

impl Normalize {
    pub fn from_preprocessing(p: &Preprocessing) -> Self {
        let mut scale = [0.0; 3];
        let mut bias = [0.0; 3];
        for c in 0..3 {
            scale[c] = 1.0 / (255.0 * p.std[c]);
            bias[c] = -p.mean[c] / p.std[c];
        }
        Self { scale, bias, nchw: p.nchw(), size: p.size }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether the tensor is channel-planar (NCHW) rather than interleaved (NHWC).
    pub fn nchw(&self) -> bool {
        self.nchw
    }
}

/// Bilinear sample of a plane at `(xf, yf)` in 1/256 pixel, clamped to the plane: returns the value x 65536.
#[inline(always)]
fn bilerp(plane: &[u8], stride: usize, max_x: i32, max_y: i32, xf: i32, yf: i32) -> u32 {
    let xf = xf.clamp(0, max_x);
    let yf = yf.clamp(0, max_y);
    let (x0, y0) = ((xf >> 8) as usize, (yf >> 8) as usize);
    let (fx, fy) = ((xf & 255) as u32, (yf & 255) as u32);
    let i = y0 * stride + x0;
    // Two bounds checks instead of four: the clamps above keep both pairs inside the plane.
    let (r0, r1) = (&plane[i..i + 2], &plane[i + stride..i + stride + 2]);
    let (a, b, c, d) = (r0[0] as u32, r0[1] as u32, r1[0] as u32, r1[1] as u32);
    let top = a * (256 - fx) + b * fx;
    let bottom = c * (256 - fx) + d * fx;
    top * (256 - fy) + bottom * fy
}

/// Taps per axis for a shrink of `step` source pixels per output pixel: enough to average over the footprint
/// (no aliasing), rounded to the nearest whole number, at most 4.
fn taps_for(step: f32) -> usize {
    (step.round() as usize).clamp(1, 4)
}

/// Sample `roi` of `img` into `out` (resized to 3 * size * size), normalised per `norm`.
/// Pixels whose centre falls outside the frame are black; taps near the border repeat the edge.
///
/// Luma is averaged over `taps x taps` bilinear samples spread over each output pixel's footprint; chroma,
/// already at half resolution, over half as many per axis. Fixed-point arithmetic, no allocation.
pub fn sample_roi(img: &I420<'_>, roi: &Roi, norm: &Normalize, out: &mut Vec<f32>) {
    let n = norm.size as usize;
    out.resize(3 * n * n, 0.0);
    let (w, h) = (img.width as usize, img.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    if cw < 2 || ch < 2 {
        // Too small to hold a face: a black picture.
        for (i, v) in out.iter_mut().enumerate() {
            *v = norm.bias[if norm.nchw { i / (n * n) } else { i % 3 }];
        }
        return;
    }
    let step = roi.size / n as f32;
    let (sin, cos) = roi.angle.sin_cos();
    // Frame-space vectors of one output pixel step along u and v.
    let (ux, uy) = (cos * step, sin * step);
    let (vx, vy) = (-sin * step, cos * step);
    // Tap offsets (in 1/256 luma pixel) within the footprint, for luma and for chroma (in chroma pixels).
    let mut y_taps = [(0i32, 0i32); 16];
    let mut c_taps = [(0i32, 0i32); 4];
    let ty = taps_for(step);
    let tc = taps_for(step / 2.0).min(2);
    for (taps, scale, dst) in [(ty, 256.0f32, &mut y_taps[..]), (tc, 128.0, &mut c_taps[..])] {
        for j in 0..taps {
            let oy = (j as f32 + 0.5) / taps as f32 - 0.5;
            for i in 0..taps {
                let ox = (i as f32 + 0.5) / taps as f32 - 0.5;
                dst[j * taps + i] =
                    (((ox * ux + oy * vx) * scale).round() as i32, ((ox * uy + oy * vy) * scale).round() as i32);
            }
        }
    }
    let (y_taps, c_taps) = (&y_taps[..ty * ty], &c_taps[..tc * tc]);
    let y_norm = 1.0 / (65536.0 * y_taps.len() as f32);
    let c_norm = 1.0 / (65536.0 * c_taps.len() as f32);
    let (max_x, max_y) = (((w - 1) * 256 - 1) as i32, ((h - 1) * 256 - 1) as i32);
    let (max_cx, max_cy) = (((cw - 1) * 256 - 1) as i32, ((ch - 1) * 256 - 1) as i32);
    let half = n as f32 / 2.0;
    let plane = n * n;
    let (wf, hf) = (w as f32, h as f32);
    for j in 0..n {
        let dv = j as f32 + 0.5 - half;
        // Frame position of the centre of output pixel (0, j); pixel centres sit at integer + 0.5.
        let mut x = roi.cx + (0.5 - half) * ux + dv * vx;
        let mut y = roi.cy + (0.5 - half) * uy + dv * vy;
        for i in 0..n {
            let rgb = if x < 0.0 || y < 0.0 || x >= wf || y >= hf {
                [0.0; 3]
            } else {
                let (lx, ly) = (((x - 0.5) * 256.0) as i32, ((y - 0.5) * 256.0) as i32);
                let mut sy = 0u32;
                for &(dx, dy) in y_taps {
                    sy += bilerp(img.y, img.stride_y, max_x, max_y, lx + dx, ly + dy);
                }
                // Chroma sample k covers luma 2k..2k+2: its centre is at luma 2k + 1.
                let (qx, qy) = (((x * 0.5 - 0.5) * 256.0) as i32, ((y * 0.5 - 0.5) * 256.0) as i32);
                let (mut su, mut sv) = (0u32, 0u32);
                for &(dx, dy) in c_taps {
                    su += bilerp(img.u, img.stride_u, max_cx, max_cy, qx + dx, qy + dy);
                    sv += bilerp(img.v, img.stride_v, max_cx, max_cy, qx + dx, qy + dy);
                }
                let yy = sy as f32 * y_norm - 16.0;
                let uu = su as f32 * c_norm - 128.0;
                let vv = sv as f32 * c_norm - 128.0;
                let c = 1.164 * yy;
                [
                    (c + 1.596 * vv).clamp(0.0, 255.0),
                    (c - 0.392 * uu - 0.813 * vv).clamp(0.0, 255.0),
                    (c + 2.017 * uu).clamp(0.0, 255.0),
                ]
            };
            let p = j * n + i;
            if norm.nchw {
                for c in 0..3 {
                    out[c * plane + p] = rgb[c] * norm.scale[c] + norm.bias[c];
                }
            } else {
                for c in 0..3 {
                    out[p * 3 + c] = rgb[c] * norm.scale[c] + norm.bias[c];
                }
            }
            x += ux;
            y += uy;
        }
    }
}
