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
}

#[inline]
fn bilinear(plane: &[u8], stride: usize, w: usize, h: usize, x: f32, y: f32) -> f32 {
    // Clamp to the edge: samples just outside the picture repeat the border.
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let r0 = y0 * stride;
    let r1 = y1 * stride;
    let a = plane[r0 + x0] as f32 + (plane[r0 + x1] as f32 - plane[r0 + x0] as f32) * fx;
    let b = plane[r1 + x0] as f32 + (plane[r1 + x1] as f32 - plane[r1 + x0] as f32) * fx;
    a + (b - a) * fy
}

/// Sample `roi` of `img` into `out` (resized to 3 * size * size), normalised per `norm`.
/// Pixels outside the frame are black.
pub fn sample_roi(img: &I420<'_>, roi: &Roi, norm: &Normalize, out: &mut Vec<f32>) {
    let n = norm.size as usize;
    out.resize(3 * n * n, 0.0);
    let (w, h) = (img.width as usize, img.height as usize);
    if w < 2 || h < 2 {
        out.iter_mut().enumerate().for_each(|(i, v)| *v = norm.bias[if norm.nchw { i / (n * n) } else { i % 3 }]);
        return;
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let step = roi.size / n as f32;
    let taps = (step.ceil() as usize).clamp(1, 4);
    let inv_taps2 = 1.0 / (taps * taps) as f32;
    let (sin, cos) = roi.angle.sin_cos();
    // Frame-space vectors for one output pixel step along u and v.
    let (ux, uy) = (cos * step, sin * step);
    let (vx, vy) = (-sin * step, cos * step);
    let half = n as f32 / 2.0;
    let plane = n * n;
    let (wf, hf) = (w as f32, h as f32);
    for j in 0..n {
        let dv = j as f32 + 0.5 - half;
        for i in 0..n {
            let du = i as f32 + 0.5 - half;
            let x = roi.cx + du * ux + dv * vx;
            let y = roi.cy + du * uy + dv * vy;
            let (mut sy, mut su, mut sv) = (0.0f32, 0.0f32, 0.0f32);
            let mut inside = 0u32;
            for ty in 0..taps {
                let oy = (ty as f32 + 0.5) / taps as f32 - 0.5;
                for tx in 0..taps {
                    let ox = (tx as f32 + 0.5) / taps as f32 - 0.5;
                    // Pixel centres are at integer + 0.5 in frame space.
                    let px = x + ox * ux + oy * vx - 0.5;
                    let py = y + ox * uy + oy * vy - 0.5;
                    if px < -0.5 || py < -0.5 || px > wf - 0.5 || py > hf - 0.5 {
                        continue;
                    }
                    inside += 1;
                    sy += bilinear(img.y, img.stride_y, w, h, px, py);
                    let (qx, qy) = ((px + 0.5) * 0.5 - 0.5, (py + 0.5) * 0.5 - 0.5);
                    su += bilinear(img.u, img.stride_u, cw, ch, qx, qy);
                    sv += bilinear(img.v, img.stride_v, cw, ch, qx, qy);
                }
            }
            let rgb = if inside == 0 {
                [0.0; 3]
            } else {
                // Outside taps count as black (Y=16, U=V=128).
                let outside = (taps * taps) as f32 - inside as f32;
                let yy = (sy + 16.0 * outside) * inv_taps2 - 16.0;
                let uu = (su + 128.0 * outside) * inv_taps2 - 128.0;
                let vv = (sv + 128.0 * outside) * inv_taps2 - 128.0;
                let c = 1.164 * yy;
                [
                    (c + 1.596 * vv).clamp(0.0, 255.0),
                    (c - 0.392 * uu - 0.813 * vv).clamp(0.0, 255.0),
                    (c + 2.017 * uu).clamp(0.0, 255.0),
                ]
            };
            let p = j * n + i;
            for c in 0..3 {
                let val = rgb[c] * norm.scale[c] + norm.bias[c];
                if norm.nchw {
                    out[c * plane + p] = val;
                } else {
                    out[p * 3 + c] = val;
                }
            }
        }
    }
}
