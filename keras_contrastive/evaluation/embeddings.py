"""Frozen features of an encoder, and its kNN accuracy on labelled data."""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_contrastive._validation import (
    check_bool,
    check_callable,
    check_positive_int,
    fail,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation._data import (
    STREAM_EXPECTATION,
    is_stream,
    iterate_batches,
)
from keras_contrastive.evaluation.arrays import (
    check_labelled_data,
    check_same_dim,
    to_numpy,
)
from keras_contrastive.evaluation.knn import knn_accuracy


def _check_features(encoder, features):
    """`features` (the encoder's output) as 2-D float32 NumPy, or raises."""
    if not isinstance(features, np.ndarray) and not keras.ops.is_tensor(features):
        fail(
            "encoder",
            "a model returning a single (batch, features) tensor",
            shown_as(f"a model returning a {type(features).__name__}"),
            TypeError,
        )
    features = to_numpy(features)
    if features.ndim != 2:
        fail(
            "encoder",
            "a model returning a 2-D (batch, features) tensor",
            shown_as(f"a model returning shape {features.shape}"),
            detail="Add a pooling or flatten layer (for example "
            "`keras.layers.GlobalAveragePooling2D()`) at the end of the encoder",
        )
    return features.astype(np.float32, copy=False)


@contextlib.contextmanager
def _torch_kernels():
    # Imported here: keras_contrastive.models imports this package.
    from keras_contrastive.models.torch_batch_norm import fused_batch_normalization
    from keras_contrastive.models.torch_convolution import (
        channels_last_convolutions,
    )

    with channels_last_convolutions(), fused_batch_normalization():
        yield


def _embed_batch(encoder, x):
    with _torch_kernels():
        if isinstance(encoder, keras.Model):
            return encoder.predict_on_batch(x)
        return encoder(ops.convert_to_tensor(x), training=False)


def embed_stream(encoder, data, name, labelled):
    """`(features, labels)` of a stream of batches (labels None unless
    `labelled`); `encoder=None` takes the inputs as the features."""
    features, labels = [], []
    for x, y in iterate_batches(name, data, labelled):
        if encoder is None:
            batch = x.reshape(len(x), -1) if x.ndim != 2 else x
        else:
            batch = _check_features(encoder, _embed_batch(encoder, x))
        if len(batch) != len(x):
            fail(
                "encoder",
                "a model returning one row per input",
                shown_as(f"a model returning {len(batch)} rows for {len(x)} inputs"),
            )
        features.append(batch)
        labels.append(y)
    features = np.concatenate(features, axis=0).astype(np.float32, copy=False)
    return features, (np.concatenate(labels) if labelled else None)


def compute_embeddings(encoder, x, batch_size=256, return_labels=False):
    """Runs `encoder` in inference mode over `x` in batches; returns 2-D NumPy.

    `x` is an array, or a dataset: a `tf.data.Dataset` (on every backend), a
    `keras.utils.PyDataset` or any iterable of batches (`x`, `(x,)` or
    `(x, y)`). A dataset is read one batch at a time, in its own batches, and
    only the embeddings are kept, so the images are never all in memory; with
    `return_labels=True` the labels of its `(x, y)` batches come back too, in
    the same order (read in the same pass, so a shuffling dataset stays
    aligned).

    Integer images (e.g. uint8 from the loaders in `keras_contrastive.datasets`)
    are cast to float32 with their values unchanged (0..255), which is what an
    encoder trained behind the library's augmenters receives.

    Args:
        encoder: a `keras.Model` (run through `predict`, or `predict_on_batch`
            for a dataset) or any callable layer mapping a batch to a
            `(batch, features)` tensor.
        x: array of inputs, first axis the samples; or a dataset of batches.
        batch_size: samples per forward pass (arrays; a dataset keeps its own
            batches).
        return_labels: return `(embeddings, labels)`: needs a dataset of
            `(x, y)` batches.

    Returns:
        float32 NumPy array of shape `(num_samples, features)`; with
        `return_labels`, also the int64 labels `(num_samples,)`.

    Example:

    >>> import keras, numpy as np
    >>> encoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4)])
    >>> compute_embeddings(encoder, np.zeros((3, 2, 2, 1), "uint8")).shape
    (3, 4)
    >>> batches = [(np.zeros((2, 2, 2, 1)), np.array([0, 1]))] * 3  # a stream
    >>> embeddings, labels = compute_embeddings(encoder, batches, return_labels=True)
    >>> embeddings.shape, labels.tolist()
    ((6, 4), [0, 1, 0, 1, 0, 1])
    """
    check_callable("encoder", encoder, "a Keras model or callable")
    batch_size = check_positive_int("batch_size", batch_size)
    check_bool("return_labels", return_labels)
    if is_stream(x):
        features, labels = embed_stream(encoder, x, "x", return_labels)
        return (features, labels) if return_labels else features
    if return_labels:
        fail(
            "x",
            f"{STREAM_EXPECTATION} of (x, y) batches when `return_labels=True`",
            summarize(x),
            TypeError,
        )
    x = to_numpy(x)
    if x.ndim == 0 or x.shape[0] == 0:
        fail("x.shape", "(num_samples, ...) with at least one sample", x.shape)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        x = x.astype(np.float32)
    with _torch_kernels():
        if isinstance(encoder, keras.Model):
            features = encoder.predict(x, batch_size=batch_size, verbose=0)
        else:
            features = [
                encoder(
                    ops.convert_to_tensor(x[start : start + batch_size]),
                    training=False,
                )
                for start in range(0, x.shape[0], batch_size)
            ]
            if all(keras.ops.is_tensor(f) for f in features):
                features = np.concatenate([to_numpy(f) for f in features], axis=0)
    return _check_features(encoder, features)


LABELLED_EXPECTATION = (
    "an (images, labels) tuple, or a dataset of (images, labels) batches "
    "(tf.data.Dataset, keras.utils.PyDataset or other iterable)"
)


def labelled_features(encoder, name, data, batch_size):
    """`(features, labels)` of `(images, labels)` arrays or a labelled stream."""
    if is_stream(data):
        return embed_stream(encoder, data, name, labelled=True)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        fail(name, LABELLED_EXPECTATION, summarize(data))
    images, labels = check_labelled_data(name, data)
    if encoder is None:
        return images, labels
    return compute_embeddings(encoder, images, batch_size), labels


def knn_evaluate(
    encoder,
    train_data,
    val_data,
    k=200,
    temperature=0.1,
    batch_size=256,
    num_classes=None,
    top_k=1,
):
    """kNN accuracy of `encoder`'s features: `val_data` against `train_data`.

    Embeds both sets with `compute_embeddings` and scores the validation set with
    `knn_accuracy` (weighted cosine kNN, Wu et al. 2018).

    Args:
        encoder: a Keras model (or callable) returning `(batch, features)`.
        train_data: `(images, labels)`, the labelled memory set; or a dataset of
            `(images, labels)` batches (`tf.data.Dataset`, `PyDataset` or any
            iterable of batches, read one batch at a time).
        val_data: `(images, labels)` or a dataset: the queries to classify.
        k, temperature: as in `knn_classify`.
        batch_size: samples per forward pass (arrays) and queries per kNN batch.
        num_classes: optional; every label must be below it.
        top_k: as in `knn_accuracy`: an int (a float comes back) or a tuple of
            ints (a dict `{k: accuracy}`); 5 scores a query as right when its
            label is among the 5 classes with the largest votes.

    Returns:
        The top-1 accuracy as a Python float in [0, 1] (by default), or a dict
        of top-k accuracies when `top_k` is a tuple.

    Example:

    >>> import keras, numpy as np
    >>> x = np.eye(4, dtype="float32")
    >>> y = np.array([0, 0, 1, 1])
    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
    >>> knn_evaluate(encoder, (x, y), (x, y), k=1)
    1.0
    >>> knn_evaluate(encoder, (x, y), (x, y), k=1, top_k=(1, 2))
    {1: 1.0, 2: 1.0}
    """
    check_callable("encoder", encoder, "a Keras model or callable")
    batch_size = check_positive_int("batch_size", batch_size)
    x_train, y_train = labelled_features(encoder, "train_data", train_data, batch_size)
    x_val, y_val = labelled_features(encoder, "val_data", val_data, batch_size)
    check_same_dim("val_data features", x_val, "train_data features", x_train)
    return knn_accuracy(
        x_train,
        y_train,
        x_val,
        y_val,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        batch_size=batch_size,
        top_k=top_k,
    )
