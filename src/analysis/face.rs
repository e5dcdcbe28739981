//! Face detection (BlazeFace short-range: anchors, box decoding, weighted NMS) and the face ROI that the
//! landmark model and the backbone crop.

use super::crop::Roi;

/// Number of anchors of the 128x128 short-range model: 16x16 cells x 2 + 8x8 cells x 6.
pub const ANCHORS: usize = 896;

/// A detected face in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub score: f32,
    /// `[x0, y0, x1, y1]`.
    pub bbox: [f32; 4],
    /// Right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's
    /// right is on the image's left).
    pub keypoints: [[f32; 2]; 6],
}

impl Detection {
    /// The square, eye-aligned ROI around this face, `scale` times the box.
    pub fn roi(&self, scale: f32) -> Roi {
        let [x0, y0, x1, y1] = self.bbox;
        let [re, le] = [self.keypoints[0], self.keypoints[1]];
        Roi {
            cx: (x0 + x1) / 2.0,
            cy: (y0 + y1) / 2.0,
            size: (x1 - x0).max(y1 - y0) * scale,
            angle: (le[1] - re[1]).atan2(le[0] - re[0]),
        }
    }

    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Decodes BlazeFace output into detections.
pub struct BlazeFaceDecoder {
    anchors: Vec<[f32; 2]>,
    input_size: f32,
    pub min_score: f32,
    pub nms_iou: f32,
    candidates: Vec<Detection>,
    used: Vec<bool>,
}

impl BlazeFaceDecoder {
    pub fn new(input_size: u32) -> Self {
        let mut anchors = Vec::with_capacity(ANCHORS);
        for (cells, per_cell) in [(16usize, 2usize), (8, 6)] {
            for y in 0..cells {
                for x in 0..cells {
                    for _ in 0..per_cell {
                        anchors.push([(x as f32 + 0.5) / cells as f32, (y as f32 + 0.5) / cells as f32]);
                    }
                }
            }
        }
        Self {
            anchors,
            input_size: input_size as f32,
            min_score: 0.6,
            nms_iou: 0.3,
            candidates: Vec::new(),
            used: Vec::new(),
        }
    }

    /// Decode raw logits (`ANCHORS`) and regressors (`ANCHORS x 16`) of the model run on `roi` (a crop of
    /// `input_size` pixels) into frame-space detections, best first, after weighted non-maximum suppression.
    pub fn decode(&mut self, logits: &[f32], regressors: &[f32], roi: &Roi, out: &mut Vec<Detection>) {
        out.clear();
        self.candidates.clear();
        let n = self.input_size;
        let min_logit = (self.min_score / (1.0 - self.min_score)).ln();
        for (i, (&logit, anchor)) in logits.iter().zip(&self.anchors).enumerate() {
            if logit < min_logit {
                continue;
            }
            let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
            let r = &regressors[i * 16..i * 16 + 16];
            // Regressors are in input pixels, relative to the anchor centre.
            let cx = anchor[0] * n + r[0];
            let cy = anchor[1] * n + r[1];
            let (w, h) = (r[2], r[3]);
            if !(w > 0.0 && h > 0.0) {
                continue;
            }
            let corners = [
                (cx - w / 2.0, cy - h / 2.0),
                (cx + w / 2.0, cy - h / 2.0),
                (cx - w / 2.0, cy + h / 2.0),
                (cx + w / 2.0, cy + h / 2.0),
            ];
            let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
            for (u, v) in corners {
                let (x, y) = roi.to_frame(self.input_size as u32, u, v);
                bbox = [bbox[0].min(x), bbox[1].min(y), bbox[2].max(x), bbox[3].max(y)];
            }
            let mut keypoints = [[0.0; 2]; 6];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                let (x, y) =
                    roi.to_frame(self.input_size as u32, anchor[0] * n + r[4 + 2 * k], anchor[1] * n + r[5 + 2 * k]);
                *kp = [x, y];
            }
            self.candidates.push(Detection { score, bbox, keypoints });
        }
        self.candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        // Weighted NMS (as MediaPipe): each cluster of overlapping candidates becomes their score-weighted mean.
        self.used.clear();
        self.used.resize(self.candidates.len(), false);
        for i in 0..self.candidates.len() {
            if self.used[i] {
                continue;
            }
            let top = self.candidates[i];
            let (mut wsum, mut bbox, mut kps) = (0.0f32, [0.0f32; 4], [[0.0f32; 2]; 6]);
            for (c, used) in self.candidates[i..].iter().zip(&mut self.used[i..]) {
                if *used || iou(&top.bbox, &c.bbox) < self.nms_iou {
                    continue;
                }
                *used = true;
                wsum += c.score;
                bbox.iter_mut().zip(&c.bbox).for_each(|(b, v)| *b += v * c.score);
                for (k, p) in kps.iter_mut().zip(&c.keypoints) {
                    k[0] += p[0] * c.score;
                    k[1] += p[1] * c.score;
                }
            }
            bbox.iter_mut().for_each(|v| *v /= wsum);
            kps.iter_mut().for_each(|p| {
                p[0] /= wsum;
                p[1] /= wsum;
            });
            out.push(Detection { score: top.score, bbox, keypoints: kps });
        }
    }
}

/// FaceMesh landmark indices used by the engine.
pub mod mesh {
    /// Outer corner of the subject's right eye (image left) and left eye.
    pub const RIGHT_EYE_OUTER: usize = 33;
    pub const LEFT_EYE_OUTER: usize = 263;
    /// Inner lip midpoints, upper and lower: their distance is the mouth opening.
    pub const UPPER_LIP_INNER: usize = 13;
    pub const LOWER_LIP_INNER: usize = 14;
    /// Pairs of inner-lip points (upper, lower) across the mouth: centre and both sides. The mean of their
    /// distances is the mouth opening (steadier than one pair).
    pub const INNER_LIP_PAIRS: [(usize, usize); 3] = [(13, 14), (82, 87), (312, 317)];
    /// Mouth corners.
    pub const MOUTH_RIGHT: usize = 61;
    pub const MOUTH_LEFT: usize = 291;
    /// Outer and inner lip contours.
    pub const LIPS: [usize; 40] = [
        61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409, 78, 95, 88, 178, 87,
        14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    ];
}

/// The ROI that follows a face from its landmarks (tracking between detections): eye-aligned, around the
/// landmarks' extent in the rotated frame, `scale` times larger.
pub fn roi_from_landmarks(points: &[[f32; 3]], scale: f32) -> Roi {
    let re = points[mesh::RIGHT_EYE_OUTER];
    let le = points[mesh::LEFT_EYE_OUTER];
    let angle = (le[1] - re[1]).atan2(le[0] - re[0]);
    let (sin, cos) = angle.sin_cos();
    let (mut u0, mut v0, mut u1, mut v1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in points {
        // Coordinates in the face's rotated frame.
        let u = p[0] * cos + p[1] * sin;
        let v = -p[0] * sin + p[1] * cos;
        u0 = u0.min(u);
        u1 = u1.max(u);
        v0 = v0.min(v);
        v1 = v1.max(v);
    }
    let (uc, vc) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
    Roi { cx: uc * cos - vc * sin, cy: uc * sin + vc * cos, size: (u1 - u0).max(v1 - v0) * scale, angle }
}
