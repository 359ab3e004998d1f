"""View-pair losses: called `loss(z_a, z_b)` with row i of `z_a` and row i of `z_b` a
positive pair and every other row a negative.

Each loss has a functional form (snake_case, per-anchor values, usable inside any model
code) and a registered `keras.losses.Loss` class (CamelCase, mean by default).

Under `tf.distribute` each replica computes the values of its own anchors against the
candidates of every replica (`keras_contrastive.distribute.gather`), positives offset
by `replica_offset`: the mean over the replicas' anchors is the single-device loss of
the global batch, and gradients reach the rows' owners. On one replica (and under JAX
`DataParallel`, whose step sees the global batch) gather is the identity.

NT-Xent, InfoNCE and symmetric InfoNCE take `block_size`: None (default) computes
the similarity matrix whole; an int streams it `block_size` query rows at a time
with the log-sum-exp carried per row and a custom gradient (as FlashAttention
does for softmax, Dao et al. 2022), so no (N, N) matrix is ever held: memory
O(N * block_size), the same value and gradient (to float rounding), and for a
plain mean the dense path's matmul work (with sample weights one matmul more,
as each block's logits are recomputed backward). It works across replicas too
(the candidates are gathered as on the dense path). See `_streaming.py`.
"""

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import fail_shapes
from keras_contrastive.losses._common import (
    BIG,
    check_finite_number,
    check_min_rows,
    check_same_last_dim,
    check_tau_plus,
    check_temperature,
    l2_normalize,
    mask_columns_logits,
    non_finite_guard,
    rows_logsumexp,
    shape_of,
    softmax_cross_entropy_rows,
    static_dim,
    to_float32,
    view_pair_inputs,
)
from keras_contrastive.losses._streaming import (
    blocked_logsumexp,
    check_block_size,
    resolve_block_size,
)
from keras_contrastive.losses.base import ContrastiveLossBase

_PACKAGE = "keras_contrastive"


def _rows_dot(a, b):
    return ops.sum(a * b, axis=-1)


def _candidates(x):
    """(every replica's rows of x, this replica's first row among them)."""
    return distribute.gather(x), distribute.replica_offset(ops.shape(x)[0])


# ----------------------------------------------------------------------------------
# InfoNCE


def info_nce(query, keys, negatives=None, temperature=0.1, block_size=None):
    """InfoNCE (van den Oord et al. 2018; CPC eq. 8-9; MoCo's loss with a queue).

    For query q_i with positive key k_i, every other key k_j (j != i) and the extra
    negatives n_m as further candidates:

        l_i = -log [ exp(cos(q_i, k_i) / tau) /
                     (sum_j exp(cos(q_i, k_j) / tau) + sum_m exp(cos(q_i, n_m) / tau)) ]

    computed as logsumexp over the candidates minus the positive logit (the positive
    is a row-wise dot product; the extra negatives are never concatenated with the
    keys, so a 65,536-row queue costs one (N, M) matmul).

    With `block_size` set, the (N, N) and (N, M) logits are never held: they are
    computed `block_size` query rows at a time (the blocked log-sum-exp of
    FlashAttention, Dao et al. 2022): memory O((N + M) *
    block_size) instead of O(N (N + M)), the same value and gradient.

    Args:
        query: (N, d) queries.
        keys: (N, d) keys; row i is the positive of query i.
        negatives: optional extra negatives shared by every query, (M, d) (MoCo's
            queue), or per-query negatives (N, K, d) (e.g. from
            `mix_hard_negatives`), or a list/tuple of such tensors.
        temperature: tau > 0.
        block_size: None (default: dense) or a positive int, the query rows per
            block of the streaming computation (per-query negatives of rank 3
            stay dense: they are (N, K), not (N, N)).

    Returns:
        (N,) float32 per-query losses.

    Example:

    >>> import numpy as np
    >>> q = np.random.default_rng(0).normal(size=(8, 16))
    >>> k = q + 0.1 * np.random.default_rng(1).normal(size=(8, 16))
    >>> queue = np.random.default_rng(2).normal(size=(64, 16))
    >>> tuple(info_nce(q, k, negatives=queue, temperature=0.1).shape)
    (8,)
    >>> streamed = info_nce(q, k, negatives=queue, temperature=0.1, block_size=3)
    >>> dense = info_nce(q, k, negatives=queue, temperature=0.1)
    >>> bool(np.allclose(streamed, dense, atol=1e-5))
    True
    """
    return _info_nce(query, keys, negatives, temperature, ("query", "keys"), block_size)


def _check_negatives(query, negatives):
    """Casts and validates `negatives` (None, a tensor, or a list of tensors)."""
    if negatives is None:
        return []
    if not isinstance(negatives, (list, tuple)):
        negatives = [negatives]
    checked = []
    for neg in negatives:
        neg = to_float32(neg)
        if len(neg.shape) not in (2, 3):
            fail_shapes(
                "negatives",
                "have rank 2 (M, d) or rank 3 (N, K, d)",
                {"negatives": shape_of(neg)},
            )
        check_same_last_dim(query, neg, "query", "negatives")
        n_q, n_n = static_dim(query, 0), static_dim(neg, 0)
        if len(neg.shape) == 3 and n_q is not None and n_n is not None and n_q != n_n:
            fail_shapes(
                "negatives",
                "have shape (N, K, d) with N = query.shape[0] when of rank 3",
                {"negatives": shape_of(neg), "query": shape_of(query)},
            )
        checked.append(neg)
    return checked


def _info_nce(query, keys, negatives, temperature, names, block_size=None):
    temperature = check_temperature(temperature)
    block_size = check_block_size(block_size)
    query, keys = view_pair_inputs(query, keys, *names, min_rows=1)
    negatives = _check_negatives(query, negatives)
    if not negatives:
        check_min_rows(query, 2, names[0])
    q = l2_normalize(query) * (1.0 / temperature)
    k = l2_normalize(keys)
    positive = _rows_dot(q, k)
    all_keys, offset = _candidates(k)
    block_size = resolve_block_size(block_size, query, whole_on_torch=True)
    if block_size is not None:
        lse = blocked_logsumexp(q, all_keys, block_size)
        for neg in negatives:
            if len(neg.shape) == 2:
                extra = blocked_logsumexp(q, l2_normalize(neg), block_size)
            else:
                extra = rows_logsumexp(ops.einsum("nd,nkd->nk", q, l2_normalize(neg)))
            lse = ops.logaddexp(lse, extra)
        return lse - positive + non_finite_guard(query, keys, *negatives)
    targets = ops.arange(ops.shape(query)[0], dtype="int32") + offset
    loss = softmax_cross_entropy_rows(
        ops.matmul(q, ops.transpose(all_keys)), targets, positive
    )
    guard = non_finite_guard(query, keys, *negatives)
    if not negatives:
        return loss + guard
    # The extra negatives are never concatenated with the keys: their logsumexp is
    # combined with the in-batch one.
    lse = loss + positive
    for neg in negatives:
        if len(neg.shape) == 2:
            extra = ops.matmul(q, ops.transpose(l2_normalize(neg)))
        else:
            extra = ops.einsum("nd,nkd->nk", q, l2_normalize(neg))
        lse = ops.logaddexp(lse, rows_logsumexp(extra))
    return lse - positive + guard


def _info_nce_logits(z_a, z_b, temperature):
    """(logits (n, N) = cos(a_i, b_j) / tau against every replica's b, positive
    logits (n,), offset of this replica's rows among the N)."""
    a = l2_normalize(z_a) * (1.0 / temperature)
    b = l2_normalize(z_b)
    all_b, offset = _candidates(b)
    return ops.matmul(a, ops.transpose(all_b)), _rows_dot(a, b), offset


# ----------------------------------------------------------------------------------
# NT-Xent


def nt_xent_logits(z_a, z_b, temperature):
    """NT-Xent's logits: this replica's 2n rows against every replica's 2N rows.

    Returns (logits (2n, 2N) = cos / tau, self not yet masked; positive logits
    (2n,); column of each row's positive (2n,); column of each row itself (2n,)).
    The candidate columns are [all z_a; all z_b]; on one replica the self columns
    are the diagonal.
    """
    q, columns, positive, index, self_index = _nt_xent_parts(z_a, z_b, temperature)
    return ops.matmul(q, ops.transpose(columns)), positive, index, self_index


def _nt_xent_parts(z_a, z_b, temperature):
    """(queries (2n, d) = rows / tau, candidate columns (2N, d), positive logits,
    positive columns, self columns) of `nt_xent_logits`."""
    n = ops.shape(z_a)[0]
    a, b = l2_normalize(z_a), l2_normalize(z_b)
    q = ops.concatenate([a, b], axis=0) * (1.0 / temperature)
    positive = _rows_dot(q, ops.concatenate([b, a], axis=0))
    (all_a, offset), all_b = _candidates(a), distribute.gather(b)
    columns = ops.concatenate([all_a, all_b], axis=0)
    rows = ops.arange(n, dtype="int32") + offset
    total = ops.shape(all_a)[0]
    index = ops.concatenate([rows + total, rows], axis=0)
    self_index = ops.concatenate([rows, rows + total], axis=0)
    return q, columns, positive, index, self_index


def _mask_self(logits, self_index):
    """(logits, mask_diagonal): a replica's self columns masked here, or left to
    the fused diagonal mask of `softmax_cross_entropy_rows` on a single replica."""
    if distribute.num_replicas() == 1:
        return logits, True
    return mask_columns_logits(logits, self_index), False


def nt_xent(z_a, z_b, temperature=0.5, block_size=None):
    """NT-Xent, SimCLR's loss (Chen et al. 2020).

    With z = concat(z_a, z_b) (2N rows) and s_ij = cos(z_i, z_j) / tau, row i's
    positive is its counterpart p(i) = i +- N and the other 2N - 2 rows are its
    negatives (itself excluded):

        l_i = -log [ exp(s_{i,p(i)}) / sum_{j != i} exp(s_ij) ]

    Computed from one (2N, 2N) matmul, the diagonal masked by a large finite
    negative, a row-wise logsumexp, and the positive as a row-wise dot product.
    With `block_size` set the (2N, 2N) matrix is never held: it is computed
    `block_size` rows at a time, with the log-sum-exp carried per row and a
    custom gradient (FlashAttention's scheme, Dao et al. 2022). Memory
    O(N * block_size) instead of O(N^2), the same value and gradient, and the
    dense path's matmul work for a plain mean (one matmul more with weights).

    Args:
        z_a: (N, d) first views.
        z_b: (N, d) second views; row i pairs with row i of `z_a`.
        temperature: tau > 0.
        block_size: None (default: the dense (2N, 2N) matrix) or a positive int,
            the rows per block of the streaming computation.

    Returns:
        (2N,) float32 per-row losses (rows of z_a first); their mean is NTXent.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z_a = rng.normal(size=(4, 8))
    >>> z_b = z_a + 0.01 * rng.normal(size=(4, 8))
    >>> tuple(nt_xent(z_a, z_b, temperature=0.5).shape)
    (8,)
    >>> streamed = nt_xent(z_a, z_b, temperature=0.5, block_size=3)
    >>> bool(np.allclose(streamed, nt_xent(z_a, z_b, temperature=0.5), atol=1e-5))
    True
    """
    temperature = check_temperature(temperature)
    block_size = check_block_size(block_size)
    z_a, z_b = view_pair_inputs(z_a, z_b)
    block_size = resolve_block_size(
        block_size, z_a, rows_per_input_row=2, whole_on_torch=True
    )
    if block_size is not None:
        q, columns, positive, _, self_index = _nt_xent_parts(z_a, z_b, temperature)
        lse = blocked_logsumexp(q, columns, block_size, exclude=self_index)
        return lse - positive + non_finite_guard(z_a, z_b)
    logits, positive, index, self_index = nt_xent_logits(z_a, z_b, temperature)
    logits, mask_diagonal = _mask_self(logits, self_index)
    values = softmax_cross_entropy_rows(
        logits, index, positive, mask_diagonal=mask_diagonal
    )
    return values + non_finite_guard(z_a, z_b)


# ----------------------------------------------------------------------------------
# CLIP


def symmetric_info_nce(z_a, z_b, temperature=0.07, block_size=None):
    """CLIP's symmetric InfoNCE (Radford et al. 2021).

    With s_ij = cos(a_i, b_j) / tau:

        l_i = ( [logsumexp_j s_ij - s_ii] + [logsumexp_j s_ji - s_ii] ) / 2

    so the mean over i is (InfoNCE(a -> b) + InfoNCE(b -> a)) / 2.

    With `block_size` set, both directions are streamed `block_size` rows at a
    time (FlashAttention's blocked log-sum-exp, Dao et al. 2022): no (N, N)
    matrix is held, the same value and gradient, one pass over the blocks per
    direction.

    Args:
        z_a: (N, d), e.g. image embeddings.
        z_b: (N, d), e.g. text embeddings; row i pairs with row i of `z_a`.
        temperature: tau > 0.
        block_size: None (default: dense) or a positive int, the rows per block
            of the streaming computation.

    Returns:
        (N,) float32 per-pair losses.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z_a, z_b = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    >>> tuple(symmetric_info_nce(z_a, z_b).shape)
    (4,)
    >>> streamed = symmetric_info_nce(z_a, z_b, block_size=3)
    >>> bool(np.allclose(streamed, symmetric_info_nce(z_a, z_b), atol=1e-5))
    True
    """
    temperature = check_temperature(temperature)
    block_size = check_block_size(block_size)
    z_a, z_b = view_pair_inputs(z_a, z_b)
    block_size = resolve_block_size(block_size, z_a)
    if block_size is not None:
        a, b = l2_normalize(z_a), l2_normalize(z_b)
        scale = 1.0 / temperature
        rows = blocked_logsumexp(a * scale, distribute.gather(b), block_size)
        cols = blocked_logsumexp(b * scale, distribute.gather(a), block_size)
        positive = _rows_dot(a * scale, b)
        return 0.5 * (rows + cols) - positive + non_finite_guard(z_a, z_b)
    logits, positive, _ = _info_nce_logits(z_a, z_b, temperature)
    rows = rows_logsumexp(logits)
    if distribute.num_replicas() == 1:
        cols = rows_logsumexp(ops.transpose(logits))
    else:  # this replica's b rows against every replica's a: a second matmul
        cols = rows_logsumexp(_info_nce_logits(z_b, z_a, temperature)[0])
    return 0.5 * (rows + cols) - positive + non_finite_guard(z_a, z_b)


# ----------------------------------------------------------------------------------
# Binary NCE


def binary_nce(z_a, z_b, temperature=0.1, bias=0.0):
    """Binary NCE: logistic regression of positives against negatives.

    Noise-contrastive estimation's binary classifier (Gutmann & Hyvärinen 2010),
    the sigmoid loss of SigLIP-style training (Zhai et al. 2023).

    With s_ij = cos(a_i, b_j) / tau + bias:

        L = -mean_i log sigmoid(s_ii) - mean_{i != j} log(1 - sigmoid(s_ij))

    Per anchor l_i = -log sigmoid(s_ii) - 1/(N-1) sum_{j != i} log sigmoid(-s_ij),
    so mean_i l_i = L. Uses log sigmoid(x) = -softplus(-x) (stable at any tau).

    Args:
        z_a: (N, d), N >= 2.
        z_b: (N, d); row i pairs with row i of `z_a`.
        temperature: tau > 0.
        bias: added to every logit.

    Returns:
        (N,) float32 per-anchor losses.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> tuple(binary_nce(rng.normal(size=(4, 8)), rng.normal(size=(4, 8))).shape)
    (4,)
    """
    temperature = check_temperature(temperature)
    bias = check_finite_number(bias, "bias")
    z_a, z_b = view_pair_inputs(z_a, z_b)
    logits, positive, offset = _info_nce_logits(z_a, z_b, temperature)
    logits = logits + bias
    positive = positive + bias
    n, total = ops.shape(logits)[0], ops.shape(logits)[1]
    rows = ops.arange(n, dtype="int32") + offset
    off_diag = 1.0 - ops.one_hot(rows, total, dtype="float32")
    neg_terms = ops.sum(ops.softplus(logits) * off_diag, axis=1)
    n_f = ops.cast(total, "float32")
    values = ops.softplus(-positive) + neg_terms / ops.maximum(n_f - 1.0, 1.0)
    return values + non_finite_guard(z_a, z_b)


# ----------------------------------------------------------------------------------
# Debiased NT-Xent


def debiased_nt_xent(z_a, z_b, temperature=0.5, tau_plus=0.1):
    """Debiased contrastive loss (Chuang et al. 2020) on NT-Xent's 2N rows.

    For row i with positive logit s_pos and the M = 2N - 2 negative logits s_k
    (cosines over tau), pos = exp(s_pos), neg = sum_k exp(s_k):

        Ng  = max( (neg - M * tau_plus * pos) / (1 - tau_plus),  M * exp(-1/tau) )
        l_i = -log( pos / (pos + Ng) )

    Evaluated with every exponential shifted by the row's largest logit (the result
    is identical, but stays finite at tau = 0.01 where exp(1/tau) overflows float32).

    Args:
        z_a: (N, d) first views, N >= 2.
        z_b: (N, d) second views.
        temperature: tau > 0.
        tau_plus: class prior, in [0, 1); 0 gives back NT-Xent without the positive
            in the denominator's negatives.

    Returns:
        (2N,) float32 per-row losses.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> tuple(debiased_nt_xent(rng.normal(size=(4, 8)), rng.normal(size=(4, 8))).shape)
    (8,)
    """
    temperature = check_temperature(temperature)
    tau_plus = check_tau_plus(tau_plus)
    z_a, z_b = view_pair_inputs(z_a, z_b)
    logits, positive, index, self_index = nt_xent_logits(z_a, z_b, temperature)
    two_n = ops.shape(logits)[1]  # every replica's rows
    # Mask self and the positive column: left are exactly the M negatives.
    cols = ops.arange(two_n, dtype="int32")[None, :]
    excluded = ops.logical_or(
        ops.equal(cols, index[:, None]), ops.equal(cols, self_index[:, None])
    )
    negatives = ops.where(excluded, -BIG, logits)
    shift = ops.stop_gradient(
        ops.maximum(ops.max(negatives, axis=1), positive)
    )  # (2N,)
    pos = ops.exp(positive - shift)
    neg = ops.sum(ops.exp(negatives - shift[:, None]), axis=1)
    m = ops.cast(two_n - 2, "float32")
    estimate = (neg - m * tau_plus * pos) / (1.0 - tau_plus)
    floor = ops.exp(ops.log(m) - 1.0 / temperature - shift)
    ng = ops.maximum(estimate, floor)
    # pos + ng >= min(1, 1 / (M tau_plus)) > 0 because shift is the row's max logit.
    return ops.log(pos + ng) - (positive - shift) + non_finite_guard(z_a, z_b)


# ----------------------------------------------------------------------------------
# BYOL


def byol_loss(z_a, z_b):
    """BYOL's regression loss (Grill et al. 2020): l_i = 2 - 2 cos(a_i, b_i).

    Args:
        z_a: (N, d) predictions (online network).
        z_b: (N, d) targets (momentum network; stop their gradient yourself).

    Returns:
        (N,) float32 per-pair losses in [0, 4].

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> [round(float(v), 4) for v in byol_loss(x, x)]
    [0.0, 0.0]
    """
    z_a, z_b = view_pair_inputs(z_a, z_b, min_rows=1)
    values = 2.0 - 2.0 * _rows_dot(l2_normalize(z_a), l2_normalize(z_b))
    return values + non_finite_guard(z_a, z_b)


# ----------------------------------------------------------------------------------
# Classes


@keras.saving.register_keras_serializable(package=_PACKAGE)
class InfoNCE(ContrastiveLossBase):
    """InfoNCE (van den Oord et al. 2018), called `loss(z_a, z_b)`.

    l_i = -log softmax_j(cos(a_i, b_j) / tau) at j = i; mean over the N anchors.
    See `info_nce` for extra negatives (MoCo's queue).

    Args:
        temperature: tau > 0 (default 0.1).
        reduction: "mean" (default), "sum", or None for the (N,) per-anchor values.
        name: optional name.
        block_size: None (default: dense) or a positive int: stream the (N, N)
            logits in blocks of that many rows (see `info_nce`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> loss = InfoNCE(temperature=0.1)
    >>> float(loss(rng.normal(size=(4, 8)), rng.normal(size=(4, 8)))) > 0
    True
    """

    def __init__(
        self,
        temperature=0.1,
        reduction="mean",
        name="info_nce",
        dtype=None,
        block_size=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_temperature(temperature)
        self.block_size = check_block_size(block_size)

    def compute_terms(self, y_true, y_pred):
        values = _info_nce(
            y_true,
            y_pred,
            None,
            self.temperature,
            ("z_a", "z_b"),
            self.block_size,
        )
        return values, None

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "block_size": self.block_size,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NTXent(ContrastiveLossBase):
    """NT-Xent, SimCLR's loss (Chen et al. 2020), called `loss(z_a, z_b)`.

    The 2N rows of concat(z_a, z_b): each row's counterpart is its positive, the
    other 2N - 2 rows its negatives (itself excluded); mean over the 2N rows of
    -log softmax(cos / tau) at the positive. A `sample_weight` of length N weights
    both rows of a pair.

    Args:
        temperature: tau > 0 (default 0.5).
        reduction: "mean" (default), "sum", or None for the (2N,) per-row values.
        name: optional name.
        block_size: None (default: the dense (2N, 2N) matrix) or a positive int:
            stream it in blocks of that many rows, O(N * block_size) memory, the
            same value and gradient (see `nt_xent`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(4, 8))
    >>> loss = NTXent(temperature=0.5)
    >>> float(loss(z, z + 0.01)) < float(loss(z, rng.normal(size=(4, 8))))
    True
    >>> streamed = NTXent(temperature=0.5, block_size=2)
    >>> abs(float(streamed(z, z + 0.01)) - float(loss(z, z + 0.01))) < 1e-5
    True
    """

    rows_per_sample = 2

    def __init__(
        self,
        temperature=0.5,
        reduction="mean",
        name="nt_xent",
        dtype=None,
        block_size=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_temperature(temperature)
        self.block_size = check_block_size(block_size)

    def compute_terms(self, y_true, y_pred):
        values = nt_xent(
            y_true, y_pred, temperature=self.temperature, block_size=self.block_size
        )
        return values, None

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "block_size": self.block_size,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SymmetricInfoNCE(ContrastiveLossBase):
    """CLIP's loss, (InfoNCE(a -> b) + InfoNCE(b -> a)) / 2, called `loss(z_a, z_b)`.

    Args:
        temperature: tau > 0 (default 0.07).
        reduction: "mean" (default), "sum", or None for the (N,) per-pair values.
        name: optional name.
        block_size: None (default: dense) or a positive int: stream the (N, N)
            logits in blocks of that many rows (see `symmetric_info_nce`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> loss = SymmetricInfoNCE()
    >>> float(loss(rng.normal(size=(4, 8)), rng.normal(size=(4, 8)))) > 0
    True
    """

    def __init__(
        self,
        temperature=0.07,
        reduction="mean",
        name="symmetric_info_nce",
        dtype=None,
        block_size=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_temperature(temperature)
        self.block_size = check_block_size(block_size)

    def compute_terms(self, y_true, y_pred):
        values = symmetric_info_nce(
            y_true, y_pred, temperature=self.temperature, block_size=self.block_size
        )
        return values, None

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "block_size": self.block_size,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BinaryNCE(ContrastiveLossBase):
    """Binary NCE, called `loss(z_a, z_b)`: with s_ij = cos(a_i, b_j) / tau + bias,

    -mean_i log sigmoid(s_ii) - mean_{i != j} log(1 - sigmoid(s_ij)).

    Args:
        temperature: tau > 0 (default 0.1).
        bias: added to every logit (default 0.0).
        reduction: "mean" (default), "sum", or None for the (N,) per-anchor values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> loss = BinaryNCE(temperature=0.1, bias=-1.0)
    >>> float(loss(rng.normal(size=(4, 8)), rng.normal(size=(4, 8)))) > 0
    True
    """

    def __init__(
        self, temperature=0.1, bias=0.0, reduction="mean", name="binary_nce", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_temperature(temperature)
        self.bias = check_finite_number(bias, "bias")

    def compute_terms(self, y_true, y_pred):
        values = binary_nce(
            y_true, y_pred, temperature=self.temperature, bias=self.bias
        )
        return values, None

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "bias": self.bias,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DebiasedNTXent(ContrastiveLossBase):
    """Debiased contrastive loss (Chuang et al. 2020) on NT-Xent's 2N rows.

    pos = exp(s_pos / tau), neg = sum over the M = 2N - 2 negatives of exp(s / tau),
    Ng = max((neg - M tau_plus pos) / (1 - tau_plus), M exp(-1 / tau)),
    l = -log(pos / (pos + Ng)); mean over the 2N rows. Called `loss(z_a, z_b)`.

    Args:
        temperature: tau > 0 (default 0.5).
        tau_plus: class prior in [0, 1) (default 0.1).
        reduction: "mean" (default), "sum", or None for the (2N,) per-row values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> loss = DebiasedNTXent(temperature=0.5, tau_plus=0.1)
    >>> float(loss(rng.normal(size=(4, 8)), rng.normal(size=(4, 8)))) > 0
    True
    """

    rows_per_sample = 2

    def __init__(
        self,
        temperature=0.5,
        tau_plus=0.1,
        reduction="mean",
        name="debiased_nt_xent",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_temperature(temperature)
        self.tau_plus = check_tau_plus(tau_plus)

    def compute_terms(self, y_true, y_pred):
        values = debiased_nt_xent(
            y_true, y_pred, temperature=self.temperature, tau_plus=self.tau_plus
        )
        return values, None

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "tau_plus": self.tau_plus,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BYOLLoss(ContrastiveLossBase):
    """BYOL's loss (Grill et al. 2020): 2 - 2 cos(a_i, b_i), mean over i.

    Called `loss(z_a, z_b)` (prediction and target; stop the target's gradient).

    Args:
        reduction: "mean" (default), "sum", or None for the (N,) per-pair values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> float(BYOLLoss()(x, -x))
    4.0
    """

    def __init__(self, reduction="mean", name="byol_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def compute_terms(self, y_true, y_pred):
        return byol_loss(y_true, y_pred), None
