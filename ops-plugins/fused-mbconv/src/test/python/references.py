"""Writes torchvision 0.14's EfficientNet MBConv blocks (torchvision.models.efficientnet.MBConv,
eval mode, BatchNorm eps 1e-3 as in EfficientNetV2) with random weights and BatchNorm statistics,
one input and the block's output into the directory given as argument, as .npy files
<case>_<state_dict key>.npy, <case>_x.npy and <case>_y.npy.

Exit status 3: PyTorch or torchvision is missing (apt-get install python3-torch python3-torchvision)."""
import sys
from functools import partial
from pathlib import Path

try:
    import numpy as np
    import torch
    from torch import nn
    from torchvision.models.efficientnet import MBConv, MBConvConfig
except ImportError as e:
    print(e)
    sys.exit(3)

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(2021)

#        name              t  k  s  in  out  height width
CASES = [("expand4_k3_s1", 4, 3, 1, 24, 24, 9, 11),
         ("expand6_k5_s2", 6, 5, 2, 16, 40, 13, 10),
         ("expand1_k3_s1", 1, 3, 1, 16, 16, 7, 7)]

for name, t, k, s, cin, cout, h, w in CASES:
    block = MBConv(MBConvConfig(t, k, s, cin, cout, 1), 0.0, partial(nn.BatchNorm2d, eps=1e-3))
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    block.eval()
    for key, value in block.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            np.save(out / f"{name}_{key}.npy", value.float().numpy())
    x = torch.randn(2, cin, h, w)
    with torch.no_grad():
        y = block(x)
    np.save(out / f"{name}_x.npy", x.numpy())
    np.save(out / f"{name}_y.npy", y.numpy())
(out / "done").write_text("ok\n")
