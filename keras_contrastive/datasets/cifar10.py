"""CIFAR-10: from a local JPEG-npz file, from Keras' download, or the bundled sample."""

import os

import numpy as np

from keras_contrastive._validation import check_number, fail
from keras_contrastive.datasets.jpeg_npz import load_jpeg_npz

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""The ten CIFAR-10 class names, in label order (label 0 is "airplane")."""

SAMPLE_PATH = os.path.join(os.path.dirname(__file__), "data", "cifar10_sample.npz")
"""The bundled 5,000-image CIFAR-10 sample (JPEG-npz) that `load_cifar10_sample`
reads."""


def stratified_split(labels, test_fraction, seed=0):
    """Splits row indices into train and test parts, class by class.

    For each class in increasing label order, its rows are shuffled by one
    `numpy.random.default_rng(seed)` generator and the first
    `round(test_fraction * class_size)` go to the test part. Both parts are
    returned sorted, so images keep their order in the file.

    Returns:
        `(train_indices, test_indices)` int64 arrays.

    Example:

    >>> train, test = stratified_split([0, 0, 1, 1], test_fraction=0.5)
    >>> sorted(np.asarray([0, 0, 1, 1])[test].tolist())
    [0, 1]
    """
    labels = np.asarray(labels).reshape(-1)
    test_fraction = check_number(
        "test_fraction", test_fraction, minimum=0.0, maximum=1.0, max_open=True
    )
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        test.append(rows[: int(round(test_fraction * len(rows)))])
    test = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train.astype(np.int64), test.astype(np.int64)


def _split(images, labels, test_fraction, seed):
    train, test = stratified_split(labels, test_fraction, seed)
    return (images[train], labels[train]), (images[test], labels[test])


def _from_keras():
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # No network, blocked URL, corrupt download...
        raise OSError(
            "CIFAR-10 could not be downloaded by `keras.datasets.cifar10` "
            f"({type(error).__name__}: {error}). Pass `path=` to a local JPEG-npz "
            "file, or use `load_cifar10_sample()` for the bundled sample."
        ) from error
    return (
        (x_train.astype(np.uint8), y_train.reshape(-1).astype(np.int64)),
        (x_test.astype(np.uint8), y_test.reshape(-1).astype(np.int64)),
    )


def _check_cifar_shape(name, path, images):
    if images.shape[1:] != (32, 32, 3):
        fail(
            name,
            "a file of CIFAR-10 images, of shape (N, 32, 32, 3)",
            path,
            detail=f"Its images have shape {images.shape}",
        )


def load_cifar10(
    path=None,
    test_path=None,
    test_fraction=0.2,
    seed=0,
    cache=True,
    cache_dir=None,
):
    """Loads CIFAR-10 as `(x_train, y_train), (x_test, y_test)`.

    Images are uint8 `(N, 32, 32, 3)`, labels int64 `(N,)` (flat, unlike the
    `(N, 1)` of `keras.datasets`), class names in `CIFAR10_CLASSES`.

    Where the data comes from:

    - `path=None`: `keras.datasets.cifar10.load_data()` (downloads once into
      `~/.keras/datasets`; needs the network the first time). The official
      50,000 / 10,000 split is returned and `test_fraction` is ignored.
    - `path` is a JPEG-npz file (format in `keras_contrastive.datasets.jpeg_npz`):
      its images are the training split. The test split is `test_path` when
      given; otherwise, as a file with only training images has no test split,
      a class-stratified `test_fraction` of it is held out
      (`stratified_split(labels, test_fraction, seed)`; the default 0.2 makes
      40,000 / 10,000 of the 50,000 training images).
    - `path` is a folder: `train.npz` in it is used as above, and `test.npz`
      beside it, when present, as the test split.

    Decoding the 50,000 JPEGs takes ~10 s on one core; the result is cached (see
    `load_jpeg_npz`: in memory, and on disk under `~/.keras/datasets/
    keras_contrastive` when writable; `cache=False` disables both).

    Args:
        path: `None`, a JPEG-npz file, or a folder holding `train.npz`.
        test_path: optional JPEG-npz file with the test split.
        test_fraction: fraction held out per class when there is no test split,
            in [0, 1).
        seed: seed of that hold-out.
        cache: use the decode caches.
        cache_dir: folder of the on-disk cache.

    Returns:
        `(x_train, y_train), (x_test, y_test)`.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_cifar10("data/cifar10/train.npz")
    x_train.shape  # (40000, 32, 32, 3)
    ```
    """
    if path is None:
        if test_path is not None:
            fail(
                "test_path",
                "None when `path` is None",
                test_path,
                detail="Pass `path` (the training split) with it; without `path`, "
                "CIFAR-10 comes from Keras' download with its own test split",
            )
        return _from_keras()
    path = os.fspath(path)
    if os.path.isdir(path):
        folder = path
        path = os.path.join(folder, "train.npz")
        if test_path is None and os.path.isfile(os.path.join(folder, "test.npz")):
            test_path = os.path.join(folder, "test.npz")
    if not os.path.exists(path):
        fail(
            "path",
            "an existing JPEG-npz file or a folder holding `train.npz`",
            path,
            FileNotFoundError,
            detail="Pass `path=None` to download CIFAR-10 through Keras",
        )
    images, labels, _ = load_jpeg_npz(path, cache=cache, cache_dir=cache_dir)
    _check_cifar_shape("path", path, images)
    if test_path is None:
        return _split(images, labels, test_fraction, seed)
    test_images, test_labels, _ = load_jpeg_npz(
        test_path, cache=cache, cache_dir=cache_dir
    )
    _check_cifar_shape("test_path", test_path, test_images)
    return (images, labels), (test_images, test_labels)


def load_cifar10_sample(test_fraction=0.2, seed=0):
    """The 5,000-image CIFAR-10 sample shipped inside the package.

    500 images per class, drawn with seed 0 from the CIFAR-10 training split (its
    JPEG re-encoding; the bytes are copied, not re-encoded; see
    `keras_contrastive.datasets._make_sample`). Works offline. Split like a
    training-only file in `load_cifar10`: a class-stratified `test_fraction` is
    held out (by default 4,000 / 1,000 images, 400 / 100 per class).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 `(N, 32, 32, 3)` images and
        int64 `(N,)` labels.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_cifar10_sample()
    >>> x_train.shape, x_test.shape
    ((4000, 32, 32, 3), (1000, 32, 32, 3))
    """
    images, labels, _ = load_jpeg_npz(SAMPLE_PATH)
    return _split(images, labels, test_fraction, seed)
