"""Keras' JAX convolutions with the kernel gradient written as one matmul per tap.

The reference is a direct NumPy sum in float64 (the definition of the kernel
gradient), and Keras' own convolution differentiated by JAX; a test runs the
gradient inside `lax.scan`, where the rewrite matters.
"""

import keras
import numpy as np
import pytest

from keras_contrastive.models.jax_convolution import kernel_gradient_as_matmuls

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="a JAX-only rewrite"
)

CASES = [
    # (input height, width, kernel, strides, padding, dilation)
    (8, 8, (3, 3), (1, 1), "valid", (1, 1)),
    (8, 8, (3, 3), (1, 1), "same", (1, 1)),
    (9, 7, (3, 3), (2, 2), "same", (1, 1)),
    (9, 8, (3, 2), (2, 1), "valid", (1, 1)),
    (10, 11, (4, 4), (3, 2), "valid", (1, 1)),
    (9, 9, (3, 3), (1, 1), "same", (2, 2)),
    (12, 10, (3, 3), (2, 2), "valid", (2, 1)),
    (32, 32, (7, 7), (2, 2), "same", (1, 1)),
]


def numpy_kernel_gradient(x, cotangent, kernel_size, strides, pads, dilation):
    """sum over n, p, q of x_padded[n, p*s + i*d, q*s' + j*d', c] * ct[n, p, q, o]."""
    (lo_h, hi_h), (lo_w, hi_w) = pads
    padded = np.pad(x, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)))
    kh, kw = kernel_size
    grad = np.zeros((kh, kw, x.shape[-1], cotangent.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            rows = i * dilation[0] + strides[0] * np.arange(cotangent.shape[1])
            cols = j * dilation[1] + strides[1] * np.arange(cotangent.shape[2])
            window = padded[:, rows][:, :, cols]  # (n, p, q, c)
            grad[i, j] = np.einsum("npqc,npqo->co", window, cotangent)
    return grad


def same_pads(size, span, stride):
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + span - size)
    return total // 2, total - total // 2


def case_data(height, width, kernel_size, rng):
    x = rng.normal(size=(3, height, width, 4)).astype("float32")
    kernel = rng.normal(size=(*kernel_size, 4, 5)).astype("float32")
    return x, kernel


def gradients(x, kernel, strides, padding, dilation, cotangent, in_scan=False):
    """(input gradient, kernel gradient) of sum(cotangent * conv(x, kernel))."""
    import jax

    def objective(x, kernel):
        y = keras.ops.conv(x, kernel, strides, padding, dilation_rate=dilation)
        return (y * cotangent).sum()

    grad = jax.grad(objective, argnums=(0, 1))
    if not in_scan:
        return jax.jit(grad)(x, kernel)

    def body(carry, _):
        dx, dk = grad(x, kernel)
        return (carry[0] + dx, carry[1] + dk), None

    zeros = (jax.numpy.zeros_like(x), jax.numpy.zeros_like(kernel))
    return jax.jit(lambda: jax.lax.scan(body, zeros, None, length=2)[0])()


@pytest.mark.parametrize("case", CASES)
def test_kernel_gradient_equals_the_direct_sum_and_keras(case):
    height, width, kernel_size, strides, padding, dilation = case
    rng = np.random.default_rng(0)
    x, kernel = case_data(height, width, kernel_size, rng)
    y = keras.ops.conv(x, kernel, strides, padding, dilation_rate=dilation)
    cotangent = rng.normal(size=y.shape).astype("float32")
    spans = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
    if padding == "same":
        pads = [same_pads(n, s, st) for n, s, st in zip(x.shape[1:3], spans, strides)]
    else:
        pads = [(0, 0), (0, 0)]
    expected = numpy_kernel_gradient(
        x.astype("float64"),
        cotangent.astype("float64"),
        kernel_size,
        strides,
        pads,
        dilation,
    )
    keras_dx, keras_dk = gradients(x, kernel, strides, padding, dilation, cotangent)
    with kernel_gradient_as_matmuls():
        dx, dk = gradients(x, kernel, strides, padding, dilation, cotangent)
        y_inside = keras.ops.conv(x, kernel, strides, padding, dilation_rate=dilation)
        looped_dx, looped_dk = gradients(
            x, kernel, strides, padding, dilation, cotangent, in_scan=True
        )
    scale = np.abs(expected).max()
    np.testing.assert_allclose(dk, expected, atol=1e-5 * scale)
    np.testing.assert_allclose(keras_dk, expected, atol=1e-5 * scale)
    np.testing.assert_allclose(looped_dk, 2 * expected, atol=2e-5 * scale)
    np.testing.assert_allclose(dx, keras_dx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        looped_dx, 2 * np.asarray(keras_dx), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(y_inside, y)


def test_other_convolutions_go_to_keras_own():
    import jax

    rng = np.random.default_rng(1)
    grouped_x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    grouped_kernel = rng.normal(size=(3, 3, 2, 4)).astype("float32")  # 2 groups
    conv1d_x = rng.normal(size=(2, 9, 3)).astype("float32")
    conv1d_kernel = rng.normal(size=(3, 3, 5)).astype("float32")
    for x, kernel in [(grouped_x, grouped_kernel), (conv1d_x, conv1d_kernel)]:

        def objective(kernel, x=x):
            return keras.ops.conv(x, kernel, 1, "same").sum()

        expected = jax.grad(objective)(kernel)
        with kernel_gradient_as_matmuls():
            inside = jax.grad(objective)(kernel)
        np.testing.assert_array_equal(inside, expected)
    with kernel_gradient_as_matmuls():
        with pytest.raises(ValueError, match="empty output"):
            keras.ops.conv(np.ones((1, 2, 2, 1)), np.ones((3, 3, 1, 1)), 1, "valid")
