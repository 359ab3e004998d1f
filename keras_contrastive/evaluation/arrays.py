"""Arrays of the evaluation functions: conversion to NumPy and their checks.

`to_numpy` turns NumPy arrays, lists and backend tensors into NumPy. The checks
convert what they accept and raise in the message style of
`keras_contrastive._validation` ("`name` must be ... Received: name=..."), so a
user sees which argument is wrong rather than a shape error deep inside a backend.
Arrays are described by their shape (or by what is wrong with them) instead of
being printed.
"""

import keras
import numpy as np

from keras_contrastive._validation import (
    check_int,
    fail,
    shown_as,
    summarize,
)


def to_numpy(x):
    """NumPy view of an array-like or a backend tensor (no copy when possible)."""
    if isinstance(x, np.ndarray):
        return x
    if keras.ops.is_tensor(x):
        return np.asarray(keras.ops.convert_to_numpy(x))
    return np.asarray(x)


def check_embeddings(name, x, allow_empty=True):
    """Returns `x` as a finite float32 `(num_samples, dim)` NumPy array, or raises.

    `allow_empty=False` also requires at least one row.
    """
    x = to_numpy(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        fail(f"{name}.dtype", "numeric", str(x.dtype), TypeError)
    if x.ndim != 2:
        fail(f"{name}.shape", "of rank 2: (num_samples, dim)", x.shape)
    if x.shape[1] == 0:
        fail(f"{name}.shape", "(num_samples, dim) with dim >= 1", x.shape)
    if not allow_empty and x.shape[0] == 0:
        fail(f"{name}.shape", "(num_samples, dim) with num_samples >= 1", x.shape)
    x = x.astype(np.float32, copy=False)
    bad = np.size(x) - np.count_nonzero(np.isfinite(x))
    if bad:
        fail(
            name,
            "free of NaN and inf",
            shown_as(f"an array of shape {x.shape} with {bad} NaN or inf values"),
        )
    return x


def check_same_dim(name, x, other_name, other):
    """Raises unless the 2-D arrays `x` and `other` have equally many columns."""
    if x.shape[1] != other.shape[1]:
        fail(
            f"{name}.shape[1]",
            f"equal to `{other_name}`'s feature dimension ({other.shape[1]})",
            x.shape[1],
        )


def check_labels(name, y, num_samples, num_samples_name):
    """Returns integer class labels as a 1-D int64 array of length `num_samples`.

    Accepts shape (N,) or (N, 1) (the shape `keras.datasets` uses), and float arrays
    whose values are whole numbers.
    """
    y = to_numpy(y)
    shape = y.shape
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != num_samples:
        fail(
            f"{name}.shape",
            f"({num_samples},) or ({num_samples}, 1): one class label per row of "
            f"`{num_samples_name}`",
            shape,
        )
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not np.all(whole):
            fail(
                name,
                "whole-number class labels",
                shown_as(f"an array holding {y[~whole][0].item()!r}"),
            )
        if y.size and np.abs(y).max() >= 2.0**63:
            fail(
                name,
                "class labels below 2**63",
                shown_as(f"an array holding {np.abs(y).max().item()!r}"),
            )
    elif y.dtype == np.uint64 and y.size and y.max() >= 2**63:
        fail(
            name,
            "class labels below 2**63",
            shown_as(f"an array holding {y.max().item()!r}"),
        )
    elif not np.issubdtype(y.dtype, np.integer):
        fail(f"{name}.dtype", "an integer (class label) dtype", str(y.dtype), TypeError)
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        fail(name, "class labels >= 0", shown_as(f"an array holding {int(y.min())}"))
    return y


def resolve_num_classes(num_classes, labels, name="train_labels"):
    """The number of classes: `num_classes` if given (checked), else max label + 1."""
    top = int(labels.max()) + 1 if labels.size else 0
    if num_classes is None:
        return max(top, 1)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    if top > num_classes:
        fail(
            "num_classes",
            f"greater than the largest label in `{name}` ({top - 1})",
            num_classes,
        )
    return num_classes


def check_labelled_data(name, data):
    """Unpacks an `(images, labels)` pair into NumPy images and int64 labels."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        fail(name, "an (images, labels) tuple", summarize(data))
    images = to_numpy(data[0])
    if images.ndim < 2 or images.shape[0] == 0:
        fail(
            f"{name}[0].shape", "(num_samples, ...) with num_samples >= 1", images.shape
        )
    labels = check_labels(f"{name}[1]", data[1], images.shape[0], f"{name}[0]")
    return images, labels
