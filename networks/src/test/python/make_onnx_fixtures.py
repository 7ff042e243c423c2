"""Writes the ONNX test fixtures in networks/src/test/resources/onnx/ (run with Debian's python3:
torch 1.13, onnx 1.12). Every expected value comes from PyTorch or from onnx's own numpy_helper,
never from Squall.

  tiny_opset{11,13,14,17}.onnx   a small CNN (conv/BN/ReLU6, depthwise/hardswish, squeeze-excite with
                                 SiLU and hardsigmoid, residual add, max/avg pooling, dropout, linear,
                                 a MatMul with a constant) exported by torch.onnx.export; opset 13 keeps
                                 BatchNormalization nodes (TrainingMode.PRESERVE), opset 17 has a free
                                 batch size
  tiny_input.pb, tiny_output.pb  the input [2,3,20,20] and PyTorch's logits
  tiny_external.onnx + .bin      tiny_opset13 with every initializer in external data
  tensors.onnx                   initializers in every encoding the reader handles
  tensors_expected.txt           per tensor: name, then numpy_helper.to_array's values as float32 bits (hex)
  unsupported.onnx               five nodes Squall cannot import (named in UNSUPPORTED below) among good ones
"""
import os
import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "onnx")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1), nn.SiLU(), nn.Conv2d(4, 8, 1),
                                nn.Hardsigmoid())
        self.pw = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8), nn.SiLU())
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.avgpool = nn.AvgPool2d(2, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.2), nn.Linear(8, 10))
        self.mix = nn.Parameter(torch.randn(10, 6))

    def forward(self, x):
        x = self.stem(x)
        x = self.dw(x)
        x = x * self.se(x)
        x = self.pw(x) + x
        x = self.avgpool(self.maxpool(x))
        return self.head(x) @ self.mix


UNSUPPORTED = ["leaky", "odd_attribute", "conv1d", "pool_with_indices", "clip_runtime_bounds"]


def tiny():
    torch.manual_seed(0)
    model = Tiny().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 20, 20)
    with torch.no_grad():
        y = model(x)
    for opset in (11, 13, 14, 17):
        path = os.path.join(OUT, "tiny_opset%d.onnx" % opset)
        mode = torch.onnx.TrainingMode.PRESERVE if opset == 13 else torch.onnx.TrainingMode.EVAL
        axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if opset == 17 else None
        torch.onnx.export(model, x, path, opset_version=opset, training=mode, input_names=["input"],
                          output_names=["logits"], dynamic_axes=axes)
        onnx.checker.check_model(onnx.load(path))
    onnx.save_tensor(numpy_helper.from_array(x.numpy(), "input"), os.path.join(OUT, "tiny_input.pb"))
    onnx.save_tensor(numpy_helper.from_array(y.numpy(), "logits"), os.path.join(OUT, "tiny_output.pb"))
    m = onnx.load(os.path.join(OUT, "tiny_opset13.onnx"))
    onnx.save_model(m, os.path.join(OUT, "tiny_external.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="tiny_external.bin", size_threshold=0)


def tensors():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((2, 3)).astype(np.float32)
    d = rng.standard_normal((3,)).astype(np.float64)
    h = rng.standard_normal((2, 2)).astype(np.float16)
    i = np.array([1, -1, 0, 7, 1 << 40], dtype=np.int64)
    inits = [
        numpy_helper.from_array(f, "float_raw"),
        helper.make_tensor("float_data", TensorProto.FLOAT, f.shape, f.flatten().tolist()),
        numpy_helper.from_array(d, "double_raw"),
        helper.make_tensor("double_data", TensorProto.DOUBLE, d.shape, d.tolist()),
        numpy_helper.from_array(h, "float16_raw"),
        helper.make_tensor("float16_int32_data", TensorProto.FLOAT16, h.shape, h.flatten().tolist()),
        helper.make_tensor("bfloat16_int32_data", TensorProto.BFLOAT16, (3,), [1.0, -2.5, 3.140625]),
        numpy_helper.from_array(np.float32(2.5), "float_scalar"),
        numpy_helper.from_array(i, "int64_raw"),
        helper.make_tensor("int64_data", TensorProto.INT64, i.shape, i.tolist()),
        helper.make_tensor("int32_data", TensorProto.INT32, (3,), [3, -4, 5]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Add", ["x", "float_raw"], ["y"], name="add")], "tensors", [x], [y],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, os.path.join(OUT, "tensors.onnx"))
    with open(os.path.join(OUT, "tensors_expected.txt"), "w") as out:
        out.write("# name dims : float32 bits of numpy_helper.to_array (ints: decimal values)\n")
        for t in inits:
            a = numpy_helper.to_array(t)
            dims = ",".join(str(v) for v in a.shape)
            if a.dtype.kind in "iu":
                vals = " ".join(str(v) for v in a.flatten())
            else:
                vals = " ".join("%08x" % v for v in a.astype(np.float32).flatten().view(np.uint32))
            out.write("%s [%s] : %s\n" % (t.name, dims, vals))


def unsupported():
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    w1 = numpy_helper.from_array(np.ones((4, 4, 3), np.float32), "w1")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c"], ["l"], name="leaky"),
        helper.make_node("Relu", ["l"], ["r"], name="relu", odd=3),
        helper.make_node("Relu", ["r"], ["r2"], name="odd_attribute", unknown_flag=1),
        helper.make_node("Reshape", ["r2", "shape3"], ["flat"], name="to3d"),
        helper.make_node("Conv", ["flat", "w1"], ["c1"], name="conv1d"),
        helper.make_node("MaxPool", ["r2"], ["p", "idx"], name="pool_with_indices", kernel_shape=[2, 2]),
        helper.make_node("Clip", ["p", "lo"], ["clipped"], name="clip_runtime_bounds"),
        helper.make_node("Add", ["clipped", "idx_f"], ["y"], name="add"),
    ]
    # 'relu' also carries an unknown attribute: it is the sixth problem, listed with the five named ones
    shape3 = numpy_helper.from_array(np.array([1, 4, -1], np.int64), "shape3")
    graph = helper.make_graph(nodes, "unsupported",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
                               helper.make_tensor_value_info("lo", TensorProto.FLOAT, []),
                               helper.make_tensor_value_info("idx_f", TensorProto.FLOAT, [1, 4, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("c1", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("idx", TensorProto.INT64, None)],
                              initializer=[w, w1, shape3])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, os.path.join(OUT, "unsupported.onnx"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    tiny()
    tensors()
    unsupported()
