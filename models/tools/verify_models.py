#!/usr/bin/env python3
"""Check that the model files do their job (not only that they load), and optionally time them.

Runs in the tools venv. Usage:

  verify_models.py MODELS_DIR SKIMAGE_DATA_DIR [--bench] [--runs N]

- face_detector: finds the face in scikit-image's astronaut.png with score > 0.9.
- face_landmarks (the fp32 file and the PRelu-rewritten one manifest.json uses): on the 1.5x face crop, face
  presence > 0.9, and the FaceMesh mouth centre (points 13/14) lies within 15 % of the crop side of
  BlazeFace's mouth keypoint; the two files agree within 0.01 px on every landmark.
- backbone (fp32 and int8): chelsea.png -> a cat class, coffee.png -> espresso/cup.
- manifests: every sha256 in manifest.json / manifest.fp32.json matches the file.
With --bench: median one-thread latency (batch 1, onnxruntime, intra_op_num_threads=1) of every file.
Exits non-zero on any failure.
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CATS = {281, 282, 285}          # tabby, tiger cat, Egyptian cat
COFFEE = {967, 968, 504}        # espresso, cup, coffee mug
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409]
LIPS_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415]

FILES = {
    "face_detector": "blazeface_front_128.onnx",
    "face_landmarks": "face_landmark_468.onnx",
    "face_landmarks_fast": "face_landmark_468_fast.onnx",
    "backbone_fp32": "efficientnet_lite0_imagenet.onnx",
    "backbone_int8": "efficientnet_lite0_imagenet_int8.onnx",
}


def fail(msg):
    sys.exit(f"verify_models: FAILED: {msg}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models")
    ap.add_argument("skimage_data")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    P = {k: os.path.join(a.models, v) for k, v in FILES.items()}
    report = {}

    # 1. face detector
    det = common.session(P["face_detector"])
    img = common.load_rgb(os.path.join(a.skimage_data, "astronaut.png"))
    W, H = img.size
    hit = common.blazeface_detect(det, img)
    if hit is None or hit[0] < 0.9:
        fail(f"BlazeFace: no confident face in astronaut.png ({hit and hit[0]})")
    score, box, kps = hit
    report["face_detector"] = {"score": round(score, 3), "box_px": [round(v) for v in common.face_square(img, box, 1.0)],
                               "mouth_px": [round(float(kps[3][0] * W)), round(float(kps[3][1] * H))]}

    # 2. landmarks on the face crop
    x0, y0, x1, y1 = common.face_square(img, box, 1.5)
    side = x1 - x0
    crop = img.crop((int(x0), int(y0), int(x0) + int(side), int(y0) + int(side))).resize((192, 192), Image.BILINEAR)
    lm = common.session(P["face_landmarks"])
    inp = (np.asarray(crop, np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
    pts, flag = lm.run(None, {lm.get_inputs()[0].name: inp})
    pts = pts.reshape(468, 3)
    fast = common.session(P["face_landmarks_fast"])
    pts_fast, flag_fast = fast.run(None, {fast.get_inputs()[0].name: inp})
    fast_diff = float(np.abs(pts_fast.reshape(468, 3)[:, :2] - pts[:, :2]).max())
    if fast_diff > 0.01 or abs(float(flag_fast.ravel()[0] - flag.ravel()[0])) > 1e-3:
        fail(f"{FILES['face_landmarks_fast']} differs from {FILES['face_landmarks']} by {fast_diff:.4f} px")
    presence = float(1 / (1 + np.exp(-flag.ravel()[0])))
    scale = int(side) / 192.0
    px = np.stack([int(x0) + pts[:, 0] * scale, int(y0) + pts[:, 1] * scale], 1)
    mouth = (px[13] + px[14]) / 2
    dist = float(np.linalg.norm(mouth - kps[3] * [W, H]) / side)
    lips = px[LIPS_OUTER + LIPS_INNER]
    report["face_landmarks"] = {"presence": round(presence, 3), "mouth_centre_px": [round(float(v)) for v in mouth],
                                "mouth_vs_blazeface": round(dist, 3),
                                "lip_box_px": [round(float(v)) for v in [*lips.min(0), *lips.max(0)]],
                                "mouth_opening_px": round(float(np.linalg.norm(px[13] - px[14])), 1),
                                "fast_vs_fp32_max_px": round(fast_diff, 5)}
    if presence < 0.9:
        fail(f"FaceMesh face presence {presence:.3f} on the astronaut face crop")
    if dist > 0.15:
        fail(f"FaceMesh mouth centre is {dist:.2f} crop sides away from BlazeFace's mouth keypoint")

    # 3. backbones
    for key in ("backbone_fp32", "backbone_int8"):
        s = common.session(P[key])
        res = {}
        for name, ok in (("chelsea.png", CATS), ("coffee.png", COFFEE)):
            im = common.load_rgb(os.path.join(a.skimage_data, name)).resize((224, 224), Image.BILINEAR)
            emb, logits = s.run(None, {"input": common.imagenet_input([im])})
            top = int(logits[0].argmax())
            res[name] = top
            if top not in ok or emb.shape != (1, 1280):
                fail(f"{FILES[key]}: {name} -> class {top}, embedding {emb.shape}")
        report[key] = {"top1": res}

    # 4. manifests
    for man in ("manifest.json", "manifest.fp32.json"):
        path = os.path.join(a.models, man)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            m = json.load(f)
        for role, e in m["models"].items():
            if common.sha256(os.path.join(a.models, e["file"])) != e["sha256"]:
                fail(f"{man}: sha256 of {e['file']} ({role}) does not match: run models/tools/make_manifest.py")
        report[man] = "sha256 ok"

    # 5. speed
    if a.bench:
        feeds = {
            "face_detector": {det.get_inputs()[0].name: np.zeros((1, 128, 128, 3), np.float32)},
            "face_landmarks": {lm.get_inputs()[0].name: inp},
            "face_landmarks_fast": {lm.get_inputs()[0].name: inp},
        }
        x = common.imagenet_input([crop.resize((224, 224), Image.BILINEAR)])
        ms = {}
        for key in FILES:
            s = common.session(P[key])
            f = feeds.get(key, {"input": x})
            ms[key] = round(common.median_ms(lambda: s.run(None, f), warmup=20, runs=a.runs), 2)
        report["median_ms_1thread"] = ms

    for k, v in report.items():
        print(f"  {k}: {json.dumps(v)}")
    print("verify_models: all checks passed")


if __name__ == "__main__":
    main()
