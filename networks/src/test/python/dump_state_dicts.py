"""Writes torchvision 0.14's state_dict keys and shapes for Squall's networks, one JSON line each:

    {"model": "mobilenet_v2", "width": 1.0, "num_params": 3504872, "bn_eps": 1e-05,
     "weights": {"url": "https://...", "crop_size": 224, "resize_size": 256, "interpolation": "bilinear",
                 "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
     "params": {"features.0.0.weight": [32, 3, 3, 3], ...}}

num_batches_tracked is left out (a buffer that loaders skip). num_params is torchvision's own count,
sum(p.numel() for p in model.parameters()). bn_eps is the first BatchNorm's eps. weights is the
metadata of torchvision's IMAGENET1K_V1 weights (absent for MobileNet V1, which comes from
mobilenet_v1.py beside this file). params comes last on each line.

Usage: /usr/bin/python3 dump_state_dicts.py OUTPUT.jsonl
Exit status 3 when torch or torchvision cannot be imported.
"""
import json
import os
import sys

try:
    import torch
    import torchvision.models as tvm
    from torchvision.models import get_model_weights
except ImportError as e:
    print(f"cannot import torch/torchvision ({e}): apt-get install python3-torch python3-torchvision",
          file=sys.stderr)
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mobilenet_v1 import mobilenet_v1  # noqa: E402

# Only names and shapes matter, so skip the random initialisation: the largest models build in a
# fraction of the time.
for init in ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "ones_", "zeros_", "trunc_normal_"):
    setattr(torch.nn.init, init, lambda tensor, *args, **kwargs: tensor)

MODELS = [
    ("mobilenet_v1", 1.0, lambda: mobilenet_v1(1.0)),
    ("mobilenet_v1", 0.25, lambda: mobilenet_v1(0.25)),
    ("mobilenet_v2", 1.0, lambda: tvm.mobilenet_v2(weights=None)),
    ("mobilenet_v2", 0.5, lambda: tvm.mobilenet_v2(weights=None, width_mult=0.5)),
    ("mobilenet_v3_large", 1.0, lambda: tvm.mobilenet_v3_large(weights=None)),
    ("mobilenet_v3_small", 1.0, lambda: tvm.mobilenet_v3_small(weights=None)),
] + [(f"efficientnet_b{i}", 1.0, lambda i=i: getattr(tvm, f"efficientnet_b{i}")(weights=None)) for i in range(8)] + [
    (f"efficientnet_v2_{s}", 1.0, lambda s=s: getattr(tvm, f"efficientnet_v2_{s}")(weights=None)) for s in "sml"]


def weights_metadata(name):
    weights = get_model_weights(name).IMAGENET1K_V1
    preset = weights.transforms()  # ImageClassification with torchvision's defaults filled in
    return {"url": weights.url, "crop_size": preset.crop_size[0], "resize_size": preset.resize_size[0],
            "interpolation": preset.interpolation.value, "mean": preset.mean, "std": preset.std}


def main(out_path):
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    lines = []
    with torch.no_grad():
        for name, width, make in MODELS:
            model = make()
            params = {k: list(v.shape) for k, v in model.state_dict().items()
                      if not k.endswith("num_batches_tracked")}
            count = sum(p.numel() for p in model.parameters())
            eps = next(m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
            record = {"model": name, "width": width, "num_params": count, "bn_eps": eps}
            if name != "mobilenet_v1":
                record["weights"] = weights_metadata(name)
            record["params"] = params
            lines.append(json.dumps(record))
            del model
    # Written at the end, in one go, so a crash never leaves a partial file behind.
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out_path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
