"""Writes the activation plugin's references into the directory given as argument:
inputs and PyTorch's outputs as .npy (evaluated in float64 and rounded once to float32, so they
are the functions' true values), and an ONNX model with Mish and Gelu nodes.

Exit status 3: PyTorch is missing (apt-get install python3-torch python3-onnx)."""
import sys
from pathlib import Path

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    import onnx
    from onnx import helper, TensorProto
except ImportError as e:
    print(e)
    sys.exit(3)

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(2019)

# Random values of every scale, plus the places where formulas break: zero, both tails, overflow.
special = np.array([0.0, -0.0, 1e-6, -1e-6, 0.5, -0.5, 0.70710677, -0.70710677, 1.0, -1.0, 3.0, -3.0, 5.0, -5.0,
                    9.0, -9.0, 19.9, 20.0, 20.1, -20.0, 30.0, -30.0, 88.0, -88.0, 100.0, -100.0, 1e4, -1e4],
                   dtype=np.float32)
random = np.concatenate([rng.normal(0, 1, 3000), rng.normal(0, 6, 3000), rng.uniform(-0.01, 0.01, 500)])
x = np.concatenate([special, random.astype(np.float32)])
x = np.resize(x, (2, 3, 29, 37)).astype(np.float32)
np.save(out / "x.npy", x)

x64 = torch.from_numpy(x).double()
refs = {
    "mish": F.mish(x64),
    "gelu": F.gelu(x64),
    "gelu_tanh": F.gelu(x64, approximate="tanh"),
    "hardtanh": F.hardtanh(x64),
    "hardtanh_0.5_2": F.hardtanh(x64, min_val=-0.5, max_val=2.0),
}
for name, y in refs.items():
    np.save(out / (name + ".npy"), y.float().numpy())

# Debian's onnx 1.12 predates Mish (opset 18) and Gelu (opset 20): the nodes are written with the
# helper API and no checker, as an exporter writes a custom op, in an opset-17 model.
nodes = [helper.make_node("Mish", ["x"], ["m"], name="mish"),
         helper.make_node("Gelu", ["m"], ["y"], name="gelu", approximate="tanh")]
graph = helper.make_graph(nodes, "mish_gelu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 29, 37])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3, 29, 37])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="references.py")
onnx.save(model, out / "mish_gelu.onnx")
np.save(out / "mish_gelu.npy", F.gelu(F.mish(x64), approximate="tanh").float().numpy())
(out / "done").write_text("ok\n")
