"""Lock-step check of the training step across Keras backends (BYOL, SimCLR).

    python benchmarks/lockstep_backends.py --method byol [--steps 200] \\
        [--color-strength 1.0] [--backends tensorflow,jax,torch]

`lockstep_torch.py` holds our SimCLR step against a plain PyTorch program; this
script holds the backends against each other, for the methods whose step draws
no random numbers (BYOL and SimCLR; MoCo's shuffled batch norm draws a
permutation from each backend's own generator). Every backend trains the same
model from the same weights on the same views:

- the recipe of `conventions_cifar10.py` (small CNN, `ProjectionHead((256,),
  128)`, BYOL's `PredictionHead((256,), 128)` and `MomentumSchedule(0.99, 1.0)`
  over the run, SimCLR at temperature 0.5, Adam 1e-3, batch 256, per-view
  batch norm), built and initialised once, in this process, and saved with
  `save_weights`; every backend loads that file;
- views made once by `SimCLRAugmenter((32, 32), blur=False)` at
  `--color-strength` and fed to every backend as a (batch, 32, 32, 6) array (the
  model's `augment` only splits the channels), so each backend's augmentation
  ops, tested on their own against torchvision, are out of the comparison;
- one subprocess per backend (`KERAS_BACKEND` is fixed per process) runs `fit`
  for `--steps` steps (at most one pass over the 50,000 images) and records
  each step's loss and the final weights, target network and batch-norm
  statistics included; then the same from weights perturbed by 1e-6 (relative,
  Gaussian): the float-noise floor on that backend.

Printed: the step-1 loss per backend; the largest per-step loss difference of
each backend from the first over the run, beside the floor (a backend against
itself, perturbed); after the last step the relative weight difference (median,
largest) of each backend from the first, beside the floor's (the largest is a
bias that starts at zero, large on every side). Training is chaotic (Adam's
first steps are about lr * sign(g)), so two programs that compute the same
function part at the rate the floor shows, not at zero; a difference in the step
(an op, a batch-norm mode, the order of the target update) parts them at once
and far above it.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, os.path.dirname(HERE))  # a checkout without `pip install`
sys.path.insert(0, HERE)  # the sibling recipe modules

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _premade_views import FirstView, PremadeViews  # noqa: E402
from lockstep_torch import (  # noqa: E402
    _relative,
    _StepLosses,
    make_views,
)
from simclr_cifar10 import DEFAULT_DATA, small_cnn  # noqa: E402

from keras_contrastive.callbacks import MomentumSchedule  # noqa: E402
from keras_contrastive.datasets import load_jpeg_npz  # noqa: E402
from keras_contrastive.layers import PredictionHead, ProjectionHead  # noqa: E402
from keras_contrastive.models import BYOL, SimCLR  # noqa: E402

METHODS = {"byol": BYOL, "simclr": SimCLR}
#: Relative size of the Gaussian perturbation that gives the float-noise floor.
NOISE = 1e-6


def build_model(method):
    """The recipe's model, on the current backend, built for (batch, 32, 32, 6)."""
    encoder = small_cnn()
    heads = [ProjectionHead(hidden_dims=(256,), output_dim=128)]
    cls = type(f"Premade{METHODS[method].__name__}", (PremadeViews, METHODS[method]),
               {})  # fmt: skip
    if method == "byol":
        heads.append(PredictionHead(hidden_dims=(256,), output_dim=128))
        model = cls(encoder, *heads, FirstView(), momentum=0.99)
    else:
        model = cls(encoder, heads[0], FirstView(), temperature=0.5)
    model.build((None, 32, 32, 6))
    return model


def _weights(model):
    """Every variable's path and value (trainable, batch-norm statistics, target
    network). Paired by position: a second model in one process gets suffixed
    layer names, and every backend builds the variables in the same order."""
    return [v.path for v in model.weights], [
        keras.ops.convert_to_numpy(v) for v in model.weights
    ]


def _perturb(model, noise, seed):
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        value = keras.ops.convert_to_numpy(v)
        v.assign(value * (1 + noise * rng.standard_normal(value.shape)))


def train(method, weights_file, views, batch_size, noise=0.0):
    """Per-step losses and final weights of `fit` from `weights_file`."""
    model = build_model(method)
    model.load_weights(weights_file)
    if noise:
        _perturb(model, noise, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    callbacks, losses = [], _StepLosses()
    if method == "byol":
        callbacks.append(MomentumSchedule(start=0.99, end=1.0))
    model.fit(views, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=callbacks + [losses])  # fmt: skip
    return np.array(losses.losses), _weights(model)


def worker(args):
    """Runs in a subprocess on one backend; writes `<backend>.npz` and
    `<backend>_perturbed.npz` (losses, variable paths, values as arr_0...)."""
    views = np.load(os.path.join(args.worker, "views.npy"))
    weights_file = os.path.join(args.worker, "init.weights.h5")
    for suffix, noise in (("", 0.0), ("_perturbed", NOISE)):
        losses, (names, values) = train(args.method, weights_file, views,
                                        args.batch_size, noise)  # fmt: skip
        path = os.path.join(args.worker, f"{keras.backend.backend()}{suffix}.npz")
        np.savez(path, *values, losses=losses, names=np.array(names))


def _load(folder, name):
    """(losses, variable paths, values) of one run."""
    with np.load(os.path.join(folder, f"{name}.npz")) as run:
        names = list(run["names"])
        return run["losses"], names, [run[f"arr_{i}"] for i in range(len(names))]


def _weight_gap(ours, theirs):
    """Median and (largest, its path) relative difference of two runs' weights."""
    gaps = [(_relative(a, b), name) for a, b, name in
            zip(ours[2], theirs[2], theirs[1])]  # fmt: skip
    return float(np.median([g for g, _ in gaps])), max(gaps)


def compare(runs, perturbed, first):
    """Prints each backend's run against `first`'s, beside the float-noise
    floors (each backend against itself perturbed)."""
    reference = runs[first]
    steps = len(reference[0])
    print(f"{'backend':>11} {'step-1 loss':>12} {'final loss':>11}")
    for backend, (losses, _, _) in runs.items():
        print(f"{backend:>11} {losses[0]:12.6f} {losses[-1]:11.6f}")
    summary = {}
    for backend, run in runs.items():
        floor = np.abs(perturbed[backend][0] - run[0]).max()
        floor_median, (floor_worst, _) = _weight_gap(perturbed[backend], run)
        line = {"loss_floor": float(floor), "weight_floor_median": floor_median,
                "weight_floor_largest": floor_worst}  # fmt: skip
        if backend != first:
            gap = np.abs(run[0] - reference[0]).max()
            median, (worst, name) = _weight_gap(run, reference)
            line.update(loss_gap=float(gap), weight_median=median,
                        weight_largest=worst, weight_largest_name=name)  # fmt: skip
            print(f"{backend} vs {first} over {steps} steps: largest loss "
                  f"difference {gap:.2e}; relative weight difference median "
                  f"{median:.2e}, largest {worst:.2e} ({name})")  # fmt: skip
        print(f"{backend} vs itself perturbed by {NOISE:g}: largest loss difference "
              f"{floor:.2e}; relative weight difference median {floor_median:.2e},"
              f" largest {floor_worst:.2e}")  # fmt: skip
        summary[backend] = line
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=tuple(METHODS), default="byol")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--color-strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 JPEG-npz file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    keras.utils.set_random_seed(args.seed)
    images, _, _ = load_jpeg_npz(args.data)
    steps = min(args.steps, len(images) // args.batch_size)  # full batches only
    order = np.random.default_rng(0).permutation(len(images))
    images = images[order[: steps * args.batch_size]]
    backends = args.backends.split(",")
    print(f"{args.method}, {steps} steps of batch {args.batch_size}, colour "
          f"{args.color_strength}, views and weights made on "
          f"{keras.backend.backend()}; backends {backends}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        np.save(os.path.join(folder, "views.npy"),
                make_views(images, steps, args.batch_size, args.seed,
                           args.color_strength))  # fmt: skip
        build_model(args.method).save_weights(os.path.join(folder, "init.weights.h5"))
        flags = [f"--method={args.method}", f"--batch-size={args.batch_size}"]
        for backend in backends:
            subprocess.run([sys.executable, __file__, "--worker", folder, *flags],
                           env={**os.environ, "KERAS_BACKEND": backend},
                           check=True)  # fmt: skip
        runs = {b: _load(folder, b) for b in backends}
        perturbed = {b: _load(folder, f"{b}_perturbed") for b in backends}
    print(json.dumps(compare(runs, perturbed, backends[0])))


if __name__ == "__main__":
    main()
