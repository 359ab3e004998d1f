"""The peer figures of `simclr_cifar10.py` and `methods_cifar10.py` in lightly.

Imported only when `lightly` (with `torch` and `torchvision`) is importable. Plain
PyTorch training loop around lightly's `SimCLRTransform` (no blur, colour strength
0.5 unless given, crop scale (0.08, 1)) and, per method, lightly's modules for the
recipe of `methods_cifar10.py`:

- `simclr`: `SimCLRProjectionHead(256, 256, 128)`, `NTXentLoss(temperature=0.5)`;
- `moco`: the same head and a momentum copy of backbone and head
  (`update_momentum`, 0.99), `NTXentLoss(temperature=0.2,
  memory_bank_size=(4096, 128))` (lightly's MoCo queue);
- `byol`: `BYOLProjectionHead(256, 256, 128)`, `BYOLPredictionHead(128, 256, 128)`,
  `NegativeCosineSimilarity`, symmetric, momentum `cosine_schedule(step, total,
  0.99, 1)`.

The encoders mirror `simclr_cifar10.small_cnn` / `resnet18_cifar`. kNN accuracy
is computed with `keras_contrastive.evaluation.knn_accuracy` on the extracted
features, so both libraries are scored by one kNN.
"""

import copy
import os
import time

import numpy as np
import torch
from _torch_networks import resnet18_cifar, small_cnn
from lightly.loss import NegativeCosineSimilarity, NTXentLoss
from lightly.models.modules import (
    BYOLPredictionHead,
    BYOLProjectionHead,
    SimCLRProjectionHead,
)
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import SimCLRTransform
from lightly.utils.scheduler import cosine_schedule
from PIL import Image
from torch import nn

from keras_contrastive.evaluation import knn_accuracy
from keras_contrastive.models.backbones import _TORCH_MEAN, _TORCH_STD

WORKERS = min(2, os.cpu_count() or 1)

# How the pixels reach lightly's backbone: its transform's own `Normalize` (ImageNet
# mean and standard deviation), or centred only, (x - mean) / 255 as the
# `--input-norm centred` encoders of `conventions_cifar10.py`.
INPUT_NORMS = {
    "imagenet": {"mean": list(_TORCH_MEAN), "std": list(_TORCH_STD)},
    "centred": {"mean": list(_TORCH_MEAN), "std": [1.0, 1.0, 1.0]},
}


class _Views(torch.utils.data.Dataset):
    """uint8 images -> the two augmented views of lightly's SimCLRTransform."""

    def __init__(self, images, color_strength=0.5, input_norm="imagenet"):
        self.images = images
        self.transform = SimCLRTransform(
            input_size=32,
            cj_strength=color_strength,
            gaussian_blur=0.0,
            min_scale=0.08,
            normalize=INPUT_NORMS[input_norm],
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i]))


def _features(backbone, images, input_norm="imagenet"):
    # The same normalisation as the training views'.
    mean = torch.tensor(INPUT_NORMS[input_norm]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(INPUT_NORMS[input_norm]["std"]).view(1, 3, 1, 1)
    backbone.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), 512):
            x = torch.from_numpy(images[start : start + 512]).permute(0, 3, 1, 2)
            out.append(backbone((x.float() / 255 - mean) / std).numpy())
    backbone.train()
    return np.concatenate(out)


class _SimCLR(nn.Module):
    def __init__(self, backbone, dim):
        super().__init__()
        self.backbone = backbone
        self.head = SimCLRProjectionHead(dim, dim, 128)
        self.criterion = NTXentLoss(temperature=0.5)

    def loss(self, view_a, view_b, progress):
        z_a, z_b = (self.head(self.backbone(v)) for v in (view_a, view_b))
        return self.criterion(z_a, z_b)


def _momentum_copy(module):
    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


class _MoCo(nn.Module):
    def __init__(self, backbone, dim):
        super().__init__()
        self.backbone = backbone
        self.head = SimCLRProjectionHead(dim, dim, 128)
        self.backbone_momentum = _momentum_copy(backbone)
        self.head_momentum = _momentum_copy(self.head)
        self.criterion = NTXentLoss(temperature=0.2, memory_bank_size=(4096, 128))

    def loss(self, view_a, view_b, progress):
        update_momentum(self.backbone, self.backbone_momentum, m=0.99)
        update_momentum(self.head, self.head_momentum, m=0.99)
        query = self.head(self.backbone(view_a))
        with torch.no_grad():
            key = self.head_momentum(self.backbone_momentum(view_b))
        return self.criterion(query, key)


class _BYOL(nn.Module):
    def __init__(self, backbone, dim):
        super().__init__()
        self.backbone = backbone
        self.head = BYOLProjectionHead(dim, 256, 128)
        self.predictor = BYOLPredictionHead(128, 256, 128)
        self.backbone_momentum = _momentum_copy(backbone)
        self.head_momentum = _momentum_copy(self.head)
        self.criterion = NegativeCosineSimilarity()

    def loss(self, view_a, view_b, progress):
        momentum = cosine_schedule(progress[0], progress[1], 0.99, 1.0)
        update_momentum(self.backbone, self.backbone_momentum, m=momentum)
        update_momentum(self.head, self.head_momentum, m=momentum)
        views = (view_a, view_b)
        p_a, p_b = (self.predictor(self.head(self.backbone(v))) for v in views)
        with torch.no_grad():
            t_a, t_b = (self.head_momentum(self.backbone_momentum(v)) for v in views)
        return 0.5 * (self.criterion(p_a, t_b) + self.criterion(p_b, t_a))


METHODS = {"simclr": _SimCLR, "moco": _MoCo, "byol": _BYOL}


def _train(
    method,
    images,
    epochs,
    batch_size,
    max_steps=None,
    drop_last=True,
    color_strength=0.5,
    input_norm="imagenet",
):
    """Adam 1e-3 over `epochs`; returns (seconds, steps, median step seconds).

    `drop_last=True` as in lightly's own examples (and our `fit`'s default)."""
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    loader = torch.utils.data.DataLoader(
        _Views(images, color_strength, input_norm),
        batch_size=batch_size,
        shuffle=True,
        drop_last=drop_last,
        num_workers=WORKERS,
        # Started once, and not by fork: the parent runs JAX or TF threads.
        persistent_workers=WORKERS > 0,
        multiprocessing_context="spawn" if WORKERS > 0 else None,
    )
    total = epochs * len(loader)
    steps, durations, start = 0, [], time.perf_counter()
    for _ in range(epochs):
        last = None
        for view_a, view_b in loader:
            loss = method.loss(view_a, view_b, (steps, total))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            now = time.perf_counter()
            if last is not None:
                durations.append(now - last)
            last = now
            if max_steps and steps >= max_steps:
                break
    median = float(np.median(durations)) if durations else float("nan")
    return time.perf_counter() - start, steps, median


def recipe(
    x_train,
    y_train,
    x_eval,
    y_eval,
    epochs=20,
    seed=0,
    method="simclr",
    drop_last=True,
    color_strength=0.5,
    input_norm="imagenet",
):
    """kNN top-1 before and after lightly's `method` on the fixed recipe."""
    torch.manual_seed(seed)
    backbone, dim = small_cnn()

    def knn():
        return knn_accuracy(
            _features(backbone, x_train, input_norm),
            y_train,
            _features(backbone, x_eval, input_norm),
            y_eval,
        )

    before = knn()
    seconds, _, step = _train(
        METHODS[method](backbone, dim),
        x_train,
        epochs,
        256,
        drop_last=drop_last,
        color_strength=color_strength,
        input_norm=input_norm,
    )
    after = knn()
    return {
        "knn_random_init": before,
        "knn_trained": after,
        "train_seconds": seconds,
        "step_seconds": step,
    }


def throughput(images, steps=3, warmup=1, batch_size=256, encoder="resnet18"):
    """SimCLR training images per second, after `warmup` steps.

    `encoder`: "resnet18" or "small_cnn" (the recipe's)."""
    torch.manual_seed(0)
    backbone, dim = {"resnet18": resnet18_cifar, "small_cnn": small_cnn}[encoder]()
    method = _SimCLR(backbone, dim)
    _train(method, images, 1, batch_size, max_steps=warmup)
    # One step more than timed: the loader's first batch waits for its workers
    # to start, which `fit` (no worker processes) never does; the median
    # between-step time leaves that out.
    _, _, step = _train(method, images, 1, batch_size, max_steps=steps + 1)
    return {"images_per_second": batch_size / step, "seconds_per_step": step}
