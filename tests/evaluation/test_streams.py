"""Datasets instead of arrays in compute_embeddings, knn_evaluate, linear_probe and
KNNMonitor, and the top-k kNN accuracy, against NumPy references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_contrastive.callbacks import KNNMonitor
from keras_contrastive.evaluation import (
    compute_embeddings,
    knn_accuracy,
    knn_evaluate,
    linear_probe,
)


class Batches(keras.utils.PyDataset):
    """A PyDataset over arrays, `batch_size` rows per batch."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


def _blobs(rng, num, num_classes=6, dim=8):
    means = rng.normal(size=(num_classes, dim)) * 1.5
    labels = rng.integers(0, num_classes, num)
    return (means[labels] + rng.normal(size=(num, dim))).astype("float32"), labels


def _encoder(dim=8, out=5):
    return keras.Sequential([keras.Input((dim,)), keras.layers.Dense(out)])


def _streams(x, y, batch_size=16):
    """The same labelled data as a tf.data.Dataset, a PyDataset and a list."""
    return {
        "tf.data": tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size),
        "PyDataset": Batches(x, y, batch_size),
        "list": [
            (x[i : i + batch_size], y[i : i + batch_size])
            for i in range(0, len(x), batch_size)
        ],
    }


def test_compute_embeddings_of_streams_equal_the_arrays(rng):
    x, y = _blobs(rng, 50)
    encoder = _encoder()
    expected = compute_embeddings(encoder, x)
    for name, stream in _streams(x, y).items():
        features, labels = compute_embeddings(encoder, stream, return_labels=True)
        np.testing.assert_allclose(
            features, expected, rtol=1e-5, atol=1e-6, err_msg=name
        )
        np.testing.assert_array_equal(labels, y)
    # Unlabelled batches, a plain layer, a generator and uint8 inputs.
    images = rng.integers(0, 256, (10, 8)).astype("uint8")
    layer = keras.layers.Dense(3)
    generator = (images[i : i + 4] for i in range(0, 10, 4))
    np.testing.assert_allclose(
        compute_embeddings(layer, generator),
        keras.ops.convert_to_numpy(layer(images.astype("float32"))),
        rtol=1e-5,
        atol=1e-4,
    )


def test_torch_dataloader_on_any_backend(rng):
    torch = pytest.importorskip("torch")
    x, y = _blobs(rng, 30)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=8,
    )
    encoder = _encoder()
    features, labels = compute_embeddings(encoder, loader, return_labels=True)
    np.testing.assert_allclose(
        features, compute_embeddings(encoder, x), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(labels, y)


def test_shuffled_dataset_keeps_labels_aligned(rng):
    x, y = _blobs(rng, 40)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=1).batch(8)
    features, labels = compute_embeddings(_encoder(), dataset, return_labels=True)
    # Identity encoder: each feature row is its own input, whose label is known.
    identity = keras.Sequential([keras.Input((8,)), keras.layers.Identity()])
    rows, labels = compute_embeddings(identity, dataset, return_labels=True)
    lookup = {row.tobytes(): label for row, label in zip(x, y)}
    assert [lookup[row.tobytes()] for row in rows] == labels.tolist()
    assert features.shape == (40, 5)


def test_stream_errors(rng):
    x, y = _blobs(rng, 12)
    encoder = _encoder()
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match=r"scalar label.*dataset.batch\(256\)"):
        compute_embeddings(encoder, unbatched, return_labels=True)
    with pytest.raises(ValueError, match="`x` must be a stream of .*no labels"):
        compute_embeddings(encoder, [(x,)], return_labels=True)
    with pytest.raises(ValueError, match="`x` must be a stream of at least one batch"):
        compute_embeddings(encoder, iter([]))
    with pytest.raises(TypeError, match=r"`x` must be a dataset .* of \(x, y\)"):
        compute_embeddings(encoder, x, return_labels=True)
    with pytest.raises(ValueError, match=r"`x labels.shape` must be \(4,\)"):
        compute_embeddings(encoder, [(x[:4], y[:3])], return_labels=True)


def _reference_top_k(train, train_labels, query, query_labels, k, t, top):
    """Brute force in float64: log-votes per class, classes ranked by
    (-vote, label), right when the true label is among the first `top`."""
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    classes = np.unique(train_labels)
    right = []
    for row, truth in zip(query @ train.T, query_labels):
        chosen = np.argsort(-row, kind="stable")[: min(k, len(row))]
        log_votes = {c: -np.inf for c in classes}
        for i in chosen:
            c = train_labels[i]
            log_votes[c] = np.logaddexp(log_votes[c], row[i] / t)
        ranked = sorted(classes, key=lambda c: (-log_votes[c], c))
        right.append(truth in ranked[:top])
    return float(np.mean(right))


@pytest.mark.parametrize("k", [1, 7, 40])
def test_top_k_accuracy_matches_brute_force(rng, k):
    train, train_labels = _blobs(rng, 120, num_classes=8)
    query, query_labels = _blobs(rng, 50, num_classes=8)
    result = knn_accuracy(
        train,
        train_labels,
        query,
        query_labels,
        k=k,
        temperature=0.1,
        top_k=(1, 3, 5),
    )
    for top in (1, 3, 5):
        expected = _reference_top_k(
            train, train_labels, query, query_labels, k, 0.1, top
        )
        assert result[top] == pytest.approx(expected), top
    # An int top_k returns a float, the default is top-1 as before.
    assert knn_accuracy(train, train_labels, query, query_labels, k=k) == result[1]
    assert knn_accuracy(
        train, train_labels, query, query_labels, k=k, top_k=5
    ) == pytest.approx(result[5])
    # Top-k with k >= the number of classes: every query whose label is known.
    assert knn_accuracy(train, train_labels, query, query_labels, top_k=8) == 1.0


def test_top_k_unknown_query_labels_are_wrong_and_ties_go_to_the_lower_label():
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    # Query equidistant from both: equal votes, class 0 ranks first.
    query = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    result = knn_accuracy(train, [0, 1], query, [0, 1, 7], k=2, top_k=(1, 2))
    assert result == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="`top_k` must be an int or a non-empty"):
        knn_accuracy(train, [0, 1], query, [0, 1, 0], top_k=0)


def test_knn_evaluate_of_streams_equals_the_arrays(rng):
    (x_train, y_train), (x_val, y_val) = _blobs(rng, 80), _blobs(rng, 30)
    encoder = _encoder()
    expected = knn_evaluate(
        encoder, (x_train, y_train), (x_val, y_val), k=10, top_k=(1, 5)
    )
    for name, train in _streams(x_train, y_train).items():
        val = _streams(x_val, y_val, batch_size=7)[name]
        result = knn_evaluate(encoder, train, val, k=10, top_k=(1, 5))
        assert result == pytest.approx(expected), name
    mixed = knn_evaluate(encoder, Batches(x_train, y_train, 32), (x_val, y_val), k=10)
    assert mixed == pytest.approx(expected[1])


def test_linear_probe_reads_features_and_labels_from_streams(rng):
    x, y = _blobs(rng, 120, num_classes=3)
    x[:, :3] += 8 * np.eye(3)[y]  # separable: a right probe scores about 1
    encoder = _encoder(out=6)
    # A shuffled training stream: labels read apart from their images would
    # leave the probe at chance (1/3).
    train = tf.data.Dataset.from_tensor_slices((x[:90], y[:90])).shuffle(90, seed=0)
    accuracy = linear_probe(
        encoder,
        train.batch(25),
        None,
        Batches(x[90:], y[90:], 8),
        None,
        epochs=10,
        learning_rate=0.2,
    )
    assert accuracy > 0.8
    with pytest.raises(ValueError, match="`y_train` must be None when `x_train` is"):
        linear_probe(encoder, train.batch(25), y[:90], x[90:], y[90:])
    with pytest.raises(ValueError, match="`y_test` must be integer labels"):
        linear_probe(encoder, train.batch(25), None, x[90:], None)


def test_knn_monitor_with_datasets_logs_top1_and_top5(rng):
    (x_train, y_train), (x_val, y_val) = _blobs(rng, 60), _blobs(rng, 24)
    encoder = _encoder()
    model = keras.Sequential([encoder, keras.layers.Dense(6, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(16)
    monitor = KNNMonitor(train_ds, Batches(x_val, y_val, 10), k=10, encoder=encoder)
    history = model.fit(
        x_train, y_train, epochs=2, batch_size=20, callbacks=[monitor], verbose=0
    )
    logs = history.history
    assert len(logs["val_knn_accuracy"]) == len(logs["val_knn_top5_accuracy"]) == 2
    expected = knn_evaluate(
        encoder, (x_train, y_train), (x_val, y_val), k=10, top_k=(1, 5)
    )
    assert logs["val_knn_accuracy"][-1] == pytest.approx(expected[1])
    assert logs["val_knn_top5_accuracy"][-1] == pytest.approx(expected[5])
    assert monitor.history[-1] == (1, pytest.approx(expected[1]))
    assert monitor.evaluate() == pytest.approx(expected[1])
    with pytest.raises(NotImplementedError, match="`train_data` is a dataset"):
        monitor.get_config()


def test_knn_monitor_top_k_names_and_errors(rng):
    train, val = _blobs(rng, 20), _blobs(rng, 10)
    monitor = KNNMonitor(train, val, log_name="knn", top_k=(1, 3))
    assert monitor.log_names() == {1: "knn", 3: "knn_top3"}
    assert KNNMonitor(train, val, top_k=1).log_names() == {1: "val_knn_accuracy"}
    config = KNNMonitor(train, val, top_k=(1, 3)).get_config()
    assert KNNMonitor.from_config(config).top_k == (1, 3)
    with pytest.raises(TypeError, match="`train_data` must be a dataset that can be"):
        KNNMonitor((batch for batch in [train]), val)
    with pytest.raises(ValueError, match="`top_k` must be distinct ints"):
        KNNMonitor(train, val, top_k=(1, 1))
