"""Seed spread of the SimCLR and MoCo learning tests, to set their margins from.

    KERAS_BACKEND=jax python benchmarks/learning_test_margins.py \\
        [--method simclr|moco] [--seeds 1234,0,1,2] [--strengths 0.5,1.0]

Runs the recipe of `tests/models/test_contrastive_learns.py` (8x8 CIFAR-10 images from
the bundled sample, 2,048 of them, the two-block CNN, 8 epochs at batch 128) once
per seed and colour strength, and prints each run's kNN gain over the random-init
encoder, then the mean, standard deviation and minimum per strength. The test's
margins sit below every seed's gain on every backend; rerun this on the three
backends when the recipe or the library's defaults change.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # tests.methods.helpers, and a checkout without install

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.methods.helpers import knn_accuracy, split_cifar  # noqa: E402
from tests.models.test_contrastive_learns import SIZE, short_fit  # noqa: E402


def gain(seed, color_strength, train, queries, method):
    """kNN top-1 after the test's fit minus before it, for one seed."""
    keras.utils.set_random_seed(seed)
    random_init, model, _ = short_fit(color_strength, train, queries, method)
    return knn_accuracy(model.encoder, train, queries, k=20) - random_init


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("simclr", "moco"), default="simclr")
    parser.add_argument("--seeds", default="1234,0,1,2")
    parser.add_argument("--strengths", default="0.5,1.0")
    args = parser.parse_args(argv)
    train, queries = split_cifar(SIZE)
    for strength in (float(s) for s in args.strengths.split(",")):
        gains = []
        for seed in (int(s) for s in args.seeds.split(",")):
            start = time.perf_counter()
            gains.append(100 * gain(seed, strength, train, queries, args.method))
            name = f"{keras.backend.backend()} {args.method}"
            print(f"{name} colour {strength} seed {seed}: gain "
                  f"{gains[-1]:+.2f} points ({time.perf_counter() - start:.0f} s)",
                  flush=True)  # fmt: skip
        print(f"colour {strength}: {np.mean(gains):+.2f} +- {np.std(gains):.2f}, "
              f"min {np.min(gains):+.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
