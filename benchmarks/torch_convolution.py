"""Keras' PyTorch convolutions with and without layout copies, against plain PyTorch.

    KERAS_BACKEND=torch python benchmarks/torch_convolution.py \\
        [--encoder resnet18 | small_cnn] [--batch-size 256] [--repeats 5] \\
        [--json PATH]

One training-mode forward and backward pass of an encoder on a batch of 32x32
images, four ways, timed in turn within each repeat so that load drifting over
the run hits all of them alike:

- `keras`: the Keras encoder (`simclr_cifar10.resnet18_cifar` / `small_cnn`)
  with Keras' own PyTorch `conv` and `max_pool`, which copy each channels-last
  activation to channels-first (and `conv` back);
- `channels_last`: the same encoder inside
  `keras_contrastive.models.channels_last_convolutions()`;
- `fused_batch_norm`: inside that and `fused_batch_normalization()` (batch
  norm in PyTorch's fused kernels), as the library's training steps run it;
- `pytorch`: the same architecture in torch.nn (`_torch_networks.py`,
  channels-first tensors, as lightly's peer runs train it): the floor that
  Keras' layers could reach.

Prints the median and best seconds and the ratios against plain PyTorch (the
median of per-repeat ratios); `--json PATH` appends one record per way
(`_results.py`), rendered on docs/benchmarks.md.
"""

import argparse
import contextlib
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _results import append_jsonl  # noqa: E402
from _timing import timings  # noqa: E402
from simclr_cifar10 import resnet18_cifar, small_cnn  # noqa: E402

from keras_contrastive.models import (  # noqa: E402
    channels_last_convolutions,
    fused_batch_normalization,
)

WAYS = ("keras", "channels_last", "fused_batch_norm", "pytorch")


def _keras_pass(encoder, images, contexts):
    import torch

    x = torch.from_numpy(images)
    # A dense upstream gradient, as a loss gives.
    weights = torch.ones(encoder.compute_output_shape(images.shape))

    def run():
        encoder.zero_grad()
        with contextlib.ExitStack() as stack:
            for context in contexts:
                stack.enter_context(context())
            (encoder(x, training=True) * weights).sum().backward()

    return run


def _pytorch_pass(network, images):
    import torch

    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous() / 255
    network.train()

    def run():
        network.zero_grad()
        out = network(x)
        (out * torch.ones_like(out)).sum().backward()

    return run


def measure(encoder_name, batch_size, repeats, seed=0):
    """{way: [seconds of each repeat]}, the ways timed in turn each repeat."""
    import torch
    from _torch_networks import resnet18_cifar as torch_resnet18
    from _torch_networks import small_cnn as torch_small_cnn

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch_size, 32, 32, 3)).astype("float32")
    build = {"resnet18": resnet18_cifar, "small_cnn": small_cnn}[encoder_name]
    network = {"resnet18": torch_resnet18, "small_cnn": torch_small_cnn}
    torch.manual_seed(seed)
    runs = {
        "keras": _keras_pass(build(), images, ()),
        "channels_last": _keras_pass(build(), images, [channels_last_convolutions]),
        "fused_batch_norm": _keras_pass(
            build(), images, [channels_last_convolutions, fused_batch_normalization]
        ),
        "pytorch": _pytorch_pass(network[encoder_name]()[0], images),
    }
    for run in runs.values():  # warm-up
        run()
    seconds = {way: [] for way in WAYS}
    for _ in range(repeats):
        for way in WAYS:
            seconds[way] += timings(runs[way], warmup=0, repeats=1)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--encoder", choices=("resnet18", "small_cnn"), default="resnet18"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="append the results to this file")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "torch":
        parser.error("this benchmark times PyTorch: run it with KERAS_BACKEND=torch")
    seconds = measure(args.encoder, args.batch_size, args.repeats)
    floor = np.array(seconds["pytorch"])
    print(
        f"{args.encoder}, batch {args.batch_size}, 32x32, forward + backward, "
        f"{args.repeats} repeats"
    )
    print(f"{'way':<14} {'s (median)':>10} {'s (best)':>9} {'x PyTorch':>9}")
    records = []
    for way in WAYS:
        times = np.array(seconds[way])
        ratio = float(np.median(times / floor))
        print(f"{way:<14} {np.median(times):>10.3f} {times.min():>9.3f} {ratio:>9.2f}")
        records.append(
            {
                "benchmark": "torch_convolution",
                "way": way,
                "encoder": args.encoder,
                "batch_size": args.batch_size,
                "repeats": args.repeats,
                "median_s": float(np.median(times)),
                "best_s": float(times.min()),
                "vs_pytorch": ratio,
            }
        )
    if args.json:
        append_jsonl(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
