"""The data given to `fit` / `evaluate`: a look at its first batch, not consumed.

Models build from it before training (so `BackupAndRestore` can restore into built
variables) and check what Python can see before the step is compiled.
"""

import math

import keras
import numpy as np


def peek_first_batch(x, raw=False):
    """A NumPy sample of the model input `x` of `fit` / `evaluate`, or None.

    Arrays (or a tuple / dict of arrays) give their first two rows; a
    `tf.data.Dataset` or `keras.utils.PyDataset` its first batch's `x` (not
    consumed; with `raw=True` the whole batch, `(x, y)` included). Other
    iterables (generators) cannot be peeked at: None.
    """

    def head(value):
        if isinstance(value, (list, range)):
            value = np.asarray(value)
        return value[:2] if isinstance(value, np.ndarray) else None

    if isinstance(x, np.ndarray):
        return head(x)
    if isinstance(x, (dict, tuple, list)) and not raw:
        try:
            sample = keras.tree.map_structure(head, x)
        except (TypeError, ValueError):
            return None
        return None if any(v is None for v in keras.tree.flatten(sample)) else sample
    batch = None
    if isinstance(x, keras.utils.PyDataset):
        batch = x[0] if len(x) else None
    else:
        try:
            import tensorflow as tf
        except ImportError:  # pragma: no cover - TensorFlow is optional
            tf = None
        if tf is not None and isinstance(x, tf.data.Dataset):
            batch = keras.tree.map_structure(lambda t: t.numpy(), next(iter(x.take(1))))
    if batch is None or raw:
        return batch
    sample, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
    return sample


def full_batch_rows(x, batch_size=None, validation_split=0.0):
    """The rows of a full training batch when `fit` batches `x` itself, or None.

    Arrays (or a nest of them) are batched by Keras in batches of `batch_size`
    (32 by default), after `validation_split` has taken its share; a dataset
    with its own batching (a `tf.data.Dataset`, a `PyDataset`, a generator)
    decides its batch sizes itself: None.
    """
    if x is None or isinstance(x, keras.utils.PyDataset):
        return None
    arrays = keras.tree.flatten(x)
    if not arrays or not all(len(getattr(a, "shape", ())) for a in arrays):
        return None
    rows = arrays[0].shape[0]
    if rows is None:
        return None
    rows = int(rows)
    if validation_split:
        # Keras' own split: the first floor(rows * (1 - split)) rows train.
        rows = int(math.floor(rows * (1.0 - validation_split)))
    return max(1, min(batch_size or 32, rows))


def batch_count(rows, batch_size, drop_last=False):
    """Batches of `batch_size` in `rows` rows: a partial last one counts unless
    `drop_last` (and there is at least one full batch)."""
    if drop_last and rows >= batch_size:
        return rows // batch_size
    return math.ceil(rows / batch_size)
