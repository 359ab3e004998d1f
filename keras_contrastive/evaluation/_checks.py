"""Argument checks shared by the evaluation functions and the kNN callback.

Each check converts what it accepts (NumPy arrays, lists, backend tensors) to NumPy
and raises a `ValueError`/`TypeError` naming the argument and what was expected, so
that a user sees our message rather than a shape error deep inside a backend.
"""

import numbers

import keras
import numpy as np


def to_numpy(x):
    """NumPy view of an array-like or a backend tensor (no copy when possible)."""
    if isinstance(x, np.ndarray):
        return x
    if keras.ops.is_tensor(x):
        return np.asarray(keras.ops.convert_to_numpy(x))
    return np.asarray(x)


def check_int(name, value, minimum=1):
    """Returns `value` as a Python int, or raises if it is not an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer >= {minimum}; received {value!r} "
            f"of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {value}.")
    return int(value)


def check_positive_float(name, value):
    """Returns `value` as a float, or raises if it is not a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a positive number; received {value!r} "
            f"of type {type(value).__name__}."
        )
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0; received {value}.")
    return value


def check_embeddings(name, x):
    """Returns `x` as a float32 (N, D) NumPy array, or raises."""
    x = to_numpy(x)
    if x.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array of shape (num_samples, dim); received "
            f"shape {x.shape}."
        )
    if x.shape[1] == 0:
        raise ValueError(f"`{name}` has zero feature dimensions: shape {x.shape}.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise TypeError(f"`{name}` must be numeric; received dtype {x.dtype}.")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return x


def check_labels(name, y, num_samples, num_samples_name):
    """Returns integer class labels as a 1-D int64 array of length `num_samples`.

    Accepts shape (N,) or (N, 1) (the shape `keras.datasets` uses), and float arrays
    whose values are whole numbers.
    """
    y = to_numpy(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"`{name}` must be a 1-D array of integer class labels (or shape (N, 1)); "
            f"received shape {y.shape}."
        )
    if y.shape[0] != num_samples:
        raise ValueError(
            f"`{name}` has {y.shape[0]} labels but `{num_samples_name}` has "
            f"{num_samples} rows; they must match."
        )
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"`{name}` must hold whole-number class labels.")
    elif not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"`{name}` must hold integer class labels; received dtype {y.dtype}."
        )
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"`{name}` must hold class labels >= 0; found {int(y.min())}.")
    return y


def resolve_num_classes(num_classes, labels, name="train_labels"):
    """The number of classes: `num_classes` if given (checked), else max label + 1."""
    top = int(labels.max()) + 1 if labels.size else 0
    if num_classes is None:
        return max(top, 1)
    num_classes = check_int("num_classes", num_classes)
    if top > num_classes:
        raise ValueError(
            f"`{name}` holds label {top - 1} but `num_classes` is {num_classes}; "
            f"labels must be in [0, num_classes)."
        )
    return num_classes


def check_labelled_data(name, data):
    """Unpacks an `(images, labels)` pair into NumPy images and int64 labels."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"`{name}` must be an `(images, labels)` tuple; received "
            f"{type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
            + "."
        )
    images = to_numpy(data[0])
    if images.ndim < 2 or images.shape[0] == 0:
        raise ValueError(
            f"`{name}[0]` (images) must be an array of at least one sample; "
            f"received shape {images.shape}."
        )
    labels = check_labels(f"{name}[1]", data[1], images.shape[0], f"{name}[0]")
    return images, labels
