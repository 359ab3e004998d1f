"""Keras' 2-D JAX convolutions with a kernel gradient XLA:CPU runs fast.

Reverse-mode autodiff of `lax.conv_general_dilated` gives the kernel gradient as
a convolution whose "batch" is the input channels and whose "features" are the
batch rows. XLA:CPU runs it far slower than the forward convolution: measured
here, a 3x3 convolution of 64 x 32 x 32 x 64 by 64 channels takes 105 ms
forward, 113 ms for the input gradient and 1,117 ms for the kernel gradient,
and inside a `while` loop body (`lax.scan`, which gradient caching runs its
chunks in) it is 20-30x slower again (jax-ml/jax#12868).

`kernel_gradient_as_matmuls()` swaps Keras' JAX `conv` for one with a
custom VJP whose kernel gradient is written as one matmul per kernel tap
(`kernel_gradient`, the taps in a loop): each tap's strided window of the
padded input against the cotangent, the same sums as autodiff's, the matmul
work of the forward pass (160 ms in the example above; at the top level and in
a loop alike). The input gradient is autodiff's. Only 2-D channels-last
convolutions without groups take this path; everything else, and every backend
but JAX, is Keras' own. The library's JAX training steps trace inside it.
"""

import contextlib
import functools

from keras_contrastive.models._backend_functions import pair, replaced

_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv2d(x, kernel, strides, pads, dilation):
    from jax import lax

    return lax.conv_general_dilated(
        x, kernel, strides, pads, rhs_dilation=dilation, dimension_numbers=_NHWC
    )


def kernel_gradient(x, cotangent, kernel_size, strides, pads, dilation):
    """d(sum(cotangent * conv(x, kernel))) / d kernel, one matmul per kernel tap.

    kernel[i, j, c, o] = sum over n, p, q of
    x_padded[n, p*s + i*d, q*s + j*d, c] * cotangent[n, p, q, o]: for each tap
    (i, j), the strided window of the padded input that the tap saw, (N*P*Q, C),
    transposed against the cotangent, (N*P*Q, O). The taps run in a loop
    (`lax.map`), so one window is held at a time: unrolled, XLA:CPU kept them
    all (3x3, 64 x 32x32x64: 146 MiB of temporaries against 34, and slower).
    Rows that the forward pass left unused at the high end are never sliced.
    """
    import jax.numpy as jnp
    from jax import lax

    (kh, kw), (sh, sw), (dh, dw) = kernel_size, strides, dilation
    x = jnp.pad(x, [(0, 0)] + [(lo, max(0, hi)) for lo, hi in pads] + [(0, 0)])
    n, p, q, _ = cotangent.shape
    window = (n, (p - 1) * sh + 1, (q - 1) * sw + 1, x.shape[-1])

    def tap(k):
        start = (0, (k // kw) * dh, (k % kw) * dw, 0)
        seen = lax.dynamic_slice(x, start, window)[:, ::sh, ::sw]
        return lax.dot_general(seen, cotangent, (((0, 1, 2), (0, 1, 2)), ((), ())))

    taps = lax.map(tap, jnp.arange(kh * kw))
    return taps.reshape((kh, kw) + taps.shape[1:])


@functools.cache
def _custom_conv2d():
    import jax

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
    def conv(x, kernel, strides, pads, dilation):
        return _conv2d(x, kernel, strides, pads, dilation)

    def forward(x, kernel, strides, pads, dilation):
        return _conv2d(x, kernel, strides, pads, dilation), (x, kernel)

    def backward(strides, pads, dilation, residuals, cotangent):
        x, kernel = residuals
        _, input_vjp = jax.vjp(lambda x: _conv2d(x, kernel, strides, pads, dilation), x)
        (dx,) = input_vjp(cotangent)
        dk = kernel_gradient(x, cotangent, kernel.shape[:2], strides, pads, dilation)
        return dx, dk.astype(kernel.dtype)

    conv.defvjp(forward, backward)
    return conv


def _loop_friendly_conv(keras_conv):
    def conv(
        inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1
    ):
        from jax import lax
        from keras.src.backend.config import standardize_data_format
        from keras.src.backend.jax.core import convert_to_tensor

        data_format = standardize_data_format(data_format)
        plain = (
            len(inputs.shape) == 4
            and data_format == "channels_last"
            and inputs.shape[-1] == kernel.shape[-2]
            and str(padding).lower() in ("valid", "same")
        )
        if not plain:
            return keras_conv(
                inputs, kernel, strides, padding, data_format, dilation_rate
            )
        kernel = convert_to_tensor(kernel)
        inputs = convert_to_tensor(inputs, dtype=kernel.dtype)
        strides, dilation = pair(strides), pair(dilation_rate)
        span = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:2], dilation)]
        pads = tuple(
            lax.padtype_to_pads(inputs.shape[1:3], span, strides, padding.upper())
        )
        if any(
            size + lo + hi < s
            for size, s, (lo, hi) in zip(inputs.shape[1:3], span, pads)
        ):
            # An empty output: Keras' own says so.
            return keras_conv(
                inputs, kernel, strides, padding, data_format, dilation_rate
            )
        return _custom_conv2d()(inputs, kernel, strides, pads, dilation)

    conv.keras_op = keras_conv
    return conv


@contextlib.contextmanager
def kernel_gradient_as_matmuls():
    """Keras' 2-D JAX convolutions with a kernel gradient of per-tap matmuls.

    Inside the block (while a JAX function is traced), `keras.ops.conv` on 4-D
    channels-last inputs without groups differentiates to the kernel gradient of
    `kernel_gradient`: the same values, fast on XLA:CPU at the top level and
    inside `lax.scan`. On other backends it does nothing; nested use is fine.
    """
    with replaced("jax", {"conv": _loop_friendly_conv}):
        yield
