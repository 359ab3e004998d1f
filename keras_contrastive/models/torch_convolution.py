"""Channels-last 2-D convolutions on PyTorch without Keras' layout round trip.

Keras 3's PyTorch `conv` (`keras/src/backend/torch/nn.py`) makes a contiguous
channels-first copy of every channels-last input, then converts that copy back
to channels-last memory for oneDNN and cuDNN, so each convolution copies its
input twice in the forward pass and its input gradient twice in the backward
pass. A channels-last tensor of shape (N, H, W, C) permuted to (N, C, H, W) is
already in PyTorch's `channels_last` memory format, which is what the
convolution kernels receive at the end of that round trip anyway, so
`torch.nn.functional.conv2d` can take the permuted view as it is. On the CPU
the copies are about a sixth of a ResNet-18 training step at batch 256
(`benchmarks/simclr_cifar10.py throughput`).

`channels_last_convolutions()` puts such a `conv` in place of Keras' for as long
as the block runs; the training and evaluation steps of `ContrastiveModel` and
`compute_embeddings` run inside it. The kernel PyTorch receives, its memory
layout and the padding are the ones Keras' own `conv` gives it, so outputs and
gradients are the same numbers. Anything other than a 2-D channels-last
convolution (1-D, 3-D, `channels_first`) goes to Keras' own function, and so
does everything on TensorFlow and JAX, where the context does nothing.
"""

import contextlib
import importlib

import keras


def _keras_torch_nn():
    """Keras' PyTorch `nn` module when it has the `conv` this module replaces."""
    if keras.backend.backend() != "torch":
        return None
    module = importlib.import_module("keras.src.backend.torch.nn")
    return module if callable(getattr(module, "conv", None)) else None


def _same_padding(length, kernel, stride, dilation):
    """(before, after) padding of one axis for `padding="same"`.

    The convention of TensorFlow and of Keras on every backend: the output has
    ceil(length / stride) positions and the odd pixel of padding goes after.
    """
    span = (kernel - 1) * dilation + 1
    out = -(-length // stride)
    total = max(0, (out - 1) * stride + span - length)
    return total // 2, total - total // 2


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _channels_last_conv2d(keras_conv):
    import torch

    def conv(
        inputs,
        kernel,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
    ):
        data_format = data_format or keras.config.image_data_format()
        if (
            data_format != "channels_last"
            or len(inputs.shape) != 4
            or len(kernel.shape) != 4
            or padding not in ("same", "valid")
            or inputs.shape[-1] % kernel.shape[2]  # Keras' error message
            or torch.compiler.is_compiling()
        ):
            return keras_conv(
                inputs, kernel, strides, padding, data_format, dilation_rate
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
        strides, dilation = _pair(strides), _pair(dilation_rate)
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

    conv.keras_conv = keras_conv
    return conv


@contextlib.contextmanager
def channels_last_convolutions():
    """Runs Keras' 2-D channels-last convolutions without layout copies on PyTorch.

    Inside the block, every `keras.ops.conv` (and so every `Conv2D` layer) on a
    4-D channels-last input hands PyTorch a permuted view of its input instead
    of the two copies Keras' PyTorch backend makes to change its layout and
    back. Outputs and gradients are unchanged; the step is faster (about a
    sixth of a ResNet-18 step on a CPU). `fit`, `evaluate` and
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
    module = _keras_torch_nn()
    if module is None:
        yield
        return
    keras_conv = module.conv
    if hasattr(keras_conv, "keras_conv"):  # nested: already in place
        yield
        return
    module.conv = _channels_last_conv2d(keras_conv)
    try:
        yield
    finally:
        module.conv = keras_conv
