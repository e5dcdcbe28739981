"""Face sources and landmark detection (BlazeFace -> FaceMesh, ONNX) on a still photo."""
import json
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOURCES = os.path.join(ROOT, "scripts", "faces", "sources.json")
FACE_CACHE = os.path.join(ROOT, ".cache", "faces")
BLAZEFACE = "blazeface_front_128.onnx"
FACEMESH = "face_landmark_468.onnx"

# FaceMesh indices (MediaPipe 468-point topology)
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]   # left corner -> right corner
INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
EYE_OUTER = (33, 263)        # subject's right / left outer eye corner
FACE_SIDES = (234, 454)
FOREHEAD, CHIN, NOSE_TIP, SUBNASALE = 10, 152, 1, 2
LOWER_LIP_BOTTOM, UPPER_LIP_TOP = 17, 0
JAW = [172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397]


class FaceError(RuntimeError):
    pass


def load_sources():
    with open(SOURCES) as f:
        return json.load(f)


def resolve_face(face_id=None, image_path=None):
    """Returns (RGB uint8 array, info dict) for a face id from sources.json or an image path."""
    if image_path:
        if not os.path.exists(image_path):
            raise FaceError(f"--face-image {image_path}: no such file")
        try:
            img = Image.open(image_path).convert("RGB")
        except Exception as e:  # noqa: BLE001
            raise FaceError(f"--face-image {image_path}: cannot read it as an image ({e})")
        return np.asarray(img), {"id": None, "image": os.path.abspath(image_path), "split": "custom",
                                  "license": "unknown (user supplied)"}
    faces = {f["id"]: f for f in load_sources()["faces"]}
    if face_id not in faces:
        raise FaceError(f"unknown face id '{face_id}'; known ids: {', '.join(faces)} "
                        f"(see scripts/faces/sources.json), or use --face-image PATH")
    f = faces[face_id]
    path = os.path.join(FACE_CACHE, face_id + ".png")
    if not os.path.exists(path):
        opt = " --all" if not f.get("default", True) else ""
        raise FaceError(f"face '{face_id}' is not fetched yet: run scripts/fetch_faces.sh{opt} "
                        f"(expected {os.path.relpath(path, ROOT)})")
    info = {k: f[k] for k in ("id", "split", "license", "attribution", "subject") if k in f}
    info["package"] = f"{f['package']['name']}=={f['package']['version']}:{f['path']}"
    return np.asarray(Image.open(path).convert("RGB")), info


def find_models(models_dir=None):
    """Finds the two ONNX files in --models DIR, else $TALKGEN_MODELS, else <repo>/models (the first given wins)."""
    if models_dir:
        d, how = models_dir, "--models"
    elif os.environ.get("TALKGEN_MODELS"):
        d, how = os.environ["TALKGEN_MODELS"], "$TALKGEN_MODELS"
    else:
        d, how = os.path.join(ROOT, "models"), "the repository's models/"
    missing = [f for f in (BLAZEFACE, FACEMESH) if not os.path.isfile(os.path.join(d, f))]
    if missing:
        raise FaceError(f"face model(s) missing: {', '.join(os.path.join(d, f) for f in missing)} (looked in {how}). "
                        "They ship in the repository's models/ folder (git checkout / scripts/setup.sh); "
                        "or point --models DIR or TALKGEN_MODELS=DIR at a folder holding both files")
    return os.path.join(d, BLAZEFACE), os.path.join(d, FACEMESH)


def _session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise FaceError(f"cannot load model {path}: {e}")


def _anchors():
    out = []
    for fm, n in [(16, 2), (8, 6)]:
        for y in range(fm):
            for x in range(fm):
                out += [[(x + .5) / fm, (y + .5) / fm]] * n
    return np.array(out, np.float32)


_ANCHORS = _anchors()


def _affine_crop(img, cx, cy, side, angle, out):
    """Square crop of `side` px centred at (cx,cy), rotated by `angle` (rad), resized to out x out.
    Returns (crop array, 2x3 matrix mapping crop pixel -> image pixel)."""
    k = side / out
    c, s = np.cos(angle), np.sin(angle)
    M = np.array([[k * c, -k * s, 0.0], [k * s, k * c, 0.0]])
    M[:, 2] = [cx, cy] - M[:, :2] @ [out / 2, out / 2]
    crop = img.transform((out, out), Image.AFFINE, data=tuple(M.ravel()), resample=Image.BILINEAR)
    return np.asarray(crop), M


class Detector:
    def __init__(self, models_dir=None):
        bf, fm = find_models(models_dir)
        self.bf = _session(bf)
        self.fm = _session(fm)
        shp = self.bf.get_inputs()[0].shape
        if list(shp[1:]) != [128, 128, 3]:
            raise FaceError(f"{bf}: expected input [1,128,128,3] (NHWC), got {shp}")
        shp = self.fm.get_inputs()[0].shape
        if list(shp[1:]) != [3, 192, 192]:
            raise FaceError(f"{fm}: expected input [1,3,192,192], got {shp}")

    def _blazeface(self, img, x0, y0, side):
        """Runs BlazeFace on the square window (x0,y0,side) of img; returns best (score, box, kps) in image px."""
        crop, M = _affine_crop(img, x0 + side / 2, y0 + side / 2, side, 0.0, 128)
        x = crop.astype(np.float32)[None] / 127.5 - 1.0
        outs = self.bf.run(None, {self.bf.get_inputs()[0].name: x})
        reg = sorted([o for o in outs if o.shape[-1] == 16], key=lambda o: -o.shape[1])
        cls = sorted([o for o in outs if o.shape[-1] == 1], key=lambda o: -o.shape[1])
        reg = np.concatenate(reg, 1)[0]
        cls = np.concatenate(cls, 1)[0, :, 0]
        score = 1 / (1 + np.exp(-np.clip(cls.astype(np.float64), -60, 60)))
        i = int(score.argmax())
        r = reg[i] / 128.0
        c = (_ANCHORS[i] + r[:2]) * 128
        wh = r[2:4] * 128 * side / 128
        kps = (_ANCHORS[i] + r[4:16].reshape(6, 2)) * 128
        to_img = lambda p: p @ M[:, :2].T + M[:, 2]  # noqa: E731
        return float(score[i]), np.r_[to_img(c), wh], to_img(kps)

    def detect(self, rgb):
        """Returns a dict with 468 landmarks (image px, x/y/z) and the detection scores, or raises FaceError."""
        img = Image.fromarray(rgb)
        H, W = rgb.shape[:2]
        windows = [(min(0, (W - max(W, H)) / 2), min(0, (H - max(W, H)) / 2), max(W, H))]
        m = min(W, H)
        for side in (m, m / 2):
            nx = int(np.ceil((W - side) / (side / 2))) + 1
            ny = int(np.ceil((H - side) / (side / 2))) + 1
            for j in range(ny):
                for i in range(nx):
                    windows.append((min(i * side / 2, W - side), min(j * side / 2, H - side), side))
        best = None
        for w in windows:
            d = self._blazeface(img, *w)
            if best is None or d[0] > best[0]:
                best = d
            if best[0] > 0.85:
                break
        score, box, kps = best
        if score < 0.5:
            raise FaceError(f"no face found in the photo (best BlazeFace score {score:.2f} < 0.5)")
        # crop around the box, upright by the eye keypoints (kp0 = subject's right eye, kp1 = left eye)
        eye = kps[1] - kps[0]
        angle = float(np.arctan2(eye[1], eye[0]))
        cx, cy, side = box[0], box[1], max(box[2], box[3]) * 1.5
        for _ in range(2):   # second pass: re-centre on the landmarks
            crop, M = _affine_crop(img, cx, cy, side, angle, 192)
            inp = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
            outs = self.fm.run(None, {self.fm.get_inputs()[0].name: inp})
            pts = [o for o in outs if o.size == 1404][0].reshape(468, 3)
            flag = [o for o in outs if o.size == 1][0].ravel()[0]
            xy = pts[:, :2] @ M[:, :2].T + M[:, 2]
            lo, hi = xy.min(0), xy.max(0)
            cx, cy = (lo + hi) / 2
            side = max(hi - lo) * 1.5
            e = xy[EYE_OUTER[1]] - xy[EYE_OUTER[0]]
            angle = float(np.arctan2(e[1], e[0]))
        presence = float(1 / (1 + np.exp(-flag)))
        if presence < 0.5:
            raise FaceError(f"FaceMesh does not see a face in the photo (presence {presence:.2f})")
        z = pts[:, 2:3] * side / 192
        return {"landmarks": np.concatenate([xy, z], 1).astype(np.float64), "score": score,
                "presence": presence, "roll_deg": float(np.degrees(angle))}
