"""A LeNet-5-style convnet for ``fewbits.training.lowp`` (any image input; digits' 8x8 or MNIST's 28x28).

``lenet(input_shape, n_classes)`` is the ``FILE.py:FUNCTION`` a user hands to fewbits:
plain PyTorch, nothing fewbits-specific.  Two 5x5 convolutions (the first padded so
small images keep their size) with ReLU and 2x2 max pooling, then 120-84-classes.
"""

import torch
from torch import nn


def _image_shape(input_shape):
    if len(input_shape) == 3:
        return tuple(input_shape)
    n = int(torch.tensor(input_shape).prod())
    s = int(round(n ** 0.5))
    return (1, s, s)


class LeNet(nn.Module):
    def __init__(self, input_shape, n_classes):
        super().__init__()
        c, h, w = _image_shape(input_shape)
        self.shape = (c, h, w)
        self.features = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=2 if h < 16 else 0), nn.ReLU(), nn.MaxPool2d(2),
        )
        with torch.no_grad():
            n = self.features(torch.zeros(1, c, h, w)).numel()
        self.classifier = nn.Sequential(nn.Linear(n, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, n_classes))

    def forward(self, x):
        x = x.reshape(x.shape[0], *self.shape)
        return self.classifier(self.features(x).flatten(1))


def lenet(input_shape, n_classes) -> nn.Module:
    return LeNet(input_shape, n_classes)
