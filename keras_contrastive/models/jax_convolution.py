"""Keras' 2-D JAX convolutions with a kernel gradient XLA:CPU runs fast in loops.

Reverse-mode autodiff of `lax.conv_general_dilated` gives the kernel gradient as
a convolution whose "batch" is the input channels and whose "features" are the
batch rows. At the top level of a program XLA:CPU rewrites it into the layout
its fast (Eigen) convolution wants; inside a `while` loop body (`lax.scan`) it
does not, and falls back to a generic loop nest 20-30x slower
(jax-ml/jax#12868). Gradient caching runs its chunks in `lax.scan` so that
their buffers are reused, so there the kernel gradient would dominate the step.

`kernel_gradient_as_convolution()` swaps Keras' JAX `conv` for one with a
custom VJP whose kernel gradient is that same convolution written out with the
operands already transposed to NHWC / HWIO: the same sums in the same layout
XLA would pick at the top level, which runs at Eigen's speed in a loop too. The
input gradient is autodiff's. Only 2-D channels-last convolutions without
groups take this path; everything else, and every backend but JAX, is Keras'
own.
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
    """d(sum(cotangent * conv(x, kernel))) / d kernel, as one NHWC convolution.

    kernel[i, j, c, o] gathers x[n, p*s + i*d - lo, q*s + j*d - lo', c] *
    cotangent[n, p, q, o] over n, p, q: a convolution of x's channels (as its
    batch) by the cotangent (as its kernel, dilated by the stride) with window
    stride d. Where the forward pass left input rows unused at the high end
    (the stride does not divide the padded length), they are cut off so that
    the output has exactly the kernel's size.
    """
    import jax.numpy as jnp
    from jax import lax

    bounds = []
    for axis, (size, s, d, (lo, hi)) in enumerate(
        zip(kernel_size, strides, dilation, pads)
    ):
        padded = x.shape[1 + axis] + lo + hi
        unused = padded - (size - 1) * d - 1 - (cotangent.shape[1 + axis] - 1) * s
        bounds.append((lo, hi - unused))
    # Negative high padding: the unused rows lie in the input itself.
    x = x[:, : x.shape[1] + min(0, bounds[0][1]), : x.shape[2] + min(0, bounds[1][1])]
    pads = [(lo, max(0, hi)) for lo, hi in bounds]
    out = lax.conv_general_dilated(
        jnp.transpose(x, (3, 1, 2, 0)),  # (C, H, W, N)
        jnp.transpose(cotangent, (1, 2, 0, 3)),  # (P, Q, N, O)
        dilation,
        pads,
        rhs_dilation=strides,
        dimension_numbers=_NHWC,
    )
    return jnp.transpose(out, (1, 2, 0, 3))  # (C, i, j, O) -> (i, j, C, O)


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
def kernel_gradient_as_convolution():
    """Keras' 2-D JAX convolutions with a loop-friendly kernel gradient.

    Inside the block (while a JAX function is traced), `keras.ops.conv` on 4-D
    channels-last inputs without groups differentiates to the kernel gradient of
    `kernel_gradient`: the same values, fast inside `lax.scan` on XLA:CPU. On
    other backends it does nothing; nested use is fine.
    """
    with replaced("jax", {"conv": _loop_friendly_conv}):
        yield
