"""The data given to `fit` / `evaluate`: a look at its first batch, not consumed.

Models build from it before training (so `BackupAndRestore` can restore into built
variables) and check what Python can see before the step is compiled.
"""

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
