"""Data of the evaluation functions given as a stream of batches instead of arrays.

`compute_embeddings`, `knn_evaluate`, `linear_probe` and `KNNMonitor` take, besides
NumPy arrays, any of:

- a `tf.data.Dataset` (on every backend: TensorFlow only runs the input pipeline,
  as in Keras' own `fit`; batches are read with `as_numpy_iterator`);
- a `keras.utils.PyDataset` (read as `dataset[i]` for each of its `num_batches`);
- any other iterable of batches: a generator, a `torch.utils.data.DataLoader`, a
  list of `(x, y)` tuples, ... (read with `iter`). A list of numbers or arrays
  stays an array-like, as before.

Each batch is `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)` (the weights are
ignored), `x` an array or tensor whose first axis is the batch. The batches are
read one at a time and only the embeddings are kept, so images are never all in
memory at once.
"""

import sys

import keras
import numpy as np

from keras_contrastive._validation import fail, shown_as
from keras_contrastive.evaluation.arrays import check_labels, to_numpy

STREAM_EXPECTATION = (
    "a dataset (tf.data.Dataset, keras.utils.PyDataset or other iterable)"
)


def is_tf_dataset(data):
    """True for a `tf.data.Dataset` (without importing TensorFlow)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def is_stream(data):
    """Whether `data` is a stream of batches rather than one array-like.

    Arrays and tensors (anything with `shape` and `dtype`), tuples, strings,
    dicts and lists of numbers or arrays are not streams; datasets, other
    iterables and lists of tuples of arrays (`[(x, y), (x, y), ...]`) are.
    """
    if isinstance(data, list):
        return bool(data) and all(
            isinstance(batch, tuple) and batch and hasattr(batch[0], "shape")
            for batch in data
        )
    if isinstance(data, (np.ndarray, tuple, str, bytes, dict)):
        return False
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        return False
    if isinstance(data, keras.utils.PyDataset) or is_tf_dataset(data):
        return True
    return hasattr(data, "__iter__")


def is_reiterable(data):
    """Whether iterating `data` again starts over (not a one-shot iterator)."""
    if isinstance(data, keras.utils.PyDataset) or is_tf_dataset(data):
        return True
    return iter(data) is not data


def _raw_batches(name, data):
    if is_tf_dataset(data):
        yield from data.as_numpy_iterator()
    elif isinstance(data, keras.utils.PyDataset):
        count = data.num_batches
        if count is None:
            fail(
                name,
                "a PyDataset of finite length (`num_batches` or `__len__`)",
                shown_as(f"an infinite {type(data).__name__}"),
            )
        for index in range(count):
            yield data[index]
    else:
        yield from data


def iterate_batches(name, data, labelled):
    """Yields `(x, y)` NumPy batches of `data`; `y` is None when not `labelled`.

    Integer and bool inputs are cast to float32 (values unchanged), as
    `compute_embeddings` does for arrays. Raises (naming `name`) when a batch
    has no labels although `labelled`, when its labels are not one integer per
    input row (an unbatched dataset gives scalar labels: the message says to
    call `.batch`), or when the stream yields nothing.
    """
    count = 0
    for index, batch in enumerate(_raw_batches(name, data)):
        if isinstance(batch, dict):
            fail(
                name,
                "a stream of x, (x,) or (x, y) batches",
                shown_as(f"a stream whose batch {index} is a dict"),
                TypeError,
            )
        if isinstance(batch, (tuple, list)):
            if not 1 <= len(batch) <= 3:
                fail(
                    name,
                    "a stream of x, (x,), (x, y) or (x, y, sample_weight) batches",
                    shown_as(f"a stream whose batch {index} has {len(batch)} parts"),
                )
            x = batch[0]
            y = batch[1] if len(batch) > 1 else None
        else:
            x, y = batch, None
        x = to_numpy(x)
        if x.ndim == 0:
            fail(
                name,
                "a stream of batches whose inputs have a batch axis",
                shown_as(f"a stream whose batch {index} holds a scalar"),
            )
        if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
            x = x.astype(np.float32)
        if labelled:
            if y is None:
                fail(
                    name,
                    "a stream of (inputs, labels) batches",
                    shown_as(f"a stream whose batch {index} has no labels"),
                )
            y = to_numpy(y)
            if y.ndim == 0:
                fail(
                    name,
                    "a stream of batches (one label per input row)",
                    shown_as(f"a stream whose batch {index} has a scalar label"),
                    detail="Batch the dataset first (`dataset.batch(256)`)",
                )
            y = check_labels(f"{name} labels", y, x.shape[0], f"{name} inputs")
        else:
            y = None
        count += 1
        yield x, y
    if count == 0:
        fail(name, "a stream of at least one batch", shown_as("an empty stream"))
