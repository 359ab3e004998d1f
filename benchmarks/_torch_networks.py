"""The benchmarks' encoders in plain PyTorch (torch.nn), channels-first.

The same architectures as `simclr_cifar10.small_cnn` and `resnet18_cifar`, with
PyTorch's own layers: lightly's peer runs (`_lightly_peer.py`) train them, and
`torch_convolution.py` times the Keras versions against them.
"""

import torch
from torch import nn


def small_cnn():
    """`simclr_cifar10.small_cnn` in torch.nn; returns (network, feature width)."""
    layers, channels = [], 3
    for i, filters in enumerate((32, 64, 128, 256)):
        layers += [
            nn.Conv2d(channels, filters, 3, padding=1, bias=False),
            nn.BatchNorm2d(filters),
            nn.ReLU(inplace=True),
        ]
        if i < 3:
            layers.append(nn.MaxPool2d(2))
        channels = filters
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 256


class _Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet18_cifar():
    """`simclr_cifar10.resnet18_cifar` in torch.nn; returns (network, width)."""
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    channels = 64
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            layers.append(_Block(channels, filters, 2 if stage and not block else 1))
            channels = filters
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 512
