"""`batch_norm_views`: one network call on all views, or one per view."""

import keras
import numpy as np
import pytest

from keras_contrastive.layers import PredictionHead, ProjectionHead
from keras_contrastive.models import BYOL, SimCLR, SimSiam
from keras_contrastive.models.image_model import map_views

EPSILON = 1e-3  # Keras' batch-norm default


def numpy_batch_norm(x):
    """Training-mode batch norm with unit scale and zero offset, in float64."""
    x = np.asarray(x, np.float64)
    return (x - x.mean(0)) / np.sqrt(x.var(0) + EPSILON)


def test_map_views_normalises_views_jointly_or_each_alone(rng):
    norm = keras.layers.BatchNormalization(epsilon=EPSILON)
    a = rng.normal(0.0, 1.0, (5, 3)).astype("float32")
    b = rng.normal(2.0, 3.0, (5, 3)).astype("float32")

    def network(x):
        return norm(x, training=True)

    per_view = [
        keras.ops.convert_to_numpy(t) for t in map_views(network, [a, b], "per_view")
    ]
    joint = [keras.ops.convert_to_numpy(t) for t in map_views(network, [a, b], "joint")]
    for got, view in zip(per_view, (a, b)):
        np.testing.assert_allclose(got, numpy_batch_norm(view), atol=1e-4)
    both = numpy_batch_norm(np.concatenate([a, b]))
    np.testing.assert_allclose(joint[0], both[:5], atol=1e-4)
    np.testing.assert_allclose(joint[1], both[5:], atol=1e-4)
    # The two modes differ when the views' statistics differ.
    assert np.abs(per_view[1] - joint[1]).max() > 0.1


class FixedViews(keras.layers.Layer):
    """The two 'views' of a batch: the images, and the images reversed and scaled
    (different statistics), so that joint and per-view batch norm differ."""

    def call(self, x, training=None):
        return x


def _two_views(model):
    def augment(x):
        return x, 3.0 * keras.ops.flip(x, axis=0) + 1.0

    model.augment = augment
    return model


def _encoder():
    return keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(epsilon=EPSILON),
        ]
    )


def _linear(output_dim):
    return ProjectionHead(hidden_dims=(), output_dim=output_dim, batch_norm=False)


@pytest.mark.parametrize("mode", ["joint", "per_view"])
@pytest.mark.parametrize("cls", [SimCLR, BYOL, SimSiam])
def test_forward_pass_normalises_as_configured(rng, cls, mode):
    kwargs = {"batch_norm_views": mode, "augmenter": FixedViews()}
    if cls is not SimCLR:
        kwargs["prediction_head"] = PredictionHead(
            hidden_dims=(), output_dim=3, batch_norm=False
        )
    model = _two_views(cls(_encoder(), _linear(3), **kwargs))
    x = rng.normal(size=(6, 2, 2, 1)).astype("float32")
    model.build(x.shape)
    outputs = model.forward_pass(keras.ops.convert_to_tensor(x), training=True)
    kernel, bias = (
        keras.ops.convert_to_numpy(w) for w in model.projection_head.blocks[-1].weights
    )
    view_a, view_b = x.reshape(6, 4), (3.0 * x[::-1] + 1.0).reshape(6, 4)
    if mode == "per_view":
        features_a = numpy_batch_norm(view_a)
    else:
        features_a = numpy_batch_norm(np.concatenate([view_a, view_b]))[:6]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(outputs["z_a"]),
        features_a @ kernel + bias,
        atol=1e-4,
    )


@pytest.mark.parametrize("cls", [SimCLR, BYOL, SimSiam])
def test_config_round_trip_and_bad_values(rng, cls):
    model = cls(_encoder(), _linear(3), batch_norm_views="per_view")
    assert model.get_config()["batch_norm_views"] == "per_view"
    assert cls.from_config(model.get_config()).batch_norm_views == "per_view"
    assert cls(_encoder()).batch_norm_views == "per_view"
    with pytest.raises(ValueError, match="batch_norm_views"):
        cls(_encoder(), batch_norm_views="per-view")


def test_per_view_simclr_fits(rng):
    encoder = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, strides=2),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    model = SimCLR(encoder, ProjectionHead((8,), 4), batch_norm_views="per_view")
    model.compile(optimizer="adam")
    images = rng.integers(0, 256, (16, 16, 16, 3), dtype="uint8")
    history = model.fit(images, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
