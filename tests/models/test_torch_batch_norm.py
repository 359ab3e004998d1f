"""fused_batch_normalization: Keras' batch normalization in PyTorch's fused kernels.

Outputs, moving statistics and gradients against a float64 NumPy batch
normalization (Ioffe & Szegedy 2015, Algorithm 1 and the backward pass of
section 3, written out below), and against Keras' own functions; cases the
kernels do not take go to Keras' own. Run on every backend: on TensorFlow and
JAX the context must change nothing.
"""

import importlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.models import SimCLR, fused_batch_normalization
from tests.backend_grad import value_and_grad
from tests.conftest import BACKEND

torch_only = pytest.mark.skipif(
    BACKEND != "torch", reason="the context changes nothing on this backend"
)

EPSILON = 1e-3


def numpy_batch_norm(x, gamma, beta, upstream):
    """(output, d/dx, d/dgamma, d/dbeta) of sum(upstream * BN(x)) in float64,
    normalizing each channel (last axis) by its batch mean and biased variance."""
    x, gamma, beta, g = (np.asarray(a, np.float64) for a in (x, gamma, beta, upstream))
    axes = (0, 1, 2)
    count = x.size // x.shape[-1]
    mean, var = x.mean(axes), x.var(axes)
    inverse_std = 1.0 / np.sqrt(var + EPSILON)
    x_hat = (x - mean) * inverse_std
    d_x_hat = g * gamma
    d_x = (
        inverse_std
        / count
        * (count * d_x_hat - d_x_hat.sum(axes) - x_hat * (d_x_hat * x_hat).sum(axes))
    )
    return x_hat * gamma + beta, d_x, (g * x_hat).sum(axes), g.sum(axes)


@pytest.fixture
def batch(rng):
    # An offset mean: E[x^2] - E[x]^2 would cancel, the two-pass sum does not.
    x = (rng.normal(size=(6, 5, 4, 3)) * [0.5, 2.0, 1.0] + [3.0, -1.0, 0.0]).astype(
        "float32"
    )
    gamma = rng.uniform(0.5, 1.5, size=3).astype("float32")
    beta = rng.normal(size=3).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")
    return x, gamma, beta, upstream


def _training_normalization(x, gamma, beta, upstream):
    """What BatchNormalization does in training mode, as a scalar objective."""
    mean, variance = ops.moments(x, axes=[0, 1, 2])
    y = ops.batch_normalization(
        x, mean, variance, axis=-1, offset=beta, scale=gamma, epsilon=EPSILON
    )
    return ops.sum(y * ops.convert_to_tensor(upstream))


def test_training_mode_value_and_gradients_match_numpy(batch):
    x, gamma, beta, upstream = batch
    expected_y, d_x, d_gamma, d_beta = numpy_batch_norm(*batch)

    def objective(x, gamma, beta):
        return _training_normalization(x, gamma, beta, upstream)

    with fused_batch_normalization():
        value, grads = value_and_grad(objective, x, gamma, beta)
    assert value == pytest.approx(np.sum(expected_y * upstream), rel=1e-5, abs=1e-4)
    for got, want in zip(grads, (d_x, d_gamma, d_beta)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # And Keras' own functions, outside the context, agree with both.
    keras_value, keras_grads = value_and_grad(objective, x, gamma, beta)
    assert value == pytest.approx(keras_value, rel=1e-5, abs=1e-4)
    for got, want in zip(grads, keras_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_the_statistics_keep_their_own_gradient(batch, rng):
    """Used outside the normalization, the mean and variance differentiate as
    d mean / dx = 1 / M and d var / dx = 2 (x - mean) / M."""
    x = batch[0]
    a, b = rng.normal(size=3), rng.normal(size=3)

    def objective(x):
        mean, variance = ops.moments(x, axes=[0, 1, 2])
        a_, b_ = (ops.convert_to_tensor(v, "float32") for v in (a, b))
        return ops.sum(mean * a_) + ops.sum(variance * b_)

    with fused_batch_normalization():
        _, (grad,) = value_and_grad(objective, x)
    x64 = x.astype(np.float64)
    count = x.size // x.shape[-1]
    expected = (a + 2.0 * b * (x64 - x64.mean((0, 1, 2)))) / count
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


def test_layer_output_and_moving_statistics_match_numpy(batch):
    x, gamma, beta, _ = batch
    layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=EPSILON)
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    with fused_batch_normalization():
        y = layer(x, training=True)
    expected_y = numpy_batch_norm(*batch)[0]
    np.testing.assert_allclose(ops.convert_to_numpy(y), expected_y, atol=1e-5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(
        layer.moving_mean.numpy(), 0.1 * x64.mean((0, 1, 2)), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        layer.moving_variance.numpy(),
        0.9 + 0.1 * x64.var((0, 1, 2)),  # the biased variance, Keras' momentum
        rtol=1e-5,
    )
    # Inference mode: normalized by the moving statistics.
    with fused_batch_normalization():
        y = layer(x, training=False)
    moving = (layer.moving_mean.numpy(), layer.moving_variance.numpy())
    expected = (x64 - moving[0]) / np.sqrt(moving[1] + EPSILON) * gamma + beta
    np.testing.assert_allclose(ops.convert_to_numpy(y), expected, atol=1e-5)


def test_inference_mode_gradients_match_keras(batch):
    x, gamma, beta, upstream = batch
    mean = np.array([1.0, -0.5, 0.2], "float32")
    variance = np.array([2.0, 0.5, 1.0], "float32")

    def objective(x, gamma, beta):
        y = ops.batch_normalization(
            x, mean, variance, axis=-1, offset=beta, scale=gamma, epsilon=EPSILON
        )
        return ops.sum(y * ops.convert_to_tensor(upstream))

    with fused_batch_normalization():
        value, grads = value_and_grad(objective, x, gamma, beta)
    keras_value, keras_grads = value_and_grad(objective, x, gamma, beta)
    assert value == pytest.approx(keras_value, rel=1e-5)
    for got, want in zip(grads, keras_grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "case",
    ["rank 2", "channels first", "keepdims", "renorm", "no scale or center"],
)
def test_other_cases_equal_keras(case, batch):
    x = batch[0]
    if case == "rank 2":
        x, layer = x.reshape(-1, 3), keras.layers.BatchNormalization()
    elif case == "channels first":
        layer = keras.layers.BatchNormalization(axis=1)
    elif case == "renorm":
        layer = keras.layers.BatchNormalization(renorm=True)
    elif case == "no scale or center":
        layer = keras.layers.BatchNormalization(scale=False, center=False)
    else:
        layer = None
    if layer is None:
        outside = ops.moments(x, axes=[0, 1, 2], keepdims=True)
        with fused_batch_normalization():
            inside = ops.moments(x, axes=[0, 1, 2], keepdims=True)
    else:
        layer.build(x.shape)
        initial = [v.numpy() for v in layer.weights]
        outside = [layer(x, training=True), *layer.non_trainable_weights]
        outside = [ops.convert_to_numpy(t) for t in outside]
        for v, value in zip(layer.weights, initial):
            v.assign(value)
        with fused_batch_normalization():
            inside = [layer(x, training=True), *layer.non_trainable_weights]
    for got, want in zip(inside, outside):
        np.testing.assert_allclose(
            ops.convert_to_numpy(got), ops.convert_to_numpy(want), atol=1e-5
        )


class _BatchNormProbe(keras.layers.Layer):
    """Records whether Keras' PyTorch batch normalization was replaced."""

    calls = []

    def call(self, x):
        module = importlib.import_module("keras.src.backend.torch.nn")
        if x.device.type != "meta":  # not Keras' shape inference
            fused = hasattr(module.batch_normalization, "keras_op")
            _BatchNormProbe.calls.append(fused)
        return x


@torch_only
def test_fit_and_evaluate_run_inside(rng):
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            _BatchNormProbe(),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    x = rng.integers(0, 256, size=(16, 8, 8, 3), dtype=np.uint8)
    model = SimCLR(encoder)
    model.compile(optimizer="adam")
    _BatchNormProbe.calls.clear()
    history = model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.evaluate(x, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert _BatchNormProbe.calls and all(_BatchNormProbe.calls)
