"""The engine's per-frame face path, in numpy: what FaceMesh is fed at run time, tensor for tensor.

Runs in the tools venv (numpy, onnxruntime) with the ffmpeg CLI. It mirrors src/analysis/ step by step, in
float32 where the Rust code is float32, so that calibration and checks see the crops the engine makes:

- `decode_i420`: frames as FFmpeg decodes them to yuv420p (the engine's FileSource does the same).
- `sample_roi` (crop.rs): rotated square ROI sampled straight from the I420 planes: fixed-point bilinear
  taps (1/256 pixel), round(ROI / output) squared luma taps per output pixel (at most 4x4), chroma half as
  many per axis (at most 2x2), BT.601 limited range to RGB, normalised as the manifest's preprocessing says;
  pixels whose centre is outside the frame are black. Pixel positions are stepped along each row exactly as
  the Rust loop does (x += ux), so fixed-point positions match; trigonometry may differ in the last bit.
- `BlazeFaceDecoder` (face.rs): anchors, min score 0.6, weighted NMS at IoU 0.3, detections mapped through
  the letterbox ROI.
- `Tracker` (participant.rs `analyse_face`, AnalyzerConfig::default()): BlazeFace on the letterboxed frame
  every 10 frames or when the track is lost, the face nearest the track (else the largest) re-anchors an
  eye-aligned ROI 1.5x its box; in between, the ROI follows the landmarks (1.5x their extent, eye line
  horizontal) with hysteresis (kept while it moves by less than 1 % of its size and 3 degrees); a face
  presence below 0.5 drops the track.

Landmark indices and the mouth-opening measure are those of face.rs `mesh` and participant.rs.
"""
import json
import math
import subprocess

import numpy as np

F = np.float32

# face.rs `mesh`
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
INNER_LIP_PAIRS = [(13, 14), (82, 87), (312, 317)]
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409, 78, 95, 88,
        178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415]

DETECT_EVERY = 10
MIN_PRESENCE = 0.5
ROI_SCALE = 1.5


# --- frames -------------------------------------------------------------------------------------------------

class I420:
    def __init__(self, width, height, y, u, v):
        self.width, self.height = width, height
        self.y, self.u, self.v = y, u, v          # 2-D uint8 arrays (rows x stride)


def probe_size(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    w, h = map(int, out.strip().split(",")[:2])
    return w, h


def decode_i420(path):
    """Yield every video frame of `path` as an I420 (yuv420p, tightly packed), in presentation order."""
    w, h = probe_size(path)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    size = w * h + 2 * cw * ch
    p = subprocess.Popen(["ffmpeg", "-v", "error", "-threads", "1", "-i", str(path), "-an", "-f", "rawvideo",
                          "-pix_fmt", "yuv420p", "-"], stdout=subprocess.PIPE)
    try:
        while True:
            buf = p.stdout.read(size)
            if len(buf) < size:
                break
            a = np.frombuffer(buf, np.uint8)
            yield I420(w, h, a[:w * h].reshape(h, w), a[w * h:w * h + cw * ch].reshape(ch, cw),
                       a[w * h + cw * ch:].reshape(ch, cw))
    finally:
        p.stdout.close()
        if p.wait() != 0:
            raise RuntimeError(f"ffmpeg could not decode {path}")


# --- ROI and crops (crop.rs) ----------------------------------------------------------------------------

def _round(v):
    """f32::round: half away from zero."""
    return np.sign(v) * np.floor(np.abs(v) + F(0.5))


class Roi:
    """Square ROI in frame pixels rotated by `angle` (radians); every field float32."""

    def __init__(self, cx, cy, size, angle):
        self.cx, self.cy, self.size, self.angle = F(cx), F(cy), F(size), F(angle)

    @staticmethod
    def whole(w, h):
        return Roi(F(w) / F(2), F(h) / F(2), F(max(w, h)), F(0))

    def to_frame(self, out, u, v):
        """Crop pixels (arrays or scalars) of an `out` x `out` crop -> frame pixels."""
        out = F(out)
        s = self.size / out
        dx, dy = (F(u) - out / F(2)) * s, (F(v) - out / F(2)) * s
        sin, cos = np.sin(self.angle), np.cos(self.angle)
        return self.cx + dx * cos - dy * sin, self.cy + dx * sin + dy * cos

    def __repr__(self):
        return f"Roi({self.cx:.2f}, {self.cy:.2f}, {self.size:.2f}, {math.degrees(self.angle):.2f} deg)"


class Normalize:
    """x = (pixel / 255 - mean) / std as scale * pixel + bias, from a manifest `preprocessing` block."""

    def __init__(self, pre):
        std, mean = np.array(pre["std"], F), np.array(pre["mean"], F)
        self.scale = F(1) / (F(255) * std)
        self.bias = -mean / std
        self.nchw = pre["layout"].upper() == "NCHW"
        self.size = int(pre["size"])


def _taps_for(step):
    return int(min(max(_round(F(step)), 1), 4))


def _tap_offsets(taps, scale, ux, uy, vx, vy):
    offs = []
    for j in range(taps):
        oy = (F(j) + F(0.5)) / F(taps) - F(0.5)
        for i in range(taps):
            ox = (F(i) + F(0.5)) / F(taps) - F(0.5)
            offs.append((int(_round((ox * ux + oy * vx) * scale)), int(_round((ox * uy + oy * vy) * scale))))
    return offs


def _bilerp(plane, max_x, max_y, xf, yf):
    """Bilinear sample x 65536 at (xf, yf) in 1/256 pixel, clamped (int64 arrays)."""
    xf = np.clip(xf, 0, max_x)
    yf = np.clip(yf, 0, max_y)
    x0, y0 = xf >> 8, yf >> 8
    fx, fy = xf & 255, yf & 255
    a = plane[y0, x0].astype(np.int64)
    b = plane[y0, x0 + 1].astype(np.int64)
    c = plane[y0 + 1, x0].astype(np.int64)
    d = plane[y0 + 1, x0 + 1].astype(np.int64)
    top = a * (256 - fx) + b * fx
    bottom = c * (256 - fx) + d * fx
    return top * (256 - fy) + bottom * fy


def sample_roi(img, roi, norm):
    """crop.rs `sample_roi`: the model input for `roi`, float32, [1,3,n,n] (NCHW) or [1,n,n,3] (NHWC)."""
    n = norm.size
    w, h = img.width, img.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    step = roi.size / F(n)
    sin, cos = np.sin(roi.angle), np.cos(roi.angle)
    ux, uy = cos * step, sin * step
    vx, vy = -sin * step, cos * step
    ty = _taps_for(step)
    tc = min(_taps_for(step / F(2)), 2)
    y_taps = _tap_offsets(ty, F(256), ux, uy, vx, vy)
    c_taps = _tap_offsets(tc, F(128), ux, uy, vx, vy)
    y_norm = F(1) / (F(65536) * F(len(y_taps)))
    c_norm = F(1) / (F(65536) * F(len(c_taps)))
    max_x, max_y = (w - 1) * 256 - 1, (h - 1) * 256 - 1
    max_cx, max_cy = (cw - 1) * 256 - 1, (ch - 1) * 256 - 1
    half = F(n) / F(2)
    # Row starts as the Rust loop computes them, then x += ux along the row (sequential float32 sums).
    dv = np.arange(n, dtype=F) + F(0.5) - half
    x0 = roi.cx + (F(0.5) - half) * ux + dv * vx
    y0 = roi.cy + (F(0.5) - half) * uy + dv * vy
    xs = np.empty((n, n), F)
    ys = np.empty((n, n), F)
    xs[:, 0], ys[:, 0] = x0, y0
    xs[:, 1:], ys[:, 1:] = ux, uy
    xs = np.add.accumulate(xs, axis=1, dtype=F)
    ys = np.add.accumulate(ys, axis=1, dtype=F)
    inside = ~((xs < 0) | (ys < 0) | (xs >= F(w)) | (ys >= F(h)))
    lx = np.trunc((xs - F(0.5)) * F(256)).astype(np.int64)
    ly = np.trunc((ys - F(0.5)) * F(256)).astype(np.int64)
    qx = np.trunc((xs * F(0.5) - F(0.5)) * F(256)).astype(np.int64)
    qy = np.trunc((ys * F(0.5) - F(0.5)) * F(256)).astype(np.int64)
    sy = sum(_bilerp(img.y, max_x, max_y, lx + dx, ly + dy) for dx, dy in y_taps)
    su = sum(_bilerp(img.u, max_cx, max_cy, qx + dx, qy + dy) for dx, dy in c_taps)
    sv = sum(_bilerp(img.v, max_cx, max_cy, qx + dx, qy + dy) for dx, dy in c_taps)
    yy = sy.astype(F) * y_norm - F(16)
    uu = su.astype(F) * c_norm - F(128)
    vv = sv.astype(F) * c_norm - F(128)
    c = F(1.164) * yy
    rgb = np.stack([np.clip(c + F(1.596) * vv, F(0), F(255)),
                    np.clip(c - F(0.392) * uu - F(0.813) * vv, F(0), F(255)),
                    np.clip(c + F(2.017) * uu, F(0), F(255))], -1)
    rgb[~inside] = 0
    out = rgb * norm.scale + norm.bias
    if norm.nchw:
        return np.ascontiguousarray(out.transpose(2, 0, 1)[None], dtype=F)
    return np.ascontiguousarray(out[None], dtype=F)


# --- BlazeFace (face.rs) ----------------------------------------------------------------------------------

class Detection:
    def __init__(self, score, bbox, keypoints):
        self.score, self.bbox, self.keypoints = score, bbox, keypoints   # bbox [4] f32, keypoints [6,2] f32

    def roi(self, scale):
        x0, y0, x1, y1 = self.bbox
        re, le = self.keypoints[0], self.keypoints[1]
        return Roi((x0 + x1) / F(2), (y0 + y1) / F(2), max(x1 - x0, y1 - y0) * F(scale),
                   np.arctan2(le[1] - re[1], le[0] - re[0]))

    def area(self):
        return max(self.bbox[2] - self.bbox[0], F(0)) * max(self.bbox[3] - self.bbox[1], F(0))


def iou(a, b):
    ix = max(min(a[2], b[2]) - max(a[0], b[0]), F(0))
    iy = max(min(a[3], b[3]) - max(a[1], b[1]), F(0))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else F(0)


class BlazeFaceDecoder:
    def __init__(self, input_size, min_score=0.6, nms_iou=0.3):
        a = []
        for cells, per in ((16, 2), (8, 6)):
            for y in range(cells):
                for x in range(cells):
                    a += [[(F(x) + F(0.5)) / F(cells), (F(y) + F(0.5)) / F(cells)]] * per
        self.anchors = np.array(a, F)
        self.n = F(input_size)
        self.min_logit = F(np.log(F(min_score) / (F(1) - F(min_score))))
        self.nms_iou = F(nms_iou)

    def decode(self, logits, regressors, roi):
        n, size = self.n, int(self.n)
        cands = []
        for i in np.nonzero(logits >= self.min_logit)[0]:
            score = F(1) / (F(1) + np.exp(-np.clip(logits[i], F(-100), F(100))))
            r = regressors[i]
            anc = self.anchors[i]
            cx, cy = anc[0] * n + r[0], anc[1] * n + r[1]
            bw, bh = r[2], r[3]
            if not (bw > 0 and bh > 0):
                continue
            us = np.array([cx - bw / F(2), cx + bw / F(2), cx - bw / F(2), cx + bw / F(2)], F)
            vs = np.array([cy - bh / F(2), cy - bh / F(2), cy + bh / F(2), cy + bh / F(2)], F)
            fx, fy = roi.to_frame(size, us, vs)
            bbox = np.array([fx.min(), fy.min(), fx.max(), fy.max()], F)
            kx, ky = roi.to_frame(size, anc[0] * n + r[4:16:2], anc[1] * n + r[5:16:2])
            cands.append(Detection(score, bbox, np.stack([kx, ky], 1).astype(F)))
        cands.sort(key=lambda d: -d.score)           # stable, as Rust's sort_by
        used = [False] * len(cands)
        out = []
        for i, top in enumerate(cands):
            if used[i]:
                continue
            wsum, bbox, kps = F(0), np.zeros(4, F), np.zeros((6, 2), F)
            for j in range(i, len(cands)):
                c = cands[j]
                if used[j] or iou(top.bbox, c.bbox) < self.nms_iou:
                    continue
                used[j] = True
                wsum += c.score
                bbox += c.bbox * c.score
                kps += c.keypoints * c.score
            out.append(Detection(top.score, bbox / wsum, kps / wsum))
        return out


# --- landmark tracking (participant.rs) -------------------------------------------------------------------

def roi_from_landmarks(p, scale):
    """face.rs `roi_from_landmarks`: p [468,>=2] frame pixels, float32."""
    re, le = p[RIGHT_EYE_OUTER], p[LEFT_EYE_OUTER]
    angle = np.arctan2(le[1] - re[1], le[0] - re[0])
    sin, cos = np.sin(angle), np.cos(angle)
    u = p[:, 0] * cos + p[:, 1] * sin
    v = -p[:, 0] * sin + p[:, 1] * cos
    u0, u1, v0, v1 = u.min(), u.max(), v.min(), v.max()
    uc, vc = (u0 + u1) / F(2), (v0 + v1) / F(2)
    return Roi(uc * cos - vc * sin, uc * sin + vc * cos, max(u1 - u0, v1 - v0) * F(scale), angle)


def roi_close(a, b):
    tol = F(0.01) * a.size
    return (abs(a.cx - b.cx) < tol and abs(a.cy - b.cy) < tol and abs(a.size - b.size) < tol
            and abs(a.angle - b.angle) < F(math.radians(3)))


def mouth_opening(pts):
    """participant.rs: mean inner-lip gap over the three pairs / outer-eye-corner distance (any scale)."""
    d = lambda a, b: float(np.hypot(pts[a, 0] - pts[b, 0], pts[a, 1] - pts[b, 1]))  # noqa: E731
    face = max(d(RIGHT_EYE_OUTER, LEFT_EYE_OUTER), 1.0)
    return sum(d(a, b) for a, b in INNER_LIP_PAIRS) / (len(INNER_LIP_PAIRS) * face)


def load_manifest_entry(manifest_path, role):
    with open(manifest_path) as f:
        return json.load(f)["models"][role]


class Tracker:
    """participant.rs `analyse_face` with AnalyzerConfig::default(), for one clip.

    `detector` and `landmarks` are onnxruntime sessions; `det_pre`/`lm_pre` the manifest preprocessing
    blocks. `step(img)` returns None (no face) or a dict: the FaceMesh input tensor `x` [1,3,192,192], its
    `roi`, the raw model outputs `points` [468,3] (crop pixels) and `flag`, and `presence`.
    """

    def __init__(self, detector, det_pre, landmarks, lm_pre):
        self.det, self.lm = detector, landmarks
        self.det_norm, self.lm_norm = Normalize(det_pre), Normalize(lm_pre)
        self.decoder = BlazeFaceDecoder(self.det_norm.size)
        outs = [o.name for o in detector.get_outputs()]
        shapes = {o.name: o.shape for o in detector.get_outputs()}
        by_role = {}
        for name in outs:
            n, d = shapes[name][1], shapes[name][2]
            by_role[("scores" if d == 1 else "boxes") + ("16" if n == 512 else "8")] = name
        self.det_outputs = [by_role[k] for k in ("scores16", "boxes16", "scores8", "boxes8")]
        self.det_input = detector.get_inputs()[0].name
        self.lm_input = landmarks.get_inputs()[0].name
        for o in landmarks.get_outputs():
            if int(np.prod([d for d in o.shape if isinstance(d, int)])) == 1404:
                lm_name = o.name
            else:
                flag_name = o.name
        self.lm_outputs = [lm_name, flag_name]
        self.track = None
        self.since_detect = 0
        self.detections_run = 0

    def detect(self, img):
        roi = Roi.whole(img.width, img.height)
        x = sample_roi(img, roi, self.det_norm)
        s16, b16, s8, b8 = self.det.run(self.det_outputs, {self.det_input: x})
        logits = np.concatenate([s16.reshape(-1), s8.reshape(-1)]).astype(F)
        regs = np.concatenate([b16.reshape(-1, 16), b8.reshape(-1, 16)]).astype(F)
        return self.decoder.decode(logits, regs, roi)

    def run_landmarks(self, x):
        pts, flag = self.lm.run(self.lm_outputs, {self.lm_input: x})
        return pts.reshape(468, 3).astype(F), F(flag.reshape(-1)[0])

    def step(self, img):
        if self.track is None or self.since_detect >= DETECT_EVERY:
            self.since_detect = 0
            self.detections_run += 1
            dets = self.detect(img)
            chosen = None
            t = self.track
            if t is not None:
                def dist2(d):
                    cx, cy = (d.bbox[0] + d.bbox[2]) / F(2), (d.bbox[1] + d.bbox[3]) / F(2)
                    return (cx - t.cx) ** 2 + (cy - t.cy) ** 2
                near = [d for d in dets if np.sqrt(dist2(d)) < t.size * F(0.5)]
                if near:
                    chosen = min(near, key=dist2)
            if chosen is None and dets:
                best = dets[0]
                for d in dets[1:]:                      # Rust max_by keeps the last of equal maxima
                    if d.area() >= best.area():
                        best = d
                chosen = best
            self.track = chosen.roi(ROI_SCALE) if chosen is not None else None
        self.since_detect += 1
        roi = self.track
        if roi is None:
            return None
        n = self.lm_norm.size
        x = sample_roi(img, roi, self.lm_norm)
        pts, flag = self.run_landmarks(x)
        presence = F(1) / (F(1) + np.exp(-np.clip(flag, F(-50), F(50))))
        if presence < F(MIN_PRESENCE):
            self.track = None
            return None
        fx, fy = roi.to_frame(n, pts[:, 0], pts[:, 1])
        frame_pts = np.stack([fx, fy], 1).astype(F)
        fresh = roi_from_landmarks(frame_pts, ROI_SCALE)
        self.track = roi if roi_close(roi, fresh) else fresh
        return {"x": x, "roi": roi, "points": pts, "flag": float(flag), "presence": float(presence),
                "frame_points": frame_pts}
