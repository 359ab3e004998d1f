import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import linear_probe


def _separable(rng, num=400, dim=8, num_classes=3):
    # Well separated Gaussian blobs: a linear classifier can reach ~100%.
    means = rng.normal(size=(num_classes, dim)) * 4.0
    labels = rng.integers(0, num_classes, num)
    x = means[labels] + rng.normal(size=(num, dim)) * 0.5
    # Scale of the features far from 1, which the standardisation must absorb.
    return (x * 50.0 + 300.0).astype("float32"), labels


def test_high_accuracy_through_a_frozen_dense_encoder(rng):
    x, y = _separable(rng)
    encoder = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16)])
    before = [w.copy() for w in encoder.get_weights()]
    accuracy = linear_probe(
        encoder,
        x[:300],
        y[:300],
        x[300:],
        y[300:],
        epochs=8,
        batch_size=60,
        learning_rate=0.05,
    )
    assert isinstance(accuracy, float)
    assert accuracy >= 0.95
    # Frozen: the probe never touches the encoder.
    for old, new in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_images_through_an_encoder_with_pooling(rng):
    # uint8 images whose mean brightness encodes the class.
    y = rng.integers(0, 2, 120)
    images = rng.integers(0, 100, (120, 6, 6, 3)) + 120 * y[:, None, None, None]
    images = images.astype("uint8")
    encoder = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.GlobalAveragePooling2D()]
    )
    accuracy = linear_probe(
        encoder,
        images[:80],
        y[:80],
        images[80:],
        y[80:],
        epochs=10,
        batch_size=16,
        learning_rate=0.05,
    )
    assert accuracy >= 0.95


def test_bad_inputs(rng):
    x, y = _separable(rng, num=40)
    no_pool = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3)])
    images = rng.normal(size=(10, 4, 4, 3)).astype("float32")
    with pytest.raises(ValueError, match="2-D .*pooling"):
        linear_probe(no_pool, images, y[:10], images, y[:10])
    with pytest.raises(
        ValueError,
        match=r"`y_train.shape` must be \(20,\) or \(20, 1\): one class label per "
        r"row of `x_train`. Received: y_train.shape=\(30,\)",
    ):
        linear_probe(None, x[:20], y[:30], x[20:], y[20:])
    with pytest.raises(ValueError, match="`epochs` must be an int >= 1. Received"):
        linear_probe(None, x[:20], y[:20], x[20:], y[20:], epochs=0)
    with pytest.raises(
        ValueError,
        match="`learning_rate` must be a positive number. Received: learning_rate=-1.0",
    ):
        linear_probe(None, x[:20], y[:20], x[20:], y[20:], learning_rate=-1.0)
    with pytest.raises(ValueError, match=r"`weight_decay` must be a number in \[0"):
        linear_probe(None, x[:20], y[:20], x[20:], y[20:], weight_decay=-0.1)
    with pytest.raises(
        ValueError,
        match=r"`x_test` must be inputs whose features have the size of `x_train`'s "
        r"\(8\). Received: x_test=inputs whose features have size 3",
    ):
        linear_probe(None, x[:20], y[:20], x[20:, :3], y[20:])


def test_one_class_is_a_value_error(rng):
    x, _ = _separable(rng, num=40)
    one = np.full(40, 3)
    message = (
        r"`y_train` must be labels of at least 2 classes. Received: "
        r"y_train=an array whose every label is 3"
    )
    with pytest.raises(ValueError, match=message):
        linear_probe(None, x[:30], one[:30], x[30:], one[30:], epochs=1)


def test_arbitrary_label_values(rng, monkeypatch):
    x, y = _separable(rng, num=200)
    ids = np.array([10**9, 17, 3 * 10**12])
    sizes = []
    real_dense = keras.layers.Dense

    def recording_dense(units, *args, **kwargs):
        sizes.append(units)
        return real_dense(units, *args, **kwargs)

    monkeypatch.setattr(keras.layers, "Dense", recording_dense)
    accuracy = linear_probe(
        None,
        x[:150],
        ids[y[:150]],
        x[150:],
        ids[y[150:]],
        epochs=8,
        batch_size=50,
        learning_rate=0.05,
    )
    assert sizes == [3] and accuracy >= 0.95
