"""Rebuilds the bundled sample `data/cifar10_sample.npz` (reproducible).

The sample is 500 images per class (5,000 in all) of the CIFAR-10 training split in
the JPEG-npz format (`load_jpeg_npz`; the whole split as one `train.npz`):

    rng = numpy.random.default_rng(0)
    for label in 0..9:   chosen += rng.choice(rows with that label, 500, replace=False)
    indices = sorted(chosen)

and those images' JPEG bytes are copied unchanged (no re-encoding), with their labels
and the class names. Run from the repository root, with the path of that file:

    python -m keras_contrastive.datasets._make_sample path/to/cifar10/train.npz
"""

import argparse

import numpy as np

from keras_contrastive.datasets.cifar10 import SAMPLE_PATH
from keras_contrastive.datasets.jpeg_npz import read_jpeg_npz, select_jpeg_npz


def sample_indices(labels, per_class=500, seed=0):
    """Class-balanced indices: `per_class` rows of each label, sorted."""
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
        for label in np.unique(labels)
    ]
    return np.sort(np.concatenate(chosen))


def make_cifar10_sample(source, destination=SAMPLE_PATH, per_class=500, seed=0):
    """Writes the sample drawn from the JPEG-npz file `source` to `destination`."""
    indices = sample_indices(read_jpeg_npz(source)["labels"], per_class, seed)
    select_jpeg_npz(source, destination, indices)
    return indices


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="CIFAR-10 training split in JPEG-npz format")
    parser.add_argument("--destination", default=SAMPLE_PATH)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    indices = make_cifar10_sample(
        args.source, args.destination, args.per_class, args.seed
    )
    print(f"wrote {len(indices)} images to {args.destination}")


if __name__ == "__main__":
    main()
