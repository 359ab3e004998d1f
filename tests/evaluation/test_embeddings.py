import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import compute_embeddings, knn_evaluate
from tests.evaluation.reference import reference_knn


def test_uint8_images_keep_their_values(rng):
    images = rng.integers(0, 256, (5, 3, 3, 2)).astype("uint8")
    encoder = keras.Sequential([keras.Input((3, 3, 2)), keras.layers.Flatten()])
    features = compute_embeddings(encoder, images, batch_size=2)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, images.reshape(5, -1).astype("float32"))


def test_plain_layer_is_called_in_batches(rng):
    x = rng.normal(size=(7, 4)).astype("float32")
    layer = keras.layers.Dense(3, use_bias=False)
    layer.build((None, 4))
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    np.testing.assert_allclose(
        compute_embeddings(layer, x, batch_size=3), x @ kernel, rtol=1e-5, atol=1e-5
    )


def test_encoder_errors(rng):
    images = rng.normal(size=(4, 5, 5, 3)).astype("float32")
    feature_map = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(2, 1)])
    with pytest.raises(
        ValueError,
        match=r"`encoder` must be a model returning a 2-D \(batch, features\) "
        r"tensor. Received: encoder=a model returning shape \(4, 5, 5, 2\). Add a "
        r"pooling",
    ):
        compute_embeddings(feature_map, images)
    with pytest.raises(
        TypeError,
        match="`encoder` must be a Keras model or callable. Received: "
        "encoder='not a model'",
    ):
        compute_embeddings("not a model", images)
    with pytest.raises(
        ValueError,
        match=r"`x.shape` must be \(num_samples, ...\) with at least one sample. "
        r"Received: x.shape=\(0, 5, 5, 3\)",
    ):
        compute_embeddings(feature_map, images[:0])
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        compute_embeddings(feature_map, images, batch_size=0)


def test_knn_evaluate_matches_reference(rng):
    means = rng.normal(size=(3, 6)) * 2
    y_train, y_val = rng.integers(0, 3, 90), rng.integers(0, 3, 30)
    x_train = (means[y_train] + rng.normal(size=(90, 6))).astype("float32")
    x_val = (means[y_val] + rng.normal(size=(30, 6))).astype("float32")
    weights = rng.normal(size=(6, 5)).astype("float32")
    encoder = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, use_bias=False)]
    )
    encoder.set_weights([weights])
    expected, _, vote_gap = reference_knn(
        x_train @ weights, y_train, x_val @ weights, 10, 0.1, 3
    )
    assert np.all(vote_gap > 1e-3)
    accuracy = knn_evaluate(encoder, (x_train, y_train), (x_val, y_val), k=10)
    assert accuracy == pytest.approx(np.mean(expected == y_val))
    with pytest.raises(
        ValueError,
        match=r"`train_data` must be an \(images, labels\) tuple, or a dataset of "
        r"\(images, labels\) batches \(tf.data.Dataset, keras.utils.PyDataset or "
        r"other iterable\). Received: "
        r"train_data=ndarray of shape \(90, 6\) and dtype float32",
    ):
        knn_evaluate(encoder, x_train, (x_val, y_val))
