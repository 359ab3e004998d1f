"""The peer figures of `simclr_cifar10.py`: the same recipe and step in lightly.

Imported only when `lightly` (with `torch` and `torchvision`) is importable. Plain
PyTorch training loop around lightly's `SimCLRTransform` (no blur, colour strength
0.5, crop scale (0.08, 1)), `SimCLRProjectionHead` and `NTXentLoss`; the encoders
mirror `simclr_cifar10.small_cnn` / `resnet18_cifar`. kNN accuracy is computed with
`keras_contrastive.evaluation.knn_classify` on the extracted features, so both
libraries are scored by one kNN.
"""

import os
import time

import numpy as np
import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from PIL import Image
from torch import nn

from keras_contrastive.evaluation import knn_accuracy

WORKERS = min(2, os.cpu_count() or 1)


def _small_cnn():
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


def _resnet18_cifar():
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    channels = 64
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            layers.append(_Block(channels, filters, 2 if stage and not block else 1))
            channels = filters
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 512


class _Views(torch.utils.data.Dataset):
    """uint8 images -> the two augmented views of lightly's SimCLRTransform."""

    def __init__(self, images):
        self.images = images
        self.transform = SimCLRTransform(
            input_size=32, cj_strength=0.5, gaussian_blur=0.0, min_scale=0.08
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i]))


def _features(backbone, images):
    # Same normalisation as lightly's transform (ImageNet mean and std).
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    backbone.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), 512):
            x = torch.from_numpy(images[start : start + 512]).permute(0, 3, 1, 2)
            out.append(backbone((x.float() / 255 - mean) / std).numpy())
    backbone.train()
    return np.concatenate(out)


def _train(backbone, dim, images, epochs, batch_size, max_steps=None):
    head = SimCLRProjectionHead(dim, dim, 128)
    criterion = NTXentLoss(temperature=0.5)
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    loader = torch.utils.data.DataLoader(
        _Views(images),
        batch_size=batch_size,
        shuffle=True,
        drop_last=False,
        num_workers=WORKERS,
    )
    steps, start = 0, time.perf_counter()
    for _ in range(epochs):
        for view_a, view_b in loader:
            loss = criterion(head(backbone(view_a)), head(backbone(view_b)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if max_steps and steps >= max_steps:
                return time.perf_counter() - start, steps
    return time.perf_counter() - start, steps


def recipe(x_train, y_train, x_eval, y_eval, epochs=20, seed=0):
    torch.manual_seed(seed)
    backbone, dim = _small_cnn()
    before = knn_accuracy(
        _features(backbone, x_train), y_train, _features(backbone, x_eval), y_eval
    )
    seconds, _ = _train(backbone, dim, x_train, epochs, 256)
    after = knn_accuracy(
        _features(backbone, x_train), y_train, _features(backbone, x_eval), y_eval
    )
    return {"knn_random_init": before, "knn_trained": after, "train_seconds": seconds}


def throughput(images, steps=3, warmup=1, batch_size=256):
    torch.manual_seed(0)
    backbone, dim = _resnet18_cifar()
    _train(backbone, dim, images, 1, batch_size, max_steps=warmup)
    seconds, done = _train(backbone, dim, images, 1, batch_size, max_steps=steps)
    return {"images_per_second": done * batch_size / seconds}
