"""Frozen features of an encoder, and its kNN accuracy on labelled data."""

import keras
import numpy as np
from keras import ops

from keras_contrastive._validation import (
    check_callable,
    check_positive_int,
    fail,
    shown_as,
)
from keras_contrastive.evaluation.arrays import check_labelled_data, to_numpy
from keras_contrastive.evaluation.knn import knn_accuracy


def compute_embeddings(encoder, x, batch_size=256):
    """Runs `encoder` in inference mode over `x` in batches; returns 2-D NumPy.

    Integer images (e.g. uint8 from the loaders in `keras_contrastive.datasets`)
    are cast to float32 with their values unchanged (0..255), which is what an
    encoder trained behind the library's augmenters receives.

    Args:
        encoder: a `keras.Model` (run through `predict`) or any callable layer
            mapping a batch to a `(batch, features)` tensor.
        x: array of inputs, first axis the samples.
        batch_size: samples per forward pass.

    Returns:
        float32 NumPy array of shape `(len(x), features)`.

    Example:

    >>> import keras, numpy as np
    >>> encoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4)])
    >>> compute_embeddings(encoder, np.zeros((3, 2, 2, 1), "uint8")).shape
    (3, 4)
    """
    check_callable("encoder", encoder, "a Keras model or callable")
    batch_size = check_positive_int("batch_size", batch_size)
    x = to_numpy(x)
    if x.ndim == 0 or x.shape[0] == 0:
        fail("x.shape", "(num_samples, ...) with at least one sample", x.shape)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        x = x.astype(np.float32)
    if isinstance(encoder, keras.Model):
        features = encoder.predict(x, batch_size=batch_size, verbose=0)
    else:
        features = [
            encoder(
                ops.convert_to_tensor(x[start : start + batch_size]), training=False
            )
            for start in range(0, x.shape[0], batch_size)
        ]
        if all(keras.ops.is_tensor(f) for f in features):
            features = np.concatenate([to_numpy(f) for f in features], axis=0)
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


def knn_evaluate(
    encoder,
    train_data,
    val_data,
    k=200,
    temperature=0.1,
    batch_size=256,
    num_classes=None,
):
    """kNN top-1 accuracy of `encoder`'s features: `val_data` against `train_data`.

    Embeds both sets with `compute_embeddings` and scores the validation set with
    `knn_accuracy` (weighted cosine kNN, Wu et al. 2018).

    Args:
        encoder: a Keras model (or callable) returning `(batch, features)`.
        train_data: `(images, labels)`, the labelled memory set.
        val_data: `(images, labels)`, the queries to classify.
        k, temperature: as in `knn_classify`.
        batch_size: samples per forward pass and queries per kNN batch.
        num_classes: defaults to the largest label in either set plus one.

    Returns:
        The accuracy as a Python float in [0, 1].

    Example:

    >>> import keras, numpy as np
    >>> x = np.eye(4, dtype="float32")
    >>> y = np.array([0, 0, 1, 1])
    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
    >>> knn_evaluate(encoder, (x, y), (x, y), k=1)
    1.0
    """
    x_train, y_train = check_labelled_data("train_data", train_data)
    x_val, y_val = check_labelled_data("val_data", val_data)
    if num_classes is None:
        num_classes = int(max(y_train.max(initial=0), y_val.max(initial=0))) + 1
    return knn_accuracy(
        compute_embeddings(encoder, x_train, batch_size),
        y_train,
        compute_embeddings(encoder, x_val, batch_size),
        y_val,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        batch_size=batch_size,
    )
