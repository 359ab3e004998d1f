"""Channels-last 2-D convolutions and max pooling on PyTorch without layout copies.

Keras 3's PyTorch `conv` (`keras/src/backend/torch/nn.py`) makes a contiguous
channels-first copy of every channels-last input, then converts that copy back
to channels-last memory for oneDNN and cuDNN, so each convolution copies its
input twice in the forward pass and its input gradient twice in the backward
pass; its `max_pool` makes the channels-first copy and returns a channels-first
result seen through a permutation, which the next layers then read strided. A
channels-last tensor of shape (N, H, W, C) permuted to (N, C, H, W) is already
in PyTorch's `channels_last` memory format, which is what the convolution
kernels receive at the end of Keras' round trip anyway, so
`torch.nn.functional.conv2d` and `max_pool2d` can take the permuted view as it
is, and their results stay channels-last. `benchmarks/torch_convolution.py`
times a ResNet-18's forward and backward pass with Keras' functions, inside
this context and as the same network in torch.nn.

`channels_last_convolutions()` puts such functions in place of Keras' for as
long as the block runs; the training and evaluation steps of `ContrastiveModel`
and `compute_embeddings` run inside it. The kernel PyTorch receives, its memory
layout and the padding are the ones Keras' own functions give it, so outputs
and gradients are the same numbers. Anything else (1-D and 3-D ops,
`channels_first`, max pooling with `padding="same"`, shape inference on the
meta device) goes to Keras' own function, and so does everything on TensorFlow
and JAX, where the context does nothing.
"""

import contextlib

import keras

from keras_contrastive.models._backend_functions import pair, replaced


def _same_padding(length, kernel, stride, dilation):
    """(before, after) padding of one axis for `padding="same"`.

    The convention of TensorFlow and of Keras on every backend: the output has
    ceil(length / stride) positions and the odd pixel of padding goes after.
    """
    span = (kernel - 1) * dilation + 1
    out = -(-length // stride)
    total = max(0, (out - 1) * stride + span - length)
    return total // 2, total - total // 2


def _channels_last_conv2d(keras_conv):
    import torch

    def conv(
        inputs,
        kernel,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        **options,  # arguments a later Keras may add: Keras' own handles them
    ):
        data_format = data_format or keras.config.image_data_format()
        if (
            options
            or data_format != "channels_last"
            or len(inputs.shape) != 4
            or len(kernel.shape) != 4
            or padding not in ("same", "valid")
            or inputs.shape[-1] % kernel.shape[2]  # Keras' error message
            or torch.compiler.is_compiling()
        ):
            return keras_conv(
                inputs, kernel, strides, padding, data_format, dilation_rate, **options
            )
        x = keras.ops.convert_to_tensor(inputs)
        kernel = keras.ops.convert_to_tensor(kernel)
        # (N, H, W, C) -> (N, C, H, W): a view whose memory is channels_last.
        x = torch.permute(x, (0, 3, 1, 2))
        # (kh, kw, in, out) -> (out, in, kh, kw) in channels_last memory, as
        # Keras' own conv hands it over (a copy of the kernel, not of the data).
        kernel = torch.permute(kernel, (3, 2, 0, 1)).contiguous(
            memory_format=torch.channels_last
        )
        strides, dilation = pair(strides), pair(dilation_rate)
        pad = (0, 0)
        if padding == "same":
            axes = [
                _same_padding(x.shape[2 + i], kernel.shape[2 + i], s, d)
                for i, (s, d) in enumerate(zip(strides, dilation))
            ]
            if all(before == after for before, after in axes):
                pad = tuple(before for before, _ in axes)
            else:  # asymmetric (stride 2 on an even size): pad explicitly
                (top, bottom), (left, right) = axes
                x = torch.nn.functional.pad(x, (left, right, top, bottom))
        outputs = torch.nn.functional.conv2d(
            x,
            kernel,
            stride=strides,
            padding=pad,
            dilation=dilation,
            groups=x.shape[1] // kernel.shape[1],
        )
        return torch.permute(outputs, (0, 2, 3, 1))

    conv.keras_op = keras_conv
    return conv


def _channels_last_max_pool2d(keras_max_pool):
    import torch

    def max_pool(
        inputs, pool_size, strides=None, padding="valid", data_format=None, **options
    ):
        data_format = data_format or keras.config.image_data_format()
        inputs = keras.ops.convert_to_tensor(inputs)
        if (
            options
            or data_format != "channels_last"
            or len(inputs.shape) != 4
            or padding != "valid"  # Keras pads "same" pooling its own way
            or inputs.device.type == "meta"
            or torch.compiler.is_compiling()
        ):
            return keras_max_pool(
                inputs, pool_size, strides, padding, data_format, **options
            )
        pool_size = pair(pool_size)
        strides = pool_size if strides is None else pair(strides)
        x = torch.permute(inputs, (0, 3, 1, 2))
        outputs = torch.nn.functional.max_pool2d(x, pool_size, strides)
        return torch.permute(outputs, (0, 2, 3, 1))

    max_pool.keras_op = keras_max_pool
    return max_pool


# Keras' PyTorch functions the context replaces, and how to make each one.
_REPLACEMENTS = {"conv": _channels_last_conv2d, "max_pool": _channels_last_max_pool2d}


@contextlib.contextmanager
def channels_last_convolutions():
    """Runs Keras' 2-D channels-last convolutions without layout copies on PyTorch.

    Inside the block, every `keras.ops.conv` (so every `Conv2D` layer) and every
    `"valid"` `keras.ops.max_pool` (`MaxPooling2D`) on a 4-D channels-last input
    hands PyTorch a permuted view of its input instead of the copies Keras'
    PyTorch backend makes to change its layout and back. Outputs and gradients
    are unchanged; a ResNet-18 step is faster by the copies' share
    (`benchmarks/torch_convolution.py`). `fit`, `evaluate` and
    `compute_embeddings` of the library's models already run inside it; use it
    around your own loops (`predict` on an encoder, a custom training loop).
    On TensorFlow and JAX it does nothing. Nested use is fine.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> from keras_contrastive.models import channels_last_convolutions
    >>> layer = keras.layers.Conv2D(4, 3, padding="same")
    >>> x = np.random.rand(2, 8, 8, 3).astype("float32")
    >>> with channels_last_convolutions():
    ...     y = layer(x)
    >>> tuple(y.shape)
    (2, 8, 8, 4)
    """
    with replaced("torch", _REPLACEMENTS):
        yield
