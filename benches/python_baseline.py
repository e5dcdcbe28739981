#!/usr/bin/env python3
"""Python + onnxruntime baseline of deepfake-guard's per-frame path, for comparison with `benches/per_frame.rs`.

The way such a pipeline is typically written in Python, with what the project's venv holds (numpy, Pillow,
onnxruntime) and the ffmpeg CLI:

  decode    ffmpeg (one thread) -> rawvideo rgb24 over a pipe -> numpy; timed as the ffmpeg process's CPU time
            per frame (decode + YUV->RGB) plus the pipe read, over the whole clip, before the analysis runs
  to_pil    numpy frame -> PIL image (every frame; the crops below are PIL operations)
  detect    every 10 frames (or when the track is lost): letterbox to 128 (ImageOps.pad, bilinear), BlazeFace,
            anchor decoding + weighted NMS in numpy
  crop_192  eye-aligned face crop by PIL affine transform (bilinear), to NCHW float [0, 1]
  landmarks FaceMesh; the next frame's crop follows the landmarks (as the Rust analyser does)
  crop_224  backbone crop (landmark extent x 1.2), ImageNet normalisation, NCHW
  backbone  EfficientNet-Lite0 from the manifest (int8 shipped); the fp32 model is timed on the same crops
            as an extra stage (`backbone_fp32`), outside the per-frame total

Same model files (from models/manifest.json), sessions with intra_op_num_threads=1, inter_op_num_threads=1,
sequential execution, no spinning. Per-frame time = mean of each 10-frame block (one detection per block),
median over the blocks, as the Rust bench reports it.

Usage: .venv/bin/python benches/python_baseline.py [--clip target/bench-data/talk_1280x720.mp4] [--passes 2]
       [--json OUT.json]
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

try:
    import numpy as np
    import onnxruntime as ort
    from PIL import Image, ImageOps
except ImportError as e:
    sys.exit(f"python_baseline: {e}. Run it with the project's venv (bash scripts/setup.sh, then "
             f".venv/bin/python benches/python_baseline.py)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECT_EVERY = 10
BLOCK = 10
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # the models' unused-initializer warnings are noise here
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class Model:
    def __init__(self, manifest_path, role):
        with open(manifest_path) as f:
            m = json.load(f)["models"][role]
        self.file = os.path.join(os.path.dirname(manifest_path), m["file"])
        self.sess = session(self.file)
        self.input = m["inputs"][0]["name"]
        self.outputs = {o.get("role"): o["name"] for o in m["outputs"]}
        p = m["preprocessing"]
        self.size = p["size"]
        self.nchw = p["layout"].upper() == "NCHW"
        self.mean = np.array(p["mean"], np.float32)
        self.std = np.array(p["std"], np.float32)

    def tensor(self, rgb_u8):
        x = (rgb_u8.astype(np.float32) / 255.0 - self.mean) / self.std
        if self.nchw:
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None])

    def run(self, x, roles):
        return self.sess.run([self.outputs[r] for r in roles], {self.input: x})


def anchors():
    a = []
    for cells, per in ((16, 2), (8, 6)):
        for y in range(cells):
            for x in range(cells):
                a.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per)
    return np.array(a, np.float32)


ANCHORS = anchors()


def blazeface_decode(scores, boxes, n, min_score=0.6, nms_iou=0.3):
    """Detections in letterbox-input pixels: list of (score, [x0,y0,x1,y1], keypoints[6,2]), weighted NMS."""
    logits = np.clip(scores.reshape(-1), -80, 80)
    s = 1 / (1 + np.exp(-logits))
    keep = np.nonzero(s >= min_score)[0]
    if keep.size == 0:
        return []
    r = boxes.reshape(-1, 16)[keep]
    a = ANCHORS[keep] * n
    cx, cy = a[:, 0] + r[:, 0], a[:, 1] + r[:, 1]
    bb = np.stack([cx - r[:, 2] / 2, cy - r[:, 3] / 2, cx + r[:, 2] / 2, cy + r[:, 3] / 2], 1)
    kp = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    sc = s[keep]
    order = np.argsort(-sc)
    bb, kp, sc = bb[order], kp[order], sc[order]
    used = np.zeros(len(sc), bool)
    out = []
    area = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1])
    for i in range(len(sc)):
        if used[i]:
            continue
        ix = np.clip(np.minimum(bb[i, 2], bb[:, 2]) - np.maximum(bb[i, 0], bb[:, 0]), 0, None)
        iy = np.clip(np.minimum(bb[i, 3], bb[:, 3]) - np.maximum(bb[i, 1], bb[:, 1]), 0, None)
        inter = ix * iy
        iou = inter / np.maximum(area[i] + area - inter, 1e-9)
        m = (~used) & (iou >= nms_iou)
        m[:i] = False
        used |= m
        w = sc[m][:, None]
        out.append((sc[i], (bb[m] * w).sum(0) / w.sum(), (kp[m] * w[:, :, None]).sum(0) / w.sum()))
    return out


class Roi:
    def __init__(self, cx, cy, size, angle):
        self.cx, self.cy, self.size, self.angle = cx, cy, size, angle

    def crop(self, img, n):
        """Eye-aligned square crop of n x n pixels (PIL affine, bilinear): output (u, v) -> frame (x, y)."""
        s = self.size / n
        c, si = math.cos(self.angle), math.sin(self.angle)
        # PIL maps output pixel centres (u + 0.5, v + 0.5) through x = a u' + b v' + c, y = d u' + e v' + f;
        # we want x = cx + (u' - n/2) s cos - (v' - n/2) s sin, y = cy + (u' - n/2) s sin + (v' - n/2) s cos.
        a, b = s * c, -s * si
        d, e = s * si, s * c
        x0 = self.cx - n / 2 * (a + b)
        y0 = self.cy - n / 2 * (d + e)
        return np.asarray(img.transform((n, n), Image.AFFINE, (a, b, x0, d, e, y0), resample=Image.BILINEAR))

    def to_frame(self, n, uv):
        s = self.size / n
        c, si = math.cos(self.angle), math.sin(self.angle)
        du, dv = (uv[:, 0] - n / 2) * s, (uv[:, 1] - n / 2) * s
        return np.stack([self.cx + du * c - dv * si, self.cy + du * si + dv * c], 1)


def roi_from_detection(box, kps, scale=1.5):
    re, le = kps[0], kps[1]
    return Roi((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[2] - box[0], box[3] - box[1]) * scale,
               math.atan2(le[1] - re[1], le[0] - re[0]))


def roi_from_landmarks(p, scale=1.5):
    re, le = p[RIGHT_EYE_OUTER], p[LEFT_EYE_OUTER]
    ang = math.atan2(le[1] - re[1], le[0] - re[0])
    c, s = math.cos(ang), math.sin(ang)
    u = p[:, 0] * c + p[:, 1] * s
    v = -p[:, 0] * s + p[:, 1] * c
    uc, vc = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    return Roi(uc * c - vc * s, uc * s + vc * c, max(u.max() - u.min(), v.max() - v.min()) * scale, ang)


def decode_clip(path):
    """All frames as RGB numpy arrays, and the CPU seconds per frame of the decode (ffmpeg + pipe read)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path], capture_output=True, text=True,
                           check=True)
    w, h = map(int, probe.stdout.strip().split(","))
    cmd = ["ffmpeg", "-v", "error", "-threads", "1", "-filter_threads", "1", "-i", path, "-an",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
    frames, size = [], w * h * 3
    while True:
        # Read straight into the frame's array (a pipe delivers at most 64 KiB per read).
        frame = np.empty((h, w, 3), np.uint8)
        view, got = memoryview(frame).cast("B"), 0
        while got < size:
            n = p.stdout.readinto(view[got:])
            if not n:
                break
            got += n
        if got < size:
            break
        frames.append(frame)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0 or not frames:
        sys.exit(f"python_baseline: ffmpeg failed on {path} (status {status})")
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    child_cpu = ru.ru_utime + ru.ru_stime
    read_cpu = (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime - self_before.ru_stime)
    return frames, (child_cpu + read_cpu) / len(frames), wall / len(frames)


class Pipeline:
    def __init__(self, manifest, manifest_fp32):
        self.det = Model(manifest, "face_detector")
        self.lm = Model(manifest, "face_landmarks")
        self.bb = Model(manifest, "backbone")
        self.bb32 = Model(manifest_fp32, "backbone") if manifest_fp32 else None
        self.reset()

    def reset(self):
        self.track = None
        self.since = 0
        self.detections = 0

    def frame(self, rgb, t):
        """Analyse one frame; adds each stage's seconds to t (a dict)."""
        c = time.perf_counter
        t0 = c()
        img = Image.fromarray(rgb)
        t1 = c()
        t["to_pil"] = t1 - t0
        if self.track is None or self.since >= DETECT_EVERY:
            self.since = 0
            self.detections += 1
            n = self.det.size
            w, h = img.size
            side = max(w, h)
            box = ImageOps.pad(img, (n, n), method=Image.BILINEAR, color=(0, 0, 0))
            x = self.det.tensor(np.asarray(box))
            scores16, boxes16, scores8, boxes8 = self.det.run(x, ["scores_16", "boxes_16", "scores_8", "boxes_8"])
            dets = blazeface_decode(np.concatenate([scores16.reshape(-1), scores8.reshape(-1)]),
                                    np.concatenate([boxes16.reshape(-1, 16), boxes8.reshape(-1, 16)]), n)
            # Letterbox input pixels -> frame pixels.
            k = side / n
            ox, oy = (side - w) / 2, (side - h) / 2
            faces = []
            for score, bb, kp in dets:
                bb = bb * k - np.array([ox, oy, ox, oy])
                kp = kp * k - np.array([ox, oy])
                faces.append((score, bb, kp))
            if faces:
                _, bb, kp = max(faces, key=lambda f: (f[1][2] - f[1][0]) * (f[1][3] - f[1][1]))
                self.track = roi_from_detection(bb, kp)
            else:
                self.track = None
            t2 = c()
            t["detect"] = t2 - t1
            t1 = t2
        self.since += 1
        if self.track is None:
            return False
        roi = self.track
        crop = roi.crop(img, self.lm.size)
        x = self.lm.tensor(crop)
        t2 = c()
        t["crop_192"] = t2 - t1
        pts, flag = self.lm.run(x, ["landmarks", "face_flag"])
        presence = 1 / (1 + math.exp(-max(-50.0, min(50.0, float(flag.reshape(-1)[0])))))
        pts = pts.reshape(-1, 3)
        p = roi.to_frame(self.lm.size, pts[:, :2])
        t3 = c()
        t["landmarks"] = t3 - t2
        if presence < 0.5:
            self.track = None
            return False
        nxt = roi_from_landmarks(p)
        self.track = nxt
        face = Roi(nxt.cx, nxt.cy, nxt.size / 1.5 * 1.2, nxt.angle)
        x = self.bb.tensor(face.crop(img, self.bb.size))
        t4 = c()
        t["crop_224"] = t4 - t3
        emb = self.bb.run(x, ["embedding"])[0]
        t5 = c()
        t["backbone"] = t5 - t4
        assert emb.shape[-1] == 1280
        if self.bb32 is not None:
            self.bb32.run(x, ["embedding"])
            t["backbone_fp32"] = c() - t5
        return True


def median_ms(v):
    return statistics.median(v) * 1e3 if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default=os.path.join(ROOT, "target/bench-data/talk_1280x720.mp4"))
    ap.add_argument("--manifest", default=os.path.join(ROOT, "models/manifest.json"))
    ap.add_argument("--manifest-fp32", default=os.path.join(ROOT, "models/manifest.fp32.json"))
    ap.add_argument("--passes", type=int, default=2, help="timed passes over the clip (after one warm-up pass)")
    ap.add_argument("--json", help="write the medians here")
    args = ap.parse_args()
    if not os.path.exists(args.clip):
        sys.exit(f"python_baseline: {args.clip} is missing: `bash scripts/bench.sh` generates it")

    frames, decode_cpu, decode_wall = decode_clip(args.clip)
    h, w = frames[0].shape[:2]
    pipe = Pipeline(args.manifest, args.manifest_fp32)
    # Warm-up: one pass over the first frames (session allocations, caches).
    for rgb in frames[:2 * BLOCK]:
        pipe.frame(rgb, {})
    stages = {}
    blocks = []
    faces = 0
    n_frames = (len(frames) // BLOCK) * BLOCK
    for _ in range(args.passes):
        pipe.reset()
        block = 0.0
        for i, rgb in enumerate(frames[:n_frames]):
            t = {}
            faces += pipe.frame(rgb, t)
            for k, v in t.items():
                stages.setdefault(k, []).append(v)
            block += sum(v for k, v in t.items() if k != "backbone_fp32")
            if i % BLOCK == BLOCK - 1:
                blocks.append(block / BLOCK)
                block = 0.0
    analysis = statistics.median(blocks)
    result = {
        "clip": os.path.relpath(args.clip, ROOT),
        "width": w,
        "height": h,
        "frames": n_frames * args.passes,
        "face_frames": faces,
        "detections_per_pass": pipe.detections,
        "onnxruntime": ort.__version__,
        "threads": {"intra_op": 1, "inter_op": 1},
        "median_ms": {k: median_ms(v) for k, v in stages.items()},
        "decode_cpu_ms_per_frame": decode_cpu * 1e3,
        "decode_wall_ms_per_frame": decode_wall * 1e3,
        "per_frame_analysis_ms": analysis * 1e3,
        "per_frame_ms": analysis * 1e3 + decode_cpu * 1e3,
    }
    print(f"python baseline: {result['clip']} {w}x{h}, {result['frames']} frames ({args.passes} passes), "
          f"{pipe.detections} detections per pass, onnxruntime {ort.__version__}, 1 thread")
    print(f"  {'decode (ffmpeg CPU + pipe read)':34s} {decode_cpu * 1e3:8.2f} ms/frame")
    for k, v in result["median_ms"].items():
        print(f"  {k:34s} {v:8.2f} ms (median over the frames that ran it)")
    print(f"  {'per frame, analysis only':34s} {analysis * 1e3:8.2f} ms (median of 10-frame block means)")
    print(f"  {'per frame, with decode':34s} {result['per_frame_ms']:8.2f} ms")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
