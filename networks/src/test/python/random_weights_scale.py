"""Runs torchvision's own models with weights Squall's RandomWeights generated, and reports how
large their activations are, so the Java test can check that they stay at a sane scale.

    /usr/bin/python3 random_weights_scale.py WEIGHTS_DIR OUTPUT.jsonl NAME...

WEIGHTS_DIR/NAME.idx lists the parameters in order, one "key<TAB>d0,d1,..." a line; NAME.bin holds
their float32 values, little-endian, in that order. For each NAME one JSON line is written:
root-mean-square of every BatchNorm output (min, max), of every block output (max), and of the
logits for two different images, plus the correlation of those two logit vectors.
Exit status 3 when torch or torchvision cannot be imported.
"""
import json
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    import torchvision
except ImportError as e:
    print(f"cannot import torch/torchvision ({e}): apt-get install python3-torch python3-torchvision",
          file=sys.stderr)
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mobilenet_v1 import mobilenet_v1  # noqa: E402

BLOCKS = ("InvertedResidual", "MBConv", "FusedMBConv")


def load(directory, name):
    model = mobilenet_v1() if name == "mobilenet_v1" else getattr(torchvision.models, name)(weights=None)
    values = np.fromfile(os.path.join(directory, name + ".bin"), dtype="<f4")
    state, offset = {}, 0
    with open(os.path.join(directory, name + ".idx")) as index:
        for line in index:
            key, dims = line.rstrip("\n").split("\t")
            shape = [int(d) for d in dims.split(",") if d]
            count = int(np.prod(shape))
            state[key] = torch.from_numpy(values[offset:offset + count].reshape(shape).copy())
            offset += count
    # strict: every key must be one of the model's, and only num_batches_tracked may be missing.
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def images(generator):
    """Two smooth random colour fields with noise: unlike white noise, they differ after pooling."""
    fields = torch.zeros(2, 3, 128, 112)
    for cells in (2, 5, 13):
        coarse = torch.randn(2, 3, cells, cells, generator=generator)
        fields += F.interpolate(coarse, size=(128, 112), mode="bicubic", align_corners=False)
    fields += 0.3 * torch.randn(2, 3, 128, 112, generator=generator)
    return (fields - fields.mean(dim=(1, 2, 3), keepdim=True)) / fields.std(dim=(1, 2, 3), keepdim=True)


def measure(model):
    bn, blocks = [], []
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.register_forward_hook(lambda m, i, o: bn.append(rms(o)))
        elif type(module).__name__ in BLOCKS:
            module.register_forward_hook(lambda m, i, o: blocks.append(rms(o)))
    with torch.no_grad():
        logits = model(images(torch.Generator().manual_seed(0))).double()
    return {"bn_rms_min": min(bn), "bn_rms_max": max(bn), "block_rms_max": max(blocks, default=0.0),
            "logits_rms": rms(logits), "logits_finite": bool(torch.isfinite(logits).all()),
            "correlation": float(np.corrcoef(logits[0].numpy(), logits[1].numpy())[0, 1])}


def main(directory, out_path, names):
    torch.manual_seed(0)
    with open(out_path, "w") as out:
        for name in names:
            out.write(json.dumps({"model": name, **measure(load(directory, name))}) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
