"""A small residual network for ``fewbits.training.lowp``: convolution, batch norm, ReLU and
skip connections (one of them a strided 1x1 projection), global average pooling, a linear head.

``resnet_small(input_shape, n_classes)`` is plain PyTorch: the residual additions, batch norm
and pooling run in float under ``lowp`` (an accelerator's vector unit), the convolutions and
the head under the MAC contract.
"""

import torch
from torch import nn
from torch.nn import functional as F


def _image_shape(input_shape):
    if len(input_shape) == 3:
        return tuple(input_shape)
    n = int(torch.tensor(input_shape).prod())
    s = int(round(n ** 0.5))
    return (1, s, s)


class Block(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.skip is None else self.skip(x)))


class ResNetSmall(nn.Module):
    def __init__(self, input_shape, n_classes, width=8):
        super().__init__()
        c, h, w = _image_shape(input_shape)
        self.shape = (c, h, w)
        self.stem = nn.Sequential(nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.block1 = Block(width, width)
        self.block2 = Block(width, 2 * width, stride=2)
        self.head = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        x = x.reshape(x.shape[0], *self.shape)
        h = self.block2(self.block1(self.stem(x)))
        return self.head(h.mean(dim=(2, 3)))


def resnet_small(input_shape, n_classes) -> nn.Module:
    return ResNetSmall(input_shape, n_classes)
