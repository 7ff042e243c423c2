"""PyTorch golden outputs for Squall's parity test (PyTorchParityTest).

    /usr/bin/python3 make_references.py OUTDIR [names...]

For each network this writes OUTDIR/<name>/
    weights.safetensors  random but deterministic weights, F32, torchvision state_dict names
    input.npy            float32 [2, 3, H, W]: two different synthetic images
    logits.npy           float32 [2, 1000]: PyTorch's output in eval mode
    reference.json       resolution, seed, timings and the signal checks below
    stamp                written last; holds the SHA-256 of this script and mobilenet_v1.py

Why the weights are not torchvision's default init as it is: with that init the activations
shrink (or blow up) stage after stage, so every input gives nearly the same logits and a parity
test would pass for a network that ignores its input. So each BatchNorm is calibrated: its
running mean/var are set to the statistics its input really has on a batch of synthetic images,
then perturbed a little, as are gamma and beta, so that folding BN into the conv is really
exercised (see randomize). The script then checks that the two inputs give clearly different,
moderately sized logits, and stops with an error if they do not.

Debian's torch 1.13 runs its convolutions through whatever libblas.so.3 is installed. When the
references in this repository were first made that was OpenBLAS (pthread variant:
/etc/alternatives/libblas.so.3-x86_64-linux-gnu -> /usr/lib/x86_64-linux-gnu/openblas-pthread/);
reference.json records the BLAS in use each time. The Java test compares with a tolerance, so
another BLAS is fine.
"""
import hashlib
import json
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mobilenet_v1  # noqa: E402  (the reference definition beside this script)

# (height, width) per network. The small ones run at their native resolution; the big ones at
# 96-176, enough for every stage to keep a spatial extent (the last one is 3x3 or more), so that the
# untuned JVM backend keeps the Java test to a few minutes in CI. efficientnet_b1 is non-square and
# efficientnet_b3 has odd sizes, so that padding and the floor in every stride-2 output size count.
RESOLUTIONS = {
    "mobilenet_v1": (224, 224),
    "mobilenet_v2": (224, 224),
    "mobilenet_v3_large": (224, 224),
    "mobilenet_v3_small": (224, 224),
    "efficientnet_b0": (224, 224),
    "efficientnet_b1": (240, 200),
    "efficientnet_b2": (176, 176),
    "efficientnet_b3": (149, 131),
    "efficientnet_b4": (128, 128),
    "efficientnet_b5": (128, 128),
    "efficientnet_b6": (112, 112),
    "efficientnet_b7": (112, 112),
    "efficientnet_v2_s": (128, 128),
    "efficientnet_v2_m": (112, 112),
    "efficientnet_v2_l": (96, 96),
}

CALIBRATION_IMAGES = 6
MAX_CORRELATION = 0.99  # between the two items' logits: above this the golden has no signal
MIN_RELATIVE_DIFFERENCE = 0.05  # max|l0 - l1| / max|l| must exceed this


def build(name):
    if name == "mobilenet_v1":
        return mobilenet_v1.mobilenet_v1(alpha=1.0)
    return getattr(torchvision.models, name)(weights=None)


def synthetic_images(count, height, width, generator):
    """Smooth random colour fields plus fine noise, roughly ImageNet-normalised.

    Plain white noise is a poor input: after global pooling two noise images look alike. Smooth
    fields at a few scales differ from image to image the way real photos do."""
    images = torch.zeros(count, 3, height, width)
    for cells in (2, 5, 13):
        coarse = torch.randn(count, 3, cells, cells, generator=generator)
        images += F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    images += 0.3 * torch.randn(count, 3, height, width, generator=generator)
    images = (images - images.mean(dim=(1, 2, 3), keepdim=True)) / images.std(dim=(1, 2, 3), keepdim=True)
    # Give each image its own brightness and contrast per channel, as photos have.
    scale = 0.6 + 0.8 * torch.rand(count, 3, 1, 1, generator=generator)
    shift = 0.5 * torch.randn(count, 3, 1, 1, generator=generator)
    return images * scale + shift


def batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def randomize(model, images, generator):
    """Deterministic weights whose activations keep a healthy scale through the whole network.

    Each BatchNorm gets the statistics its input really has in eval mode, with every BatchNorm
    before it already final: a pre-hook sets them just before the BatchNorm runs, in one forward
    pass over a calibration batch. (Calibrating all BatchNorms at once in train mode is not
    enough: each sees its input as it is with exact batch statistics upstream, and the
    perturbations below then compound over 80-250 BatchNorms; efficientnet_b3 reached logits
    of 5e3.) The calibration batch holds the two test images themselves, so no channel can be
    nearly constant over the batch yet vary on a test image, which eps would turn into a blow-up.
    The statistics, gamma and beta are then perturbed so that folding BN is really exercised."""
    height, width = images.shape[2:]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                # He init on fan-in, so that each conv roughly keeps the scale of its input.
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) / m.in_features ** 0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))

        def calibrate(bn, inputs):
            x, c = inputs[0], bn.num_features
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
            bn.running_mean.copy_(mean + 0.1 * var.sqrt() * torch.randn(c, generator=generator))
            bn.running_var.copy_(var * (0.8 + 0.45 * torch.rand(c, generator=generator)))
            bn.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=generator))
            bn.bias.copy_(0.1 * torch.randn(c, generator=generator))

        model.eval()  # dropout and stochastic depth off, BatchNorms use the running statistics
        hooks = [bn.register_forward_pre_hook(calibrate) for bn in batch_norms(model)]
        model(torch.cat([images, synthetic_images(CALIBRATION_IMAGES, height, width, generator)]))
        for hook in hooks:
            hook.remove()


def write_safetensors(path, state_dict):
    """The safetensors format by hand (the package is not in Debian): an 8-byte little-endian
    header length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw bytes."""
    header = {"__metadata__": {"format": "pt", "source": "Squall make_references.py"}}
    blobs, offset = [], 0
    for key, tensor in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        data = tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the spec allows trailing spaces; keeps the data aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def check_signal(name, logits):
    """Fails loudly when the golden could not tell a working network from a broken one."""
    a, b = logits[0].double(), logits[1].double()
    if not torch.isfinite(logits).all():
        raise SystemExit(f"{name}: logits are not finite")
    largest = logits.abs().max().item()
    if not 0.1 <= largest <= 1e3:
        raise SystemExit(f"{name}: max |logit| is {largest:.3g}, outside [0.1, 1e3]: the weights are badly scaled")
    correlation = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    difference = (a - b).abs().max().item() / largest
    if correlation > MAX_CORRELATION or difference < MIN_RELATIVE_DIFFERENCE:
        raise SystemExit(f"{name}: the two inputs give nearly the same logits (correlation {correlation:.4f}, "
                         f"relative difference {difference:.4f}): the golden has no signal")
    return {"max_abs_logit": largest, "correlation": correlation, "relative_difference": difference}


def blas():
    try:
        return os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu")
    except OSError:
        return "unknown"


def script_hash():
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for file in ("make_references.py", "mobilenet_v1.py"):
        with open(os.path.join(here, file), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def make(name, outdir):
    start = time.time()
    height, width = RESOLUTIONS[name]
    seed = zlib.crc32(name.encode())
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    model = build(name)
    images = synthetic_images(2, height, width, generator)
    randomize(model, images, generator)
    with torch.no_grad():
        logits = model(images).float()
    signal = check_signal(name, logits)

    directory = os.path.join(outdir, name)
    os.makedirs(directory, exist_ok=True)
    stamp = os.path.join(directory, "stamp")
    if os.path.exists(stamp):
        os.remove(stamp)
    write_safetensors(os.path.join(directory, "weights.safetensors"), model.state_dict())
    np.save(os.path.join(directory, "input.npy"), images.numpy().astype("<f4"))
    np.save(os.path.join(directory, "logits.npy"), logits.numpy().astype("<f4"))
    seconds = time.time() - start
    info = {"name": name, "height": height, "width": width, "seed": seed, "seconds": round(seconds, 2),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "blas": blas(),
            "threads": torch.get_num_threads(), **signal}
    with open(os.path.join(directory, "reference.json"), "w") as f:
        json.dump(info, f, indent=1)
    with open(stamp, "w") as f:
        f.write(script_hash() + "\n")
    print(f"{name:20s} {height}x{width}  {seconds:6.1f} s  max|logit| {signal['max_abs_logit']:.3g}  "
          f"correlation {signal['correlation']:.3f}  relative difference {signal['relative_difference']:.3f}",
          flush=True)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    outdir, names = argv[1], argv[2:] or list(RESOLUTIONS)
    unknown = [n for n in names if n not in RESOLUTIONS]
    if unknown:
        raise SystemExit(f"unknown network(s) {unknown}; known: {list(RESOLUTIONS)}")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    start = time.time()
    for name in names:
        make(name, outdir)
    print(f"total {time.time() - start:.1f} s for {len(names)} network(s); BLAS {blas()}", flush=True)


if __name__ == "__main__":
    main(sys.argv)
