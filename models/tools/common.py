"""Helpers shared by the model tools (run inside the tools venv: numpy, pillow, onnxruntime).

Nothing here is used by the Rust code; it mirrors what the Rust pipeline does closely enough to
calibrate and check the shipped models.
"""
import hashlib
import statistics
import time

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def session(path, threads=1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # the npm BlazeFace file carries a few unused initializers: ORT warns about them
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def load_rgb(path):
    return Image.open(path).convert("RGB")


# --- BlazeFace (short-range / "front", 128x128) ------------------------------------------------------------

def blazeface_anchors():
    """MediaPipe short-range SSD anchors: 16x16 cells x 2 anchors, then 8x8 cells x 6 anchors (896)."""
    out = []
    for fm, n in [(16, 2), (8, 6)]:
        for y in range(fm):
            for x in range(fm):
                out += [[(x + 0.5) / fm, (y + 0.5) / fm]] * n
    return np.array(out, np.float32)


def blazeface_detect(sess, img, min_score=0.5):
    """Best face in a PIL RGB image: (score, (cx, cy, w, h) normalised, 6 keypoints [6,2] normalised) or None.

    Keypoints: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion.
    The image is squashed to 128x128 (no letterbox): good enough for calibration and checks.
    """
    x = np.asarray(img.resize((128, 128), Image.BILINEAR), np.float32) / 127.5 - 1.0
    outs = sess.run(None, {sess.get_inputs()[0].name: x[None]})
    names = [o.name for o in sess.get_outputs()]
    by = dict(zip(names, outs))
    scores = [by[n] for n in names if by[n].shape[-1] == 1]
    boxes = [by[n] for n in names if by[n].shape[-1] == 16]
    scores = sorted(scores, key=lambda a: -a.shape[1])   # 512 anchors first, then 384
    boxes = sorted(boxes, key=lambda a: -a.shape[1])
    cls = np.concatenate(scores, 1)[0, :, 0]
    reg = np.concatenate(boxes, 1)[0]
    score = 1.0 / (1.0 + np.exp(-np.clip(cls, -50.0, 50.0)))
    i = int(score.argmax())
    if score[i] < min_score:
        return None
    anchors = blazeface_anchors()
    r = reg[i] / 128.0
    cx, cy = anchors[i] + r[:2]
    kps = anchors[i] + r[4:16].reshape(6, 2)
    return float(score[i]), (float(cx), float(cy), float(r[2]), float(r[3])), kps


def face_square(img, box, scale=1.5):
    """Square crop box (x0, y0, x1, y1) in pixels around a normalised (cx, cy, w, h) face box."""
    W, H = img.size
    cx, cy, w, h = box
    side = max(w * W, h * H) * scale
    return (cx * W - side / 2, cy * H - side / 2, cx * W + side / 2, cy * H + side / 2)


# --- crops for the backbone ---------------------------------------------------------------------------------

def augment_crop(img, rng, box=None, size=224):
    """One 224x224 RGB crop: a random square sub-window (inside `box` if given), random flip,
    brightness/contrast/colour jitter and sometimes a blur (video frames are soft)."""
    W, H = img.size
    if box is None:
        side = rng.uniform(0.45, 1.0) * min(W, H)
        x0 = rng.uniform(0, W - side)
        y0 = rng.uniform(0, H - side)
        box = (x0, y0, x0 + side, y0 + side)
    else:
        x0, y0, x1, y1 = box
        side = (x1 - x0) * rng.uniform(0.85, 1.2)
        cx = (x0 + x1) / 2 + rng.uniform(-0.08, 0.08) * side
        cy = (y0 + y1) / 2 + rng.uniform(-0.08, 0.08) * side
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    im = img.crop(tuple(int(round(v)) for v in box)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.7, 1.3))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.7, 1.3))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.6, 1.4))
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    return im


def imagenet_input(ims):
    """List of 224x224 PIL RGB images -> float32 [N,3,224,224], x = (pixel/255 - mean)/std."""
    a = np.stack([np.asarray(im, np.float32) for im in ims]) / 255.0
    a = (a - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2), dtype=np.float32)


def median_ms(fn, warmup=10, runs=100):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(t)


# --- ONNX graph and quantisation helpers (need the onnx package: the obtain_models.sh tools venv) --------------

def strip_unused_domains(m):
    """onnxruntime's optimiser and quantiser declare operator-set domains they did not use; keep the used ones."""
    used = {n.domain for n in m.graph.node} | {""}
    keep = [o for o in m.opset_import if o.domain in used]
    del m.opset_import[:]
    m.opset_import.extend(keep)


class ListReader:
    """onnxruntime CalibrationDataReader over a list of ready input tensors (one per call, batch 1)."""

    def __init__(self, input_name, tensors):
        self.name = input_name
        self.batches = list(tensors)
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.name: self.batches[self.i - 1]}

    def rewind(self):
        self.i = 0


def quantize_qdq(fp32, out, reader, nodes_to_exclude, doc_string, op_types_to_quantize=None):
    """Static QDQ int8 as the project does it for x86 with VNNI: per-channel symmetric s8 weights, asymmetric
    u8 activations, MinMax calibration over `reader`; `nodes_to_exclude` stay fp32. Writes `out` with the
    project's producer name, `doc_string`, only the operator sets it uses, checked by the ONNX checker."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    kwargs = {"op_types_to_quantize": op_types_to_quantize} if op_types_to_quantize else {}
    quantize_static(
        fp32, out, reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=False,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=nodes_to_exclude,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        **kwargs,
    )
    q = onnx.load(out)
    q.producer_name, q.producer_version = "deepfake-guard models/tools", "1"
    q.doc_string = doc_string
    strip_unused_domains(q)
    onnx.checker.check_model(q)
    onnx.save(q, out)
