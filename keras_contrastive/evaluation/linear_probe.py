"""Linear evaluation protocol: a softmax classifier on frozen, standardised features."""

import keras
import numpy as np

from keras_contrastive._validation import (
    check_number,
    check_positive_int,
    check_positive_number,
    fail,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation._data import is_stream
from keras_contrastive.evaluation.arrays import (
    check_embeddings,
    check_labels,
    resolve_num_classes,
)
from keras_contrastive.evaluation.embeddings import compute_embeddings, embed_stream


def _features(encoder, x, y, name, label_name, batch_size):
    """`(features, labels or None)`: labels come from a stream's batches."""
    if is_stream(x):
        if y is not None:
            fail(
                label_name,
                f"None when `{name}` is a dataset (its batches carry the labels)",
                summarize(y),
            )
        features, labels = embed_stream(encoder, x, name, labelled=True)
        return check_embeddings(f"{name} features", features), labels
    if y is None:
        fail(
            label_name,
            f"integer labels, one per row of `{name}` (None only when `{name}` "
            "is a dataset of (inputs, labels) batches)",
            None,
        )
    if encoder is None:
        return check_embeddings(name, x, allow_empty=False), y
    return compute_embeddings(encoder, x, batch_size), y


def linear_probe(
    encoder,
    x_train,
    y_train,
    x_test,
    y_test,
    epochs=50,
    batch_size=256,
    learning_rate=1e-2,
    weight_decay=0.0,
    num_classes=None,
    verbose=0,
):
    """Test accuracy of a linear classifier trained on frozen encoder features.

    The features of both sets are extracted once (`encoder.predict`, batched, in
    inference mode), standardised with the training set's per-feature mean and
    standard deviation, and a single `Dense(num_classes, "softmax")` layer is trained
    on them with Adam and sparse categorical cross-entropy. The encoder is never
    updated. Integer images are cast to float32 with unchanged values, as in
    `compute_embeddings`.

    `x_train` and `x_test` may also be datasets of `(inputs, labels)` batches (a
    `tf.data.Dataset` on any backend, a `keras.utils.PyDataset` or any iterable
    of batches), with `y_train` / `y_test` None: they are embedded one batch at a
    time, so only the features are ever held in memory.

    Args:
        encoder: a Keras model (or callable) mapping inputs to `(batch, features)`;
            `None` means `x_train` and `x_test` already are 2-D features.
        x_train, y_train: training inputs and integer labels; or a dataset of
            `(inputs, labels)` batches and None.
        x_test, y_test: test inputs and integer labels; or a dataset and None.
        epochs: passes over the training features.
        batch_size: batch size of feature extraction and of classifier training.
        learning_rate: Adam's learning rate.
        weight_decay: decoupled weight decay of the classifier (AdamW when > 0).
        num_classes: the classifier's number of outputs; labels must be below
            it. By default the distinct labels of both sets, mapped to
            0..C-1 (the labels themselves when they are 0..C-1).
        verbose: verbosity of the classifier's `fit`.

    Returns:
        Test accuracy as a Python float in [0, 1].

    Raises:
        ValueError: `y_train` holds a single class (any classifier would score
            1.0), or any of the argument checks fails.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 5)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int64")
    >>> accuracy = linear_probe(
    ...     None, x[:150], y[:150], x[150:], y[150:], epochs=20, learning_rate=0.1
    ... )
    >>> accuracy > 0.9
    True
    >>> train_batches = [(x[i : i + 50], y[i : i + 50]) for i in range(0, 150, 50)]
    >>> accuracy = linear_probe(
    ...     None, train_batches, None, x[150:], y[150:], epochs=20, learning_rate=0.1
    ... )
    >>> accuracy > 0.9
    True
    """
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_number("learning_rate", learning_rate)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0.0)

    train_features, y_train = _features(
        encoder, x_train, y_train, "x_train", "y_train", batch_size
    )
    test_features, y_test = _features(
        encoder, x_test, y_test, "x_test", "y_test", batch_size
    )
    if train_features.shape[1] != test_features.shape[1]:
        fail(
            "x_test",
            "inputs whose features have the size of `x_train`'s "
            f"({train_features.shape[1]})",
            shown_as(f"inputs whose features have size {test_features.shape[1]}"),
        )
    y_train = check_labels("y_train", y_train, len(train_features), "x_train")
    y_test = check_labels("y_test", y_test, len(test_features), "x_test")
    present = np.unique(y_train)
    if len(present) < 2:
        fail(
            "y_train",
            "labels of at least 2 classes",
            shown_as(f"an array whose every label is {present.tolist()[0]}"),
            detail="A classifier of one class is always right: its accuracy "
            "would say nothing about the features",
        )
    if num_classes is None:
        # The classes present in either set, mapped to 0..C-1 (np.unique): the
        # same as the labels themselves when they are 0..C-1, and a label of
        # 10**9 does not make a 10**9-unit classifier.
        classes = np.unique(np.concatenate([y_train, y_test]))
        y_train = np.searchsorted(classes, y_train)
        y_test = np.searchsorted(classes, y_test)
        num_classes = len(classes)
    num_classes = resolve_num_classes(num_classes, y_train, "y_train")
    resolve_num_classes(num_classes, y_test, "y_test")

    # Standardising makes one learning rate fit encoders whose feature scales
    # differ by orders of magnitude (ReLU sums, BN outputs, normalised vectors).
    mean = train_features.mean(axis=0)
    std = train_features.std(axis=0) + 1e-6
    train_features = (train_features - mean) / std
    test_features = (test_features - mean) / std

    classifier = keras.Sequential(
        [
            keras.Input((train_features.shape[1],)),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    if weight_decay > 0:
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate)
    classifier.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    classifier.fit(
        train_features,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=verbose,
    )
    probabilities = classifier.predict(test_features, batch_size=4096, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=-1) == y_test))
