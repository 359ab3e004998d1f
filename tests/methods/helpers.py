"""Small networks, NumPy references and real images for the method tests."""

import functools

import keras
import numpy as np
from keras import ops

from keras_contrastive.layers import ProjectionHead


@keras.saving.register_keras_serializable(package="tests_methods")
class BatchSizeSpy(keras.layers.Layer):
    """Identity that records the batch sizes it sees (at trace time when compiled)."""

    seen = []

    def call(self, x):
        BatchSizeSpy.seen.append(x.shape[0])
        return x


@keras.saving.register_keras_serializable(package="tests_methods")
class Linear(keras.layers.Layer):
    """x W with a trainable kernel and no bias: a toy encoder with NumPy-checkable
    outputs."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="glorot_uniform"
        )

    def call(self, x):
        return ops.matmul(ops.cast(x, self.compute_dtype), self.kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def tiny_encoder(size=8, channels=3, filters=4, batch_norm=True, spy=False):
    layers = [
        keras.Input((size, size, channels)),
        *([BatchSizeSpy()] if spy else []),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(filters, 3, strides=2, use_bias=not batch_norm),
    ]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D()]
    return keras.Sequential(layers)


def linear_encoder(size=2, channels=1, units=3):
    """images -> flatten -> x W (no bias): features computable in NumPy."""
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Flatten(),
            keras.layers.Dense(units, use_bias=False),
        ]
    )


def linear_head(output_dim=3):
    """A linear head with bias and no batch norm."""
    return ProjectionHead(hidden_dims=(), output_dim=output_dim, batch_norm=False)


def numpy_linear(x, *layers):
    """Applies Dense layers (kernel [, bias]) in NumPy (float64) to flattened x."""
    out = np.asarray(x, np.float64).reshape(len(x), -1)
    for layer in layers:
        weights = [ops.convert_to_numpy(w).astype(np.float64) for w in layer.weights]
        out = out @ weights[0]
        if len(weights) > 1:
            out = out + weights[1]
    return out


def dense_layers(network):
    return [
        layer
        for layer in network._flatten_layers()
        if layer.weights and (isinstance(layer, keras.layers.Dense))
    ]


def unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def random_images(rng, n=16, size=8, channels=3):
    return rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


def numpy_info_nce(query, keys, negatives, temperature):
    """InfoNCE of q_i against k_i, the other keys and shared negatives (float64)."""
    q, k, neg = unit(query), unit(keys), unit(negatives)
    losses, hits = [], []
    for i in range(len(q)):
        logits = np.concatenate([k @ q[i], neg @ q[i]]) / temperature
        top = logits.max()
        losses.append(top + np.log(np.exp(logits - top).sum()) - logits[i])
        hits.append(np.argmax(logits) == i)
    return float(np.mean(losses)), float(np.mean(hits))


def numpy_byol(p, t):
    return float(np.mean(2.0 - 2.0 * np.sum(unit(p) * unit(t), axis=-1)))


@functools.cache
def cifar_sample(size=16):
    """The bundled CIFAR-10 sample, resized to `size` (cached, read-only)."""
    from keras_contrastive.datasets import load_cifar10_sample

    (x_train, y_train), (x_test, y_test) = load_cifar10_sample()

    def resize(x):
        if size == x.shape[1]:
            return x
        out = ops.image.resize(x.astype("float32"), (size, size), antialias=True)
        return np.clip(np.round(to_numpy(out)), 0, 255).astype(np.uint8)

    return (resize(x_train), y_train), (resize(x_test), y_test)


def knn_accuracy(encoder, train, test, k=50):
    from keras_contrastive.evaluation import knn_classify

    train_emb = encoder.predict(train[0], batch_size=512, verbose=0)
    test_emb = encoder.predict(test[0], batch_size=512, verbose=0)
    predicted = to_numpy(knn_classify(train_emb, train[1], test_emb, k=k))
    return float(np.mean(predicted == test[1]))


def conv_encoder(size):
    """Two conv-BN-ReLU blocks (16, 32 channels) for the short learning tests."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


def split_cifar(size, num_train=2048):
    """(train, queries) of the bundled sample at `size`: a random `num_train`
    training images (the sample is stored class by class, so every class is in),
    and as kNN queries the other training images plus the 1,000 held-out ones."""
    (x_train, y_train), (x_test, y_test) = cifar_sample(size)
    rows = np.random.default_rng(0).permutation(len(x_train))
    train = (x_train[rows[:num_train]], y_train[rows[:num_train]])
    queries = (
        np.concatenate([x_test, x_train[rows[num_train:]]]),
        np.concatenate([y_test, y_train[rows[num_train:]]]),
    )
    return train, queries
