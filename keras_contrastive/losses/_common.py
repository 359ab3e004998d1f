"""Shared numerics and argument checks for the losses (private).

Everything here works on any Keras backend through `keras.ops`. Losses compute in
float32 whatever the input dtype, normalise with an epsilon (an all-zero row stays
finite, with finite gradients), mask with large *finite* negatives (never -inf) and
sanitise both branches of every `where` so that no NaN can leak into a gradient of
finite inputs.

NaN policy: a loss never hides a NaN. A `where` that selects finite values for
masked entries would drop a NaN embedding from the value, so every loss adds
`non_finite_guard(inputs)` (0, or NaN when any input entry is NaN or inf) to its
result: finite inputs give exactly the same value and gradient, a NaN or inf
anywhere gives a NaN loss. Finite inputs of any magnitude give finite losses
(rows beyond `HUGE` are rescaled before squaring).
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_contrastive._validation import (
    check_number,
    check_positive_number,
    check_whole_numbers,
    fail,
    fail_shapes,
    host_value,
    is_number,
    shown_as,
    summarize,
)

# Added to masked logits: exp(-1e9 - max) underflows to exactly 0, yet the value stays
# finite, so `0 * masked` and its gradient are 0, never NaN.
BIG = 1e9
# Floor on squared norms before rsqrt and on squared distances before sqrt.
NORM_EPS = 1e-12
# Rows (or batches) whose largest |entry| exceeds this are divided by it before
# anything is squared: (1e15)^2 summed over up to 3e8 features stays finite. Below
# it nothing is rescaled, so ordinary inputs give bit-identical results.
HUGE = 1e15
# Squared distances are capped here (far beyond any real one; the metric losses'
# "no such distance" stand-in), so sums over a batch stay finite.
MAX_SQUARED_DISTANCE = 1e30
# Bounds of the Python-number hyper-parameters. Logits are cos / temperature (or
# scale * cos + bias): within +-1e6 the 1e9 masks above dominate every real
# logit, and the sums of a batch stay finite. Margins compare with squared
# distances, capped at 1e30.
MIN_TEMPERATURE = 1e-6
MAX_LOGIT_SCALE = 1e6
MAX_MARGIN = 1e12


FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_float32(x):
    """Converts `x` to a float32 tensor (float16/bfloat16/float64/int inputs alike).

    Finite float64 values beyond float32's range are clamped to it (a cast would
    make them inf); NaN and inf stay as they are.
    """
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        # Before the conversion: JAX (without x64) casts to float32 right there.
        with np.errstate(invalid="ignore"):
            x = np.where(np.isfinite(x), np.clip(x, -FLOAT32_MAX, FLOAT32_MAX), x)
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype == "float64":
        too_big = ops.logical_and(ops.isfinite(x), ops.abs(x) > FLOAT32_MAX)
        x = ops.where(too_big, ops.sign(x) * FLOAT32_MAX, x)
    if dtype != "float32":
        x = ops.cast(x, "float32")
    return x


def huge_scale(x, axis=None, keepdims=False):
    """max |x| (over `axis`) where it exceeds `HUGE`, else exactly 1 (no gradient).

    Dividing by it keeps squares of huge finite values finite and leaves ordinary
    values untouched (x / 1 is exact). NaN entries give 1 (the NaN stays in x).
    """
    m = ops.max(ops.abs(x), axis=axis, keepdims=keepdims, initial=0.0)
    return ops.stop_gradient(ops.where(m > HUGE, m, ops.ones_like(m)))


def l2_normalize(x):
    """x / ||x|| row-wise, as x * rsqrt(max(sum x^2, 1e-12)): zero rows stay zero.

    Rows with an entry beyond `HUGE` in magnitude are first divided by their
    largest |entry| (their direction is kept; the sum of squares stays finite).
    """
    x = x / huge_scale(x, axis=-1, keepdims=True)
    sq = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(sq, NORM_EPS))


def safe_sqrt(x):
    """sqrt(x) for x >= 0 with a finite gradient everywhere (0 where x <= 1e-12).

    NaN entries stay NaN (never hidden as 0).
    """
    positive = x > NORM_EPS
    return ops.where(positive, ops.sqrt(ops.where(positive, x, 1.0)), x * 0.0)


def cap_squared(values, scale):
    """values * scale^2 (squared distances computed on rows divided by `scale`),
    clipped to [-MAX_SQUARED_DISTANCE, MAX_SQUARED_DISTANCE]; NaN stays NaN.

    With scale = 1 (every ordinary input) the values are returned unchanged.
    """
    values = values * scale * scale
    cap = MAX_SQUARED_DISTANCE
    values = ops.where(values > cap, cap, values)
    return ops.where(values < -cap, -cap, values)


def non_finite_guard(*tensors):
    """A float32 scalar: 0, or NaN when any entry of `tensors` is NaN or +-inf.

    Added to a loss so that a NaN input always shows in the value (masks and
    `where`s would otherwise drop it); 0 * x has a zero gradient, so finite inputs
    keep their exact value and gradient. `None` entries are skipped.
    """
    guard = None
    for t in tensors:
        if t is None:
            continue
        term = ops.sum(to_float32(t) * 0.0)
        guard = term if guard is None else guard + term
    return 0.0 if guard is None else guard


def nan_unless(valid):
    """A float32 scalar: 0 when every entry of the bool tensor `valid` is True, else
    NaN (the in-graph form of a check whose values are not visible in Python)."""
    return ops.sum(ops.where(valid, 0.0, float("nan")))


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
# Argument checks, in the message style of `keras_contrastive._validation` (Keras'
# "`name` must be ... Received: name=value"). Scalar arguments go through its
# helpers (a wrong type raises TypeError, a bad value ValueError); the tensor shape
# checks below raise ValueError naming the tensor and its shape. Arguments that may
# be tensors (a learnable temperature, a scheduled margin) are taken as they are.


def is_tensor(value):
    """Whether `value` is a tensor-like object (not a Python or NumPy scalar)."""
    return hasattr(value, "shape") and not is_number(value)


def check_temperature(value, name="temperature"):
    """A positive number >= `MIN_TEMPERATURE` as a float, or a tensor as it is."""
    if is_tensor(value):
        return value
    value = check_positive_number(name, value)
    if value < MIN_TEMPERATURE:
        fail(
            name,
            f"a number >= {MIN_TEMPERATURE:g}",
            value,
            detail="Logits are cos / temperature; beyond 1e6 they would overflow "
            "the masks (1e9) and the float32 sums",
        )
    return value


def check_margin(value, name="margin"):
    """A number in [0, `MAX_MARGIN`] as a float, or a tensor as it is."""
    if is_tensor(value):
        return value
    value = check_number(name, value, minimum=0.0)
    if value > MAX_MARGIN:
        fail(name, f"a number in [0, {MAX_MARGIN:g}]", value)
    return value


def check_logit_number(value, name, positive=False):
    """A finite number with |value| <= `MAX_LOGIT_SCALE` (> 0 when `positive`)."""
    if positive:
        value = check_positive_number(name, value)
        if value > MAX_LOGIT_SCALE:
            fail(name, f"a number in (0, {MAX_LOGIT_SCALE:g}]", value)
        return value
    value = check_number(name, value)
    if abs(value) > MAX_LOGIT_SCALE:
        bound = f"{MAX_LOGIT_SCALE:g}"
        fail(name, f"a number in [-{bound}, {bound}]", value)
    return value


def check_tau_plus(value, name="tau_plus"):
    """A number in [0, 1) as a float."""
    return check_number(name, value, 0.0, 1.0, max_open=True)


def check_finite_number(value, name):
    """A finite number as a float, |value| <= `MAX_LOGIT_SCALE` (a logit bias)."""
    return check_logit_number(value, name)


def shape_of(x):
    """The static shape of `x` as a tuple (None for unknown dimensions)."""
    return tuple(x.shape)


def check_rank(x, expected, name):
    if rank(x) != expected:
        fail_shapes(name, f"have rank {expected}", {name: shape_of(x)})


def check_same_shape(a, b, name_a, name_b):
    for axis in range(rank(a)):
        da, db = static_dim(a, axis), static_dim(b, axis)
        if da is not None and db is not None and da != db:
            fail_shapes(
                (name_a, name_b),
                "have the same shape",
                {name_a: shape_of(a), name_b: shape_of(b)},
            )


def check_min_rows(x, minimum, name, why=None):
    """Raises when `x` has fewer than `minimum` rows (when known statically)."""
    n = static_dim(x, 0)
    if n is not None and n < minimum:
        if why is None:
            why = (
                "an empty batch has no loss" if minimum == 1 else "negatives are needed"
            )
        rows = "1 row" if minimum == 1 else f"{minimum} rows"
        fail_shapes(name, f"have at least {rows} ({why})", {name: shape_of(x)})


def check_same_last_dim(a, b, name_a, name_b):
    da, db = static_dim(a, -1), static_dim(b, -1)
    if da is not None and db is not None and da != db:
        fail_shapes(
            (name_a, name_b),
            "have the same feature size (last dimension)",
            {name_a: shape_of(a), name_b: shape_of(b)},
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


# Labels are compared for equality: integer class ids only. Whole-number floats
# are accepted (Keras often hands y_true over as floats) and become int32, like
# every integer label visible in Python, so every backend compares the same ids.
_INT32 = (-(2**31), 2**31 - 1)


def _host_labels(host):
    """Checks NumPy labels and returns them as int32."""
    check_whole_numbers(
        "labels",
        host,
        "integer class ids",
        dtype_detail="Map other labels to ids first, e.g. with "
        "`numpy.unique(labels, return_inverse=True)[1]`",
    )
    if host.size == 0:
        return host.astype(np.int32)
    low, high = host.min(), host.max()
    if low < _INT32[0] or high > _INT32[1]:
        fail(
            "labels",
            f"class ids in the int32 range [{_INT32[0]}, {_INT32[1]}]",
            shown_as(f"an array holding {(low if low < _INT32[0] else high).item()!r}"),
        )
    return host.astype(np.int32)


def check_labels(labels):
    """(labels as a tensor, guard): integer class ids, checked.

    Labels visible in Python (NumPy, lists, eager tensors on the host) must be
    integers or whole-number floats within int32 (else a ValueError) and become
    int32. Symbolic float labels cannot be checked in Python: the guard is NaN
    when any of them is fractional or non-finite (None when nothing is left to
    check in the graph). Strings and other non-numeric labels are a ValueError.
    """
    if isinstance(labels, (np.ndarray, np.generic, numbers.Number, list, tuple)):
        try:
            host = np.asarray(labels)
        except (ValueError, TypeError):  # ragged nested lists
            fail("labels", "an array of integer class ids", summarize(labels))
        return ops.convert_to_tensor(_host_labels(host)), None
    tensor = ops.convert_to_tensor(labels)
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    if "int" in dtype:  # integer tensors need no value check (no device sync)
        return tensor, None
    if "float" not in dtype:
        fail(
            "labels",
            "integer class ids",
            shown_as(f"a tensor of dtype {dtype}"),
        )
    host = host_value(labels, device_copy=False)
    if host is not None:
        return ops.convert_to_tensor(_host_labels(host)), None
    whole = ops.logical_and(ops.isfinite(tensor), ops.equal(tensor, ops.floor(tensor)))
    return tensor, nan_unless(whole)


def label_inputs(labels, embeddings):
    """Validates (labels, embeddings): labels (N,) or (N, 1), embeddings (N, d).

    Returns (labels, embeddings, guard): the guard is `non_finite_guard` of the
    embeddings plus the in-graph label check of `check_labels`; the label losses
    add it to their values.
    """
    embeddings = to_float32(embeddings)
    check_rank(embeddings, 2, "embeddings")
    check_min_rows(embeddings, 1, "embeddings")
    labels, label_guard = check_labels(labels)
    if rank(labels) == 2 and static_dim(labels, 1) == 1:
        labels = ops.reshape(labels, (-1,))
    if rank(labels) != 1:
        fail_shapes("labels", "have shape (N,) or (N, 1)", {"labels": shape_of(labels)})
    n_lab, n_emb = static_dim(labels, 0), static_dim(embeddings, 0)
    if n_lab is not None and n_emb is not None and n_lab != n_emb:
        fail_shapes(
            "labels",
            "have one entry per row of `embeddings`",
            {"labels": shape_of(labels), "embeddings": shape_of(embeddings)},
        )
    guard = non_finite_guard(embeddings)
    if label_guard is not None:
        guard = guard + label_guard
    return labels, embeddings, guard


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
