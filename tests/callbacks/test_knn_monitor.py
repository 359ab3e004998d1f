import keras
import numpy as np
import pytest

from keras_contrastive.callbacks import KNNMonitor
from tests.evaluation.reference import reference_knn


class TinyClassifier(keras.Model):
    """A supervised stand-in for a contrastive model: it exposes `.encoder`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5)])
        self.head = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.head(self.encoder(x))


def _data(rng, num):
    means = np.array([[3, 0, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0], [0, 0, 3, 0, 0, 0]])
    labels = rng.integers(0, 3, num)
    return (means[labels] + rng.normal(size=(num, 6))).astype("float32"), labels


def _reference_accuracy(encoder, train, val, k):
    # Embeddings from the encoder itself, kNN from the NumPy reference.
    train_features = keras.ops.convert_to_numpy(encoder(train[0]))
    val_features = keras.ops.convert_to_numpy(encoder(val[0]))
    predicted, _, _ = reference_knn(train_features, train[1], val_features, k, 0.1, 3)
    return np.mean(predicted == val[1])


def test_writes_val_knn_accuracy_into_history_and_progress_bar(rng, capsys):
    train, val = _data(rng, 60), _data(rng, 30)
    model = TinyClassifier()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    monitor = KNNMonitor(train, val, k=200)
    history = model.fit(
        train[0], train[1], epochs=3, batch_size=20, callbacks=[monitor], verbose=2
    )
    values = history.history["val_knn_accuracy"]
    assert len(values) == 3 and all(0.0 <= v <= 1.0 for v in values)
    assert [epoch for epoch, _ in monitor.history] == [0, 1, 2]
    # The last value is the kNN accuracy of the trained encoder (k clamped to 60).
    assert values[-1] == pytest.approx(
        _reference_accuracy(model.encoder, train, val, 60), abs=1 / 30 + 1e-9
    )
    # verbose=2 prints one line per epoch, after our callback has written the key.
    assert capsys.readouterr().out.count("val_knn_accuracy") == 3


def test_every_and_explicit_encoder(rng):
    train, val = _data(rng, 40), _data(rng, 20)
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model = keras.Sequential([encoder, keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    monitor = KNNMonitor(train, val, every=2, k=5, encoder=encoder, log_name="knn")
    history = model.fit(
        train[0], train[1], epochs=4, batch_size=20, callbacks=[monitor], verbose=0
    )
    assert len(history.history["knn"]) == 2
    assert [epoch for epoch, _ in monitor.history] == [1, 3]
    assert history.history["knn"][-1] == pytest.approx(
        _reference_accuracy(encoder, train, val, 5), abs=1 / 20 + 1e-9
    )


def test_model_without_encoder_is_used_itself(rng):
    train, val = _data(rng, 30), _data(rng, 15)
    identity = keras.Sequential([keras.Input((6,)), keras.layers.Identity()])
    monitor = KNNMonitor(train, val, k=7)
    monitor.set_model(identity)
    expected, _, _ = reference_knn(train[0], train[1], val[0], 7, 0.1, 3)
    assert monitor.evaluate() == pytest.approx(np.mean(expected == val[1]))


def test_config_round_trip(rng):
    train, val = _data(rng, 10), _data(rng, 5)
    monitor = KNNMonitor(train, val, every=3, k=4, temperature=0.2, batch_size=8)
    config = monitor.get_config()
    clone = KNNMonitor.from_config(config)
    assert clone.get_config().keys() == config.keys()
    for key in ("every", "k", "temperature", "batch_size", "log_name", "verbose"):
        assert getattr(clone, key) == getattr(monitor, key)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(monitor)
    )
    assert isinstance(restored, KNNMonitor) and restored.k == 4
    np.testing.assert_allclose(restored.train_data[0], train[0], rtol=1e-6)
    np.testing.assert_array_equal(restored.val_data[1], val[1])


def test_bad_arguments(rng):
    train, val = _data(rng, 10), _data(rng, 5)
    with pytest.raises(
        ValueError,
        match=r"`train_data` must be an \(images, labels\) tuple, or a dataset of "
        r"\(images, labels\) batches \(tf.data.Dataset, keras.utils.PyDataset or "
        r"other iterable\). Received: "
        r"train_data=ndarray of shape \(10, 6\)",
    ):
        KNNMonitor(train[0], val)
    with pytest.raises(
        ValueError,
        match=r"`val_data\[1\].shape` must be \(5,\) or \(5, 1\): one class label "
        r"per row of `val_data\[0\]`. Received: val_data\[1\].shape=\(4,\)",
    ):
        KNNMonitor(train, (val[0], val[1][:4]))
    with pytest.raises(
        ValueError,
        match=r"`val_data\[0\].shape\[1:\]` must be the per-sample shape of "
        r"`train_data\[0\]` \(\(6,\)\). Received: val_data\[0\].shape\[1:\]=\(3,\)",
    ):
        KNNMonitor(train, (val[0][:, :3], val[1]))
    with pytest.raises(
        ValueError, match="`every` must be an int >= 1. Received: every=0"
    ):
        KNNMonitor(train, val, every=0)
    with pytest.raises(TypeError, match="`k` must be an int >= 1. Received: k=1.5"):
        KNNMonitor(train, val, k=1.5)
    with pytest.raises(
        ValueError, match="`temperature` must be a positive number. Received"
    ):
        KNNMonitor(train, val, temperature=0)
    with pytest.raises(TypeError, match="`encoder` must be a Keras model or callable"):
        KNNMonitor(train, val, encoder="dense")
    with pytest.raises(
        ValueError, match="`log_name` must be a non-empty string. Received: log_name=''"
    ):
        KNNMonitor(train, val, log_name="")
    with pytest.raises(
        ValueError,
        match="`encoder` must be given when the monitor is not attached to a model",
    ):
        KNNMonitor(train, val).evaluate()
