"""Where the step-1 gradients of two float32 programs part: the ReLU kinks.

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/lockstep_kinks.py \
        [--method simclr|moco]

`lockstep_torch.py` finds our step-1 gradients 1e-3 to 5e-3 (relative, median
over the weights) from PyTorch's in float64 on some backends and batches, and
PyTorch's own float32 program as far on others. A ReLU's derivative jumps at
zero, and so does a max-pool's (which input is the largest): a pre-activation
within float32 rounding of zero, or two inputs of a pooling window within
rounding of each other, can fall on different sides in two programs whose
forward passes agree to 1e-7. The function is the same; the subgradient chosen
at the kink is not.

This script tests that reading on one batch (the recipe's networks and views,
as `lockstep_torch.py` builds them). It records every ReLU mask and max-pool
choice of a float32 forward pass, ours (the library's training step, through
`fit`) and PyTorch's, counts where they differ from PyTorch's float64 pass, and
then runs the float64 pass again with the recorded choices forced on it (the
masks multiplied in, the pooled elements gathered at the recorded positions):
the same float64 arithmetic, the float32 program's subgradient. If the kinks
are the whole difference, each float32 gradient's gap to its forced float64
counterpart falls to float32 rounding (~1e-6).

Ours is recorded on the PyTorch and TensorFlow backends (TensorFlow's step run
eagerly for it, which is what the printed gradient is then from); JAX traces
its step, so only PyTorch's program is recorded there. Which elements cross a
kink depends on the order of float32 sums, and so on the thread count:
`OMP_NUM_THREADS=1` reproduces the figures on docs/methods.md.
"""

import argparse
import contextlib
import copy
import sys

import keras
import numpy as np
import torch
from lockstep_torch import (
    MIRRORS,
    _gradients,
    _ours,
    _relative,
    add_common_arguments,
    our_gradients,
    seeded_views,
)
from torch import nn

_KINKS = (nn.ReLU, nn.MaxPool2d)
_KERAS_KINKS = (
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.MaxPooling2D,
)


def _pool(x):
    """2x2 max-pool with the flat positions (per channel) it picked."""
    return nn.functional.max_pool2d(x, 2, return_indices=True)


def _choice(module, x):
    """The kink choice `module` makes on `x` (NCHW or (N, C))."""
    return x > 0 if isinstance(module, nn.ReLU) else _pool(x)[1]


def _forced(module, x, choice):
    """`module` on `x`, with `choice` in place of its own."""
    if isinstance(module, nn.ReLU):
        return x * choice.to(x.dtype)
    picked = x.flatten(2).gather(2, choice.flatten(2))
    return picked.view(choice.shape)


@contextlib.contextmanager
def _patched(classes, name, replacement):
    """`classes`' method `name` replaced by `replacement(self, original, *args)`."""
    originals = {cls: (getattr(cls, name), name in vars(cls)) for cls in classes}
    for cls, (original, _) in originals.items():

        def method(self, *args, _original=original, **kwargs):
            return replacement(self, _original, *args, **kwargs)

        setattr(cls, name, method)
    try:
        yield
    finally:
        for cls, (original, own) in originals.items():
            if own:
                setattr(cls, name, original)
            else:  # inherited: remove the override
                delattr(cls, name)


def _kink_modules(mirror):
    return [m for m in nn.ModuleList(mirror.trained).modules() if isinstance(m, _KINKS)]


def _mirror_pass(mirror, batch, forced=None):
    """The mirror's loss and gradients on `batch`, and the kink choices of its
    trained networks (call by call, per module); with `forced`, those choices
    are imposed instead of made."""
    modules = {id(m): i for i, m in enumerate(_kink_modules(mirror))}
    taken = [[] for _ in modules]
    queued = None if forced is None else [list(calls) for calls in forced]

    def forward(self, original, x):
        if id(self) not in modules:  # a key network's module
            return original(self, x)
        i = modules[id(self)]
        if queued is None:
            taken[i].append(_choice(self, x.detach()))
            return original(self, x)
        return _forced(self, x, queued[i].pop(0))

    with _patched(_KINKS, "forward", forward):
        _, grads = _gradients(mirror, batch)
    return grads, taken


def _kink_layers(model):
    layers = []
    for network in (model.encoder, model.projection_head):
        for layer in network._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.Activation):
                if keras.activations.serialize(layer.activation) != "relu":
                    continue
            if isinstance(layer, _KERAS_KINKS):
                layers.append(layer)
    return layers


def _our_pass(model, batch, modules):
    """Our gradients (`our_gradients`), and the kink choices its step's
    float32 inputs imply, in the mirror's layout (`modules`: the mirror's kink
    modules, in the same order)."""
    layers = {id(layer): i for i, layer in enumerate(_kink_layers(model))}
    inputs = [[] for _ in layers]

    def call(self, original, x, *args, **kwargs):
        if id(self) in layers:
            inputs[layers[id(self)]].append(keras.ops.convert_to_numpy(x))
        return original(self, x, *args, **kwargs)

    step = model.train_step

    def train_step(*args):  # the calls of the step only, not of the build
        for calls in inputs:
            calls.clear()
        return step(*args)

    model.train_step = train_step
    eager = keras.backend.backend() == "tensorflow"  # to record its inputs
    with _patched(_KERAS_KINKS, "call", call):
        grads = [g for _, g in our_gradients(model, batch, run_eagerly=eager)]
    del model.train_step
    taken = []
    for module, calls in zip(modules, inputs):
        taken.append([_choice(module, torch.from_numpy(_nchw(x))) for x in calls])
    return grads, taken


def _nchw(x):
    """NHWC activations -> NCHW (dense ones unchanged)."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x)


def _flips(modules, taken, reference):
    """How many ReLU masks and how many max-pool picks differ between two
    passes."""
    counts = {nn.ReLU: 0, nn.MaxPool2d: 0}
    for module, ours, theirs in zip(modules, taken, reference):
        differ = sum(int((a != b).sum()) for a, b in zip(ours, theirs))
        counts[type(module)] += differ
    return counts[nn.ReLU], counts[nn.MaxPool2d]


def _gap(grads, reference):
    gaps = [_relative(g, r) for g, r in zip(grads, reference) if r is not None]
    return float(np.median(gaps)), float(np.max(gaps))


def kink_check(model, views, batch_size, mirror_class):
    """Prints, for each float32 program, its kink flips against float64 and its
    gradient gap to float64 as made and as forced to its choices."""
    batch = views[:batch_size]
    # Copied from the model's weights before our step moves them.
    initial = mirror_class(model)

    def mirror(dtype=torch.float32):
        return copy.deepcopy(initial).to(dtype)

    g64, c64 = _mirror_pass(mirror(torch.float64), batch)
    modules = _kink_modules(initial)
    programs = {"PyTorch float32": _mirror_pass(mirror(), batch)}
    if keras.backend.backend() == "jax":
        print("ours: JAX traces its step, so its kink choices are not recorded")
    else:
        programs["ours"] = _our_pass(model, batch, modules)
    relus = sum(
        int(c.numel())
        for module, calls in zip(modules, c64)
        if isinstance(module, nn.ReLU)
        for c in calls
    )
    print(f"{relus} ReLU pre-activations in the trained networks' pass")
    for label, (grads, taken) in programs.items():
        masks, picks = _flips(modules, taken, c64)
        forced, _ = _mirror_pass(mirror(torch.float64), batch, taken)
        plain, plain_max = _gap(grads, g64)
        kinked, kinked_max = _gap(grads, forced)
        print(f"{label}: {masks} ReLU masks and {picks} max-pool picks differ "
              f"from float64's; gradient gap to float64 median {plain:.2e} "
              f"(largest {plain_max:.2e}), to float64 forced to its choices "
              f"{kinked:.2e} ({kinked_max:.2e})")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    views = seeded_views(args, 1)
    batch_norm = {"batch_norm_momentum": 0.9, "batch_norm_epsilon": 1e-5}
    print(f"backend {keras.backend.backend()}, batch {args.batch_size}, "
          f"method {args.method}, seed {args.seed}")  # fmt: skip
    model = _ours(batch_norm, args.method)
    kink_check(model, views, args.batch_size, MIRRORS[args.method])


if __name__ == "__main__":
    sys.exit(main())
