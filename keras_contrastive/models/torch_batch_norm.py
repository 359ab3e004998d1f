"""Batch normalization of channels-last images on PyTorch in fused kernels.

Keras' PyTorch backend normalizes a batch in a chain of elementwise ops
(`keras/src/backend/torch/nn.py`): `moments` takes E[x] and E[x^2] - E[x]^2,
`batch_normalization` subtracts the mean, scales and shifts, and autograd
differentiates each op, so a `BatchNormalization` layer in training mode makes
about ten passes over its activations and keeps several of them for the
backward pass. PyTorch has a kernel for each whole job: the batch statistics
(`batch_norm_update_stats`, one pass), the normalization (`batch_norm` given
the statistics, one pass) and the training-mode backward pass, whose input
gradient includes the paths through the batch mean and variance (Ioffe &
Szegedy 2015, section 3; `native_batch_norm_backward`, two passes).

`fused_batch_normalization()` puts such functions in place of Keras' `moments`
and `batch_normalization` while a block runs. Keras' layer keeps its own logic
(the moving averages of the biased batch variance with Keras' momentum, renorm,
masks): `moments` of a 4-D channels-last float tensor over its batch and spatial
axes returns the same statistics from PyTorch's kernel (the variance by a
two-pass sum rather than E[x^2] - E[x]^2: the same value to rounding, without
the cancellation), tagged with the tensor they describe; when
`batch_normalization` then receives that tensor with those statistics (as the
layer does in training mode) it normalizes and differentiates in the fused
kernels. The statistics keep a gradient of their own for any other use.
`batch_normalization` with statistics that need no gradient (the layer in
inference mode, or frozen) is one `batch_norm` pass. Anything else (other
ranks, axes or layouts, float16, masks, shape inference on the meta device,
`torch.compile`) goes to Keras' own function, and so does everything on
TensorFlow and JAX, where the context does nothing.

Outputs and gradients equal Keras' to float32 rounding (tests against a NumPy
float64 batch normalization and its closed-form gradient, in
`tests/models/test_torch_batch_norm.py`); `benchmarks/torch_convolution.py`
times a ResNet-18 pass with and without it.
"""

import contextlib

from keras_contrastive.models._backend_functions import replaced

# The attribute naming (the input, the variance) on a mean that `moments` made.
_TAG = "_keras_contrastive_batch"


def _channels_last_image(x):
    """Whether PyTorch's kernels can take the 4-D channels-last tensor x as is."""
    import torch

    return (
        isinstance(x, torch.Tensor)
        and x.dim() == 4
        and x.dtype in (torch.float32, torch.float64)
        and x.device.type != "meta"
        and not torch.compiler.is_compiling()
    )


def _channels_first(x):
    """(N, H, W, C) -> (N, C, H, W): a view in PyTorch's channels_last memory."""
    return x.permute(0, 3, 1, 2)


def _channels_last(x):
    return x.permute(0, 2, 3, 1)


_FUNCTIONS = []


def _functions():
    """(BatchMoments, FusedBatchNorm): autograd Functions, made on first use
    (torch is imported only on the PyTorch backend)."""
    if _FUNCTIONS:
        return _FUNCTIONS
    import torch

    class BatchMoments(torch.autograd.Function):
        """(mean, biased variance) per channel over the batch and spatial axes."""

        @staticmethod
        def forward(ctx, x):
            mean, variance = torch.batch_norm_update_stats(
                _channels_first(x), None, None, 0.0
            )
            ctx.save_for_backward(x, mean)
            return mean, variance

        @staticmethod
        def backward(ctx, grad_mean, grad_variance):
            # Only reached when the statistics are used outside the fused
            # normalization: d mean / dx = 1 / M, d var / dx = 2 (x - mean) / M.
            x, mean = ctx.saved_tensors
            count = x.numel() // x.shape[-1]
            return (grad_mean + 2.0 * grad_variance * (x - mean)) / count

    class FusedBatchNorm(torch.autograd.Function):
        """Training-mode batch normalization of x by its own batch statistics."""

        @staticmethod
        def forward(ctx, x, mean, variance, scale, offset, epsilon):
            outputs = torch.nn.functional.batch_norm(
                _channels_first(x), mean, variance, scale, offset, False, 0.0, epsilon
            )
            ctx.save_for_backward(x, scale, mean, torch.rsqrt(variance + epsilon))
            ctx.epsilon = epsilon
            return _channels_last(outputs)

        @staticmethod
        def backward(ctx, grad):
            x, scale, mean, inverse_std = ctx.saved_tensors
            wanted = ctx.needs_input_grad
            grad_x, grad_scale, grad_offset = torch.ops.aten.native_batch_norm_backward(
                _channels_first(grad),
                _channels_first(x),
                scale,
                None,
                None,
                mean,
                inverse_std,
                True,
                ctx.epsilon,
                [wanted[0], wanted[3], wanted[4]],
            )
            if grad_x is not None:
                grad_x = _channels_last(grad_x)
            return grad_x, None, None, grad_scale, grad_offset, None

    _FUNCTIONS.extend([BatchMoments, FusedBatchNorm])
    return _FUNCTIONS


def _fused_moments(keras_moments):
    def moments(x, axes, keepdims=False, synchronized=False):
        if (
            synchronized
            or keepdims
            or not _channels_last_image(x)
            or sorted(int(a) % 4 for a in axes) != [0, 1, 2]
        ):
            return keras_moments(x, axes, keepdims, synchronized)
        mean, variance = _functions()[0].apply(x)
        setattr(mean, _TAG, (x, variance))
        return mean, variance

    moments.keras_op = keras_moments
    return moments


def _fused_batch_normalization(keras_batch_normalization):
    import torch

    def batch_normalization(
        x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3
    ):
        tensors = (mean, variance, offset, scale)
        if (
            axis not in (-1, 3)
            or not _channels_last_image(x)
            or not all(t is None or isinstance(t, torch.Tensor) for t in tensors)
            or any(t is not None and t.shape != x.shape[-1:] for t in tensors)
        ):
            return keras_batch_normalization(
                x, mean, variance, axis, offset, scale, epsilon
            )
        batch = getattr(mean, _TAG, None)
        if batch is not None and batch[0] is x and batch[1] is variance:
            # Detached: their share of x's gradient is in the fused backward
            # pass, and an edge to their own backward would run it on zeros.
            return _functions()[1].apply(
                x, mean.detach(), variance.detach(), scale, offset, float(epsilon)
            )
        if mean.requires_grad or variance.requires_grad:
            # PyTorch's kernel gives no gradient to given statistics.
            return keras_batch_normalization(
                x, mean, variance, axis, offset, scale, epsilon
            )
        outputs = torch.nn.functional.batch_norm(
            _channels_first(x), mean, variance, scale, offset, False, 0.0, epsilon
        )
        return _channels_last(outputs)

    batch_normalization.keras_op = keras_batch_normalization
    return batch_normalization


# Keras' PyTorch functions the context replaces, and how to make each one.
_REPLACEMENTS = {
    "moments": _fused_moments,
    "batch_normalization": _fused_batch_normalization,
}


@contextlib.contextmanager
def fused_batch_normalization():
    """Runs Keras' batch normalization of channels-last images in PyTorch's kernels.

    Inside the block, a `BatchNormalization` layer on a 4-D channels-last
    input computes its batch statistics, normalizes and differentiates in
    PyTorch's fused batch-norm kernels instead of Keras' chain of elementwise
    ops; the layer's own logic (moving averages of the biased variance, Keras'
    momentum, renorm) is unchanged, and outputs and gradients equal Keras' to
    float32 rounding. A ResNet-18 training pass is faster by about a tenth
    (`benchmarks/torch_convolution.py`). `fit`, `evaluate` and
    `compute_embeddings` of the library's models already run inside it; use it
    around your own loops. On TensorFlow and JAX it does nothing. Nested use is
    fine.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> from keras_contrastive.models import fused_batch_normalization
    >>> layer = keras.layers.BatchNormalization()
    >>> x = np.random.rand(8, 4, 4, 3).astype("float32")
    >>> with fused_batch_normalization():
    ...     y = layer(x, training=True)
    >>> tuple(y.shape)
    (8, 4, 4, 3)
    """
    with replaced("torch", _REPLACEMENTS):
        yield
