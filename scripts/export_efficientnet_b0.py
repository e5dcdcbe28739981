#!/usr/bin/env python3
"""Export true EfficientNet-B0 (torchvision) as the spatial backbone, and write a manifest that uses it.

The shipped backbone is EfficientNet-Lite0 (its ImageNet weights are in a registry package; B0's are not:
torchvision downloads them at run time, which this project never does). A user who has B0 weights
swaps them in with this script:

  /usr/bin/python3 scripts/export_efficientnet_b0.py --weights efficientnet_b0_rwightman-3dd342df.pth \\
      --out models/efficientnet_b0.onnx --manifest-out models/manifest.b0.json
  deepfake-guard scan --models models/manifest.b0.json ...

  --weights PATH      a torchvision EfficientNet-B0 state_dict (.pth), e.g. torchvision's
                      IMAGENET1K_V1 file, or a fine-tuned one (any number of classes)
  --random-init       no weights: seeded random initialisation (for tests of the swap; useless otherwise)
  --out FILE.onnx     the ONNX file to write
  --manifest-out M    copy --manifest-in (default: models/manifest.json next to this script's repo) to M,
                      with the backbone entry pointing at --out (real sha256, names, shapes). Every `file`
                      and `card` path is rewritten so that it still resolves from M's folder: relative
                      when M shares a directory tree with the file, absolute otherwise.
  --manifest-in M     the manifest to start from

The graph: input "input" [N,3,224,224] RGB, x = (pixel/255 - mean)/std with ImageNet mean/std (the same
preprocessing as the shipped backbone); output "embedding" [N,1280] = features -> global average pool,
before dropout and the classifier; with --weights also "logits" [N,classes]. N is dynamic.

Runs with Debian's CPU torch (apt-get install python3-torch python3-torchvision: torch 1.13,
torchvision 0.14). If the `onnx` or `onnxruntime` Python packages are importable, names and shapes are
read back from the file and the ONNX output is compared with torch; otherwise they come from the export
call and from running the torch model at two batch sizes.
"""
import argparse
import hashlib
import json
import os
import re
import sys

import torch
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class Backbone(torch.nn.Module):
    def __init__(self, net, with_logits):
        super().__init__()
        self.features, self.avgpool, self.classifier = net.features, net.avgpool, net.classifier
        self.with_logits = with_logits

    def forward(self, x):
        emb = torch.flatten(self.avgpool(self.features(x)), 1)     # [N,1280]
        if self.with_logits:
            return emb, self.classifier(emb)                        # dropout is identity in eval
        return emb


def load_state_dict(path):
    sd = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        sys.exit(f"export_efficientnet_b0: {path} is not a state_dict (got {type(sd).__name__}); "
                 "save one with torch.save(model.state_dict(), PATH)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def build(args):
    if args.random_init:
        torch.manual_seed(0)
        net = torchvision.models.efficientnet_b0(weights=None)
        return Backbone(net.eval(), with_logits=False).eval(), None
    sd = load_state_dict(args.weights)
    if "classifier.1.weight" not in sd:
        sys.exit(f"export_efficientnet_b0: {args.weights} has no 'classifier.1.weight': it is not a torchvision "
                 "EfficientNet-B0 state_dict (timm / efficientnet_pytorch checkpoints use other names)")
    classes = sd["classifier.1.weight"].shape[0]
    net = torchvision.models.efficientnet_b0(weights=None, num_classes=classes)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        sys.exit(f"export_efficientnet_b0: {args.weights} does not fit torchvision's efficientnet_b0:\n{e}")
    return Backbone(net.eval(), with_logits=True).eval(), classes


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _optional(name):
    """Import an optional package; None if it is missing or broken (e.g. built for another numpy)."""
    try:
        return __import__(name)
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return None


def describe(path, model, out_names):
    """Names/shapes/dtypes of the ONNX file, from onnx/onnxruntime when importable, else from torch."""
    x1, x2 = torch.rand(1, 3, 224, 224), torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        t1, t2 = model(x1), model(x2)
    t1 = t1 if isinstance(t1, tuple) else (t1,)
    t2 = t2 if isinstance(t2, tuple) else (t2,)
    torch_shapes = [[-1 if a != b else a for a, b in zip(p.shape, q.shape)] for p, q in zip(t1, t2)]
    inputs = [{"name": "input", "shape": [-1, 3, 224, 224], "dtype": "float32"}]
    outputs = [{"name": n, "role": n, "shape": s, "dtype": "float32"} for n, s in zip(out_names, torch_shapes)]
    how = "torch export arguments + torch output shapes at batch 1 and 2"
    onnx = _optional("onnx")
    if onnx is not None:
        m = onnx.load(path)
        onnx.checker.check_model(m)

        def shp(v):
            return [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
        got_in = [(v.name, shp(v)) for v in m.graph.input]
        got_out = [(v.name, shp(v)) for v in m.graph.output]
        if got_in != [(i["name"], i["shape"]) for i in inputs] or got_out != [(o["name"], o["shape"]) for o in outputs]:
            sys.exit(f"export_efficientnet_b0: the ONNX graph says inputs {got_in}, outputs {got_out}; "
                     f"expected {inputs} / {outputs}")
        how = f"read back with onnx {onnx.__version__}"
    ort = _optional("onnxruntime")
    if ort is not None:
        import numpy as np
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        res = s.run(None, {"input": x2.numpy()})
        for name, r, t in zip(out_names, res, t2):
            if list(r.shape) != list(t.shape):
                sys.exit(f"export_efficientnet_b0: onnxruntime gives {name} {list(r.shape)}, torch {list(t.shape)}")
            err = float(np.abs(r - t.numpy()).max())
            if err > 1e-3:
                sys.exit(f"export_efficientnet_b0: onnxruntime and torch disagree on {name} (max |diff| {err})")
        how += f"; outputs checked against onnxruntime {ort.__version__}"
    return inputs, outputs, how


def repoint(path, old_dir, new_dir):
    """A manifest path (relative to old_dir, or absolute) made valid from new_dir."""
    target = os.path.normpath(os.path.join(old_dir, path))
    if os.path.commonpath([target, new_dir]) != os.path.sep:
        return os.path.relpath(target, new_dir)
    return target


def write_manifest(args, inputs, outputs):
    src = os.path.abspath(args.manifest_in)
    dst = os.path.abspath(args.manifest_out)
    with open(src) as f:
        man = json.load(f)
    old_dir, new_dir = os.path.dirname(src), os.path.dirname(dst)
    os.makedirs(new_dir, exist_ok=True)
    for entry in man["models"].values():
        for key in ("file", "card"):
            if key in entry:
                entry[key] = repoint(entry[key], old_dir, new_dir)
    out = os.path.abspath(args.out)
    old = man["models"].get("backbone", {})
    man["models"]["backbone"] = {
        "file": repoint(out, new_dir, new_dir),
        "sha256": sha256(out),
        "inputs": inputs,
        "outputs": outputs,
        "preprocessing": {"size": 224, "layout": "NCHW", "color": "RGB", "mean": MEAN, "std": STD},
        "source": {
            "registry": "local",
            "package": "torchvision.models.efficientnet_b0",
            "version": torchvision.__version__.split("+")[0],
            "path": "random-init (seed 0, no weights)" if args.random_init else os.path.abspath(args.weights),
        },
        "license": ("none (random weights, for tests only)" if args.random_init else
                    "BSD-3-Clause (torchvision code); weights: see the license of the file you supplied"),
        "card": repoint(os.path.join(ROOT, "models", "README.md"), new_dir, new_dir),
    }
    text = json.dumps(man, indent=2)
    text = re.sub(r"\[\s+([-\d.,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    with open(dst, "w") as f:
        f.write(text + "\n")
    print(f"wrote {dst} (backbone: {man['models']['backbone']['file']}, was {old.get('file')})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--weights", help="torchvision EfficientNet-B0 state_dict (.pth)")
    g.add_argument("--random-init", action="store_true", help="no weights (tests only)")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    ap.add_argument("--manifest-out", help="new manifest whose backbone is --out")
    ap.add_argument("--manifest-in", default=os.path.join(ROOT, "models", "manifest.json"))
    ap.add_argument("--opset", type=int, default=13)
    args = ap.parse_args()
    if args.manifest_out and not os.path.exists(args.manifest_in):
        sys.exit(f"export_efficientnet_b0: no manifest to copy at {args.manifest_in} (use --manifest-in)")

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    model, classes = build(args)
    out_names = ["embedding"] if classes is None else ["embedding", "logits"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    dyn = {n: {0: "N"} for n in ["input"] + out_names}
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), args.out, input_names=["input"], output_names=out_names,
                      dynamic_axes=dyn, opset_version=args.opset, do_constant_folding=True)
    inputs, outputs, how = describe(args.out, model, out_names)
    print(f"exported {args.out} ({os.path.getsize(args.out)} bytes, sha256 {sha256(args.out)})")
    print(f"  input  {inputs[0]['name']} {inputs[0]['shape']}")
    for o in outputs:
        print(f"  output {o['name']} {o['shape']}")
    print(f"  shapes: {how}")
    if args.manifest_out:
        write_manifest(args, inputs, outputs)


if __name__ == "__main__":
    main()
