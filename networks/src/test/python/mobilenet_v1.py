"""MobileNet V1 (Howard et al. 2017, Table 1) in PyTorch, with the parameter names Squall uses.

torchvision has no MobileNet V1, so this file is the reference definition that Squall's
`mobilenet_v1` builder must match name for name (state_dict keys) and number for number.

    features.0            conv3x3/2 3->32, BN, ReLU
    features.1..13        depthwise 3x3 (stride s), BN, ReLU, pointwise 1x1, BN, ReLU
                          indices in the Sequential: 0 dw conv, 1 BN, 2 ReLU, 3 pw conv, 4 BN, 5 ReLU
    avgpool, flatten
    classifier            Linear(1024*alpha, num_classes)

Channels are int(c * alpha) as in the paper (32*0.25 = 8); BN eps 1e-5 (PyTorch's default).
"""
import torch.nn as nn

# (output channels, stride) of the 13 depthwise-separable blocks, from the paper's Table 1.
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def _conv_bn_relu(cin, cout, kernel, stride, groups):
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class MobileNetV1(nn.Module):
    def __init__(self, alpha=1.0, num_classes=1000):
        super().__init__()
        c = int(32 * alpha)
        layers = [nn.Sequential(*_conv_bn_relu(3, c, 3, 2, 1))]
        for out, stride in BLOCKS:
            o = int(out * alpha)
            layers.append(nn.Sequential(*_conv_bn_relu(c, c, 3, stride, c), *_conv_bn_relu(c, o, 1, 1, 1)))
            c = o
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def mobilenet_v1(alpha=1.0, num_classes=1000):
    return MobileNetV1(alpha, num_classes)


if __name__ == "__main__":
    m = mobilenet_v1()
    print(sum(p.numel() for p in m.parameters()))
