"""torchvision's networks exported by PyTorch's own ONNX exporter, for TorchExportTest.

    /usr/bin/python3 export_torchvision_onnx.py OUTDIR OPSETS name[:HxW[:legacy_head]] ...

OPSETS is a comma-separated list (13,17). For each network this writes OUTDIR/<name>/
    opset<N>.onnx   torch.onnx.export of the model in eval mode. Below opset 17 with
                    TrainingMode.EVAL and constant folding (BatchNorm folded into the convs by the
                    exporter) and a fixed batch size; from 17 with TrainingMode.PRESERVE and no
                    constant folding (BatchNormalization nodes kept, as torch advises for PRESERVE)
                    and a free batch size, so both kinds of file a user may have are covered
    legacy_head.onnx   with :legacy_head, the same model with torchvision 0.3's MobileNetV2 head,
                    x.mean([2, 3]) (ReduceMean), then x.view(x.size(0), -1) as many hand-written
                    models have it (Shape, Gather, Unsqueeze, Concat, Reshape), at opset 13 with a
                    free batch size; its logits are the same as the model's
    input.npy       float32 [2, 3, H, W]: two synthetic images (make_references.synthetic_images)
    logits.npy      float32 [2, 1000]: PyTorch's output for them
    export.json     resolution, seed, opsets, versions, the signal checks
    stamp           written last: the opsets, the spec as given, then the SHA-256 of this script,
                    make_references.py and mobilenet_v1.py

The weights are make_references.py's calibrated random weights (see its randomize), so the
logits depend clearly on the input. Exits with status 3 when torch, torchvision or onnx cannot be
imported, so that the Java test can skip (or fail, in CI) with a clear message.
"""
import hashlib
import json
import os
import sys
import time
import zlib

try:
    import numpy as np
    import onnx
    import torch
    import torchvision
except ImportError as e:
    print(f"cannot import {e.name}: {e}", file=sys.stderr)
    sys.exit(3)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_references  # noqa: E402  (the weight generator and images PyTorchParityTest uses)

FREE_BATCH_FROM_OPSET = 17
LEGACY_HEAD_OPSET = 13


class LegacyHead(torch.nn.Module):
    """A torchvision classifier with the head older code has: mean over H and W, then a view that
    keeps the batch size, which torch.onnx.export writes as shape arithmetic on the input's Shape."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        x = self.model.features(x)
        x = x.mean([2, 3], keepdim=True)
        x = x.view(x.size(0), -1)
        return self.model.classifier(x)


def script_hash():
    digest = hashlib.sha256()
    for file in ("export_torchvision_onnx.py", "make_references.py", "mobilenet_v1.py"):
        with open(os.path.join(HERE, file), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def export(spec, name, height, width, legacy_head, opsets, outdir):
    start = time.time()
    seed = zlib.crc32(name.encode())
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = make_references.build(name)
    images = make_references.synthetic_images(2, height, width, generator)
    make_references.randomize(model, images, generator)
    with torch.no_grad():
        logits = model(images).float()
    signal = make_references.check_signal(name, logits)

    directory = os.path.join(outdir, name)
    os.makedirs(directory, exist_ok=True)
    stamp = os.path.join(directory, "stamp")
    if os.path.exists(stamp):
        os.remove(stamp)
    sizes = {}
    for opset in opsets:
        path = os.path.join(directory, f"opset{opset}.onnx")
        user_style = opset >= FREE_BATCH_FROM_OPSET
        axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if user_style else None
        mode = torch.onnx.TrainingMode.PRESERVE if user_style else torch.onnx.TrainingMode.EVAL
        torch.onnx.export(model, images, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes=axes, do_constant_folding=not user_style, training=mode)
        onnx.checker.check_model(path)
        sizes[opset] = os.path.getsize(path)
    if legacy_head:
        path = os.path.join(directory, "legacy_head.onnx")
        legacy = LegacyHead(model).eval()
        with torch.no_grad():
            same = torch.equal(legacy(images).float(), logits)
        if not same:
            raise SystemExit(f"{name}: the legacy head changes the logits")
        torch.onnx.export(legacy, images, path, opset_version=LEGACY_HEAD_OPSET, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
        onnx.checker.check_model(path)
        sizes["legacy_head"] = os.path.getsize(path)
    np.save(os.path.join(directory, "input.npy"), images.numpy().astype("<f4"))
    np.save(os.path.join(directory, "logits.npy"), logits.numpy().astype("<f4"))
    seconds = time.time() - start
    info = {"name": name, "height": height, "width": width, "seed": seed, "opsets": opsets, "bytes": sizes,
            "seconds": round(seconds, 2), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "onnx": onnx.__version__, **signal}
    with open(os.path.join(directory, "export.json"), "w") as f:
        json.dump(info, f, indent=1)
    with open(stamp, "w") as f:
        f.write(stamp_text(opsets, spec))
    print(f"{name:20s} {height}x{width} opsets {opsets}  {seconds:6.1f} s  "
          f"max|logit| {signal['max_abs_logit']:.3g}", flush=True)


def stamp_text(opsets, spec):
    return f"{','.join(map(str, opsets))} {spec} {script_hash()}\n"


def main(argv):
    if len(argv) < 4:
        raise SystemExit(__doc__)
    outdir = argv[1]
    opsets = [int(o) for o in argv[2].split(",")]
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for spec in argv[3:]:
        name, size, *flags = spec.split(":")
        if name not in make_references.RESOLUTIONS:
            raise SystemExit(f"unknown network {name!r}; known: {list(make_references.RESOLUTIONS)}")
        if flags not in ([], ["legacy_head"]):
            raise SystemExit(f"unknown flags {flags} in {spec!r}; the one flag is legacy_head")
        height, width = map(int, size.split("x")) if size else make_references.RESOLUTIONS[name]
        export(spec, name, height, width, bool(flags), opsets, outdir)


if __name__ == "__main__":
    main(sys.argv)
