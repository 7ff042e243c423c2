"""Writes the weights-loader fixtures with Debian's torch (not with Squall's code).

Usage: /usr/bin/python3 weights_fixtures.py OUT_DIR

For each state dict it writes the same tensors as a zip .pth (torch.save), a legacy .pth
(_use_new_zipfile_serialization=False) and a safetensors file (written by hand below, because the
`safetensors` package is not installed), plus NAME_expected.npz: every float tensor as float32,
written by numpy, in state-dict order, without num_batches_tracked. The Java tests compare what
they load from each format with the .npz.
"""
import json
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch
import torchvision

SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32",
}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, state):
    """The format by its spec: u64 little-endian header length, JSON header, raw data."""
    header, blobs, offset = OrderedDict(), [], 0
    header["__metadata__"] = {"format": "pt", "writer": "weights_fixtures.py"}
    for name, t in state.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def write_expected(path, state):
    expected = OrderedDict((name, t.detach().float().numpy()) for name, t in state.items()
                           if t.is_floating_point())
    np.savez(path, **expected)


def write_all(out, name, state):
    torch.save(state, os.path.join(out, name + "_zip.pth"))
    torch.save(state, os.path.join(out, name + "_legacy.pth"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(out, name + ".safetensors"), state)
    write_expected(os.path.join(out, name + "_expected.npz"), state)


def small_state():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    bn = torch.nn.BatchNorm2d(4)
    bn.train()
    bn(conv(torch.randn(2, 3, 8, 8)))  # real running statistics and num_batches_tracked = 1
    fc = torch.nn.Linear(8, 5)
    big = torch.randn(4, 6)
    state = OrderedDict()
    for prefix, module in (("conv", conv), ("bn", bn), ("fc", fc)):
        for key, value in module.state_dict().items():
            state[prefix + "." + key] = value
    state["half.weight"] = torch.randn(3, 4).half()
    state["bf16.weight"] = torch.randn(2, 5).bfloat16()
    state["double.buffer"] = torch.randn(3, dtype=torch.float64)
    state["view.row"] = big[2]            # offset 12 into big's storage
    state["view.rows"] = big[1:3]         # offset 6, shares the storage with view.row
    state["fc_tied.weight"] = state["fc.weight"]  # the same tensor under two names
    state["scale"] = torch.tensor(0.5)    # rank 0
    assert state["view.row"].storage_offset() == 12
    return state


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    small = small_state()
    write_all(out, "small", small)

    # Pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL), as newer code may write.
    torch.save(small, os.path.join(out, "small_protocol4_zip.pth"), pickle_protocol=4)
    torch.save(small, os.path.join(out, "small_protocol4_legacy.pth"), pickle_protocol=4,
               _use_new_zipfile_serialization=False)
    # nn.Parameters pickle through torch._utils._rebuild_parameter.
    parameters = OrderedDict((k, torch.nn.Parameter(v, requires_grad=False) if v.is_floating_point() else v)
                             for k, v in small.items())
    torch.save(parameters, os.path.join(out, "small_parameters_zip.pth"))

    # Training scripts wrap the state dict; both wrappers, one per layout.
    torch.save({"state_dict": small, "epoch": 3, "arch": "small"}, os.path.join(out, "small_wrapped_zip.pth"))
    torch.save({"model": small, "optimizer": None}, os.path.join(out, "small_wrapped_legacy.pth"),
               _use_new_zipfile_serialization=False)

    big = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({"w": big.t()}, os.path.join(out, "noncontiguous.pth"))
    torch.save({"w": torch.ones(2), "index": torch.arange(3)}, os.path.join(out, "int_tensor.pth"))

    nonfinite = OrderedDict(w=torch.tensor([1.0, float("nan"), float("inf"), -float("inf")]))
    torch.save(nonfinite, os.path.join(out, "nonfinite_zip.pth"))
    write_safetensors(os.path.join(out, "nonfinite.safetensors"), nonfinite)

    class Payload:  # what a malicious checkpoint looks like: unpickling it would run a command
        def __reduce__(self):
            return os.system, ("touch " + os.path.join(out, "pwned"),)

    torch.save({"w": torch.ones(2), "payload": Payload()}, os.path.join(out, "evil_zip.pth"))
    torch.save({"w": torch.ones(2), "payload": Payload()}, os.path.join(out, "evil_legacy.pth"),
               _use_new_zipfile_serialization=False)

    torch.manual_seed(1)
    mobilenet = torchvision.models.mobilenet_v2()  # random weights: no download
    write_all(out, "mobilenet_v2", mobilenet.state_dict())


if __name__ == "__main__":
    main()
