"""Shared numerics and argument checks for the losses (private).

Everything here works on any Keras backend through `keras.ops`. Losses compute in
float32 whatever the input dtype, normalise with an epsilon (an all-zero row stays
finite, with finite gradients), mask with large *finite* negatives (never -inf) and
sanitise both branches of every `where` so that no NaN can leak into a gradient.
"""

import math

import keras
import numpy as np
from keras import ops

# Added to masked logits: exp(-1e9 - max) underflows to exactly 0, yet the value stays
# finite, so `0 * masked` and its gradient are 0, never NaN.
BIG = 1e9
# Floor on squared norms before rsqrt and on squared distances before sqrt.
NORM_EPS = 1e-12


def to_float32(x):
    """Converts `x` to a float32 tensor (float16/bfloat16/float64/int inputs alike)."""
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) != "float32":
        x = ops.cast(x, "float32")
    return x


def l2_normalize(x):
    """x / ||x|| row-wise, as x * rsqrt(max(sum x^2, 1e-12)): zero rows stay zero."""
    sq = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(sq, NORM_EPS))


def safe_sqrt(x):
    """sqrt(x) for x >= 0 with a finite gradient everywhere (0 where x <= 1e-12)."""
    positive = x > NORM_EPS
    return ops.where(positive, ops.sqrt(ops.where(positive, x, 1.0)), 0.0)


def static_dim(x, axis):
    """The static size of `x` along `axis`, or None when unknown (graph mode)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    dim = shape[axis]
    if dim is None:
        return None
    try:
        return int(dim)
    except TypeError:  # symbolic (e.g. torch.SymInt during tracing)
        return None


def rank(x):
    return len(x.shape)


# ----------------------------------------------------------------------------------
# Argument checks: each raises ValueError naming the argument.


def _as_number(value):
    """A Python float for Python/NumPy scalars; None for anything else."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None


def check_temperature(temperature, name="temperature"):
    number = _as_number(temperature)
    if number is None:
        # Tensors are accepted as they are (e.g. a learnable temperature).
        if hasattr(temperature, "shape"):
            return temperature
        raise ValueError(
            f"`{name}` must be a positive number. Received: {name}={temperature!r}"
        )
    if not math.isfinite(number) or number <= 0:
        raise ValueError(
            f"`{name}` must be a positive number. Received: {name}={temperature!r}"
        )
    return number


def check_tau_plus(tau_plus):
    number = _as_number(tau_plus)
    if number is None or not (0.0 <= number < 1.0):
        raise ValueError(
            f"`tau_plus` must be a number in [0, 1). Received: tau_plus={tau_plus!r}"
        )
    return number


def check_margin(margin):
    number = _as_number(margin)
    if number is None and hasattr(margin, "shape"):
        return margin  # a tensor (e.g. a scheduled margin) is taken as it is
    if number is None or not math.isfinite(number) or number < 0:
        raise ValueError(
            f"`margin` must be a non-negative number. Received: margin={margin!r}"
        )
    return number


def check_finite_number(value, name):
    number = _as_number(value)
    if number is None or not math.isfinite(number):
        raise ValueError(
            f"`{name}` must be a finite number. Received: {name}={value!r}"
        )
    return number


def check_rank(x, expected, name):
    if rank(x) != expected:
        raise ValueError(
            f"`{name}` must have rank {expected}, got rank {rank(x)} with shape "
            f"{tuple(x.shape)}."
        )


def check_same_shape(a, b, name_a, name_b):
    for axis in range(rank(a)):
        da, db = static_dim(a, axis), static_dim(b, axis)
        if da is not None and db is not None and da != db:
            raise ValueError(
                f"`{name_a}` and `{name_b}` must have the same shape, got "
                f"{name_a}.shape={tuple(a.shape)} and {name_b}.shape={tuple(b.shape)}."
            )


def check_min_rows(x, minimum, name, why="negatives are needed"):
    n = static_dim(x, 0)
    if n is not None and n < minimum:
        raise ValueError(
            f"`{name}` must have at least {minimum} rows ({why}), got shape "
            f"{tuple(x.shape)}."
        )


def check_same_last_dim(a, b, name_a, name_b):
    da, db = static_dim(a, -1), static_dim(b, -1)
    if da is not None and db is not None and da != db:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same feature size, got "
            f"{name_a}.shape={tuple(a.shape)} and {name_b}.shape={tuple(b.shape)}."
        )


def view_pair_inputs(z_a, z_b, name_a="z_a", name_b="z_b", min_rows=2):
    """Validates and casts a (z_a, z_b) pair of (N, d) embeddings to float32."""
    z_a, z_b = to_float32(z_a), to_float32(z_b)
    check_rank(z_a, 2, name_a)
    check_rank(z_b, 2, name_b)
    check_same_shape(z_a, z_b, name_a, name_b)
    if min_rows:
        check_min_rows(z_a, min_rows, name_a)
    return z_a, z_b


def label_inputs(labels, embeddings):
    """Validates (labels, embeddings): labels (N,) or (N, 1), embeddings (N, d)."""
    embeddings = to_float32(embeddings)
    check_rank(embeddings, 2, "embeddings")
    labels = ops.convert_to_tensor(labels)
    if rank(labels) == 2 and static_dim(labels, 1) == 1:
        labels = ops.reshape(labels, (-1,))
    if rank(labels) != 1:
        raise ValueError(
            f"`labels` must have shape (N,) or (N, 1), got shape {tuple(labels.shape)}."
        )
    n_lab, n_emb = static_dim(labels, 0), static_dim(embeddings, 0)
    if n_lab is not None and n_emb is not None and n_lab != n_emb:
        raise ValueError(
            "`labels` must have one entry per row of `embeddings`, got "
            f"labels.shape={tuple(labels.shape)} and "
            f"embeddings.shape={tuple(embeddings.shape)}."
        )
    return labels, embeddings


def label_masks(labels, candidate_labels=None, offset=0):
    """(same, positive, negative) float32 (n, M) masks from integer labels.

    same[i, j] = 1 if y_i == c_j for the candidates' labels c (default: `labels`
    itself, M = n); positive = same without each row's own column (offset + i);
    negative = 1 - same.
    """
    if candidate_labels is None:
        candidate_labels = labels
    same = ops.cast(ops.equal(labels[:, None], candidate_labels[None, :]), "float32")
    own = ops.arange(ops.shape(labels)[0], dtype="int32") + offset
    itself = ops.one_hot(own, ops.shape(candidate_labels)[0], dtype="float32")
    return same, same - itself, 1.0 - same


def weighted_row_mean(values, mask):
    """(sum_j values*mask / count, count) row-wise; rows with count 0 give 0."""
    count = ops.sum(mask, axis=1)
    total = ops.sum(values * mask, axis=1)
    return total / ops.maximum(count, 1.0), count


# ----------------------------------------------------------------------------------
# Row-wise logsumexp (the hot spot of every softmax loss).


def mask_columns_logits(logits, columns):
    """logits - BIG at column `columns[i]` of each row i (e.g. each row's self)."""
    width = ops.shape(logits)[1]
    return logits - ops.one_hot(columns, width, dtype=logits.dtype) * BIG


def mask_diag_logits(logits):
    """logits - BIG on the diagonal of a square matrix (a large finite negative)."""
    n = ops.shape(logits)[0]
    return logits - ops.eye(n, dtype=logits.dtype) * BIG


def rows_logsumexp(logits, mask_diagonal=False):
    """logsumexp over each row of `logits` (the diagonal masked when asked).

    On JAX this is plain `logsumexp` (XLA fuses mask, exponentials and gradient with
    the neighbouring matmuls). TensorFlow (no XLA on CPU) and PyTorch get a custom
    gradient built on their fused softmax kernel: with m = max_j x_ij and
    p = softmax(x), logsumexp = m - log(max_j p_ij) (max p = 1 / sum exp(x - m) >=
    1 / n, so nothing under- or overflows), and the gradient is p itself, saved from
    the forward pass. That is three reads and one write of the (n, n) matrix forward
    and one pass backward: NT-Xent stays near the matmul floor.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tf_rows_logsumexp(logits, mask_diagonal)
    if backend == "torch":
        return _torch_rows_logsumexp()(logits, mask_diagonal)
    if mask_diagonal:
        logits = mask_diag_logits(logits)
    return ops.logsumexp(logits, axis=1)


def softmax_cross_entropy_rows(logits, targets, positive, mask_diagonal=False):
    """logsumexp_j logits_ij - positive_i, where positive_i = logits[i, targets[i]].

    The same value as `rows_logsumexp(logits, mask_diagonal) - positive`; PyTorch
    computes it with its fused log-softmax + NLL kernels (faster there than any
    logsumexp), the other backends as written.
    """
    if keras.backend.backend() == "torch":
        import torch.nn.functional as F

        if mask_diagonal:
            # In place on the fresh matmul output (matmul does not keep its result
            # for backward); autograd zeroes the diagonal's gradient.
            logits = logits.fill_diagonal_(-BIG)
        return F.cross_entropy(logits, targets.long(), reduction="none")
    return rows_logsumexp(logits, mask_diagonal) - positive


def _tf_rows_logsumexp(logits, mask_diagonal):
    import tensorflow as tf

    @tf.custom_gradient
    def lse(x):
        if mask_diagonal:
            # MatrixSetDiag reuses the matmul's buffer: no extra pass.
            x = tf.linalg.set_diag(x, tf.fill(tf.shape(x)[:1], tf.constant(-BIG)))
        p = tf.nn.softmax(x, axis=-1)
        value = tf.reduce_max(x, axis=1) - tf.math.log(tf.reduce_max(p, axis=1))

        def grad(upstream):
            # The masked diagonal has p = 0: its gradient is 0 as it should be.
            return p * upstream[:, None]

        return value, grad

    return lse(logits)


_TORCH_LSE = []


def _torch_rows_logsumexp():
    if _TORCH_LSE:
        return _TORCH_LSE[0]
    import torch

    class RowsLogSumExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, mask_diagonal):
            if mask_diagonal:
                # In place on the fresh matmul output, which matmul's backward does
                # not need; the gradient below is 0 on the diagonal anyway.
                x.fill_diagonal_(-BIG)
            p = torch.softmax(x, dim=1)
            value = x.amax(dim=1) - torch.log(p.amax(dim=1))
            ctx.save_for_backward(p)
            return value

        @staticmethod
        def backward(ctx, upstream):
            (p,) = ctx.saved_tensors
            return p * upstream[:, None], None

    _TORCH_LSE.append(RowsLogSumExp.apply)
    return RowsLogSumExp.apply
