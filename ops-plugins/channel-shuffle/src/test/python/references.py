"""Writes channel_shuffle's references into the directory given as argument, as .npy:
torch.nn.functional.channel_shuffle on odd shapes, and a ShuffleNet unit (grouped 1x1 conv, ReLU,
channel shuffle, depthwise 3x3, grouped 1x1 conv, residual add, ReLU) with random weights.

Exit status 3: PyTorch is missing (apt-get install python3-torch)."""
import sys
from pathlib import Path

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(e)
    sys.exit(3)

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(2018)


def save(name, tensor):
    np.save(out / (name + ".npy"), tensor.detach().float().numpy())


for name, shape, groups in [("shuffle_a", (2, 12, 5, 7), 3), ("shuffle_b", (3, 12, 1, 1), 4),
                            ("shuffle_c", (2, 6, 5), 2), ("shuffle_d", (1, 10, 3, 2, 2), 5)]:
    x = torch.randn(*shape)
    save(name + "_x", x)
    save(name + "_y", F.channel_shuffle(x, groups))


class ShuffleUnit(nn.Module):
    """ShuffleNet's stride-1 unit (Zhang et al. 2018, Fig. 2b) with biases in place of BatchNorm."""

    def __init__(self, channels, groups):
        super().__init__()
        self.groups = groups
        self.compress = nn.Conv2d(channels, channels, 1, groups=groups)
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.expand = nn.Conv2d(channels, channels, 1, groups=groups)

    def forward(self, x):
        y = F.relu(self.compress(x))
        y = F.channel_shuffle(y, self.groups)
        y = self.depthwise(y)
        y = self.expand(y)
        return F.relu(y + x)


unit = ShuffleUnit(24, 3).eval()
for name, p in unit.state_dict().items():
    save("unit_" + name, p)
x = torch.randn(2, 24, 9, 11)
save("unit_x", x)
with torch.no_grad():
    save("unit_y", unit(x))
(out / "done").write_text("ok\n")
