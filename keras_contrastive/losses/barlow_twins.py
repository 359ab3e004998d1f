"""Barlow Twins (Zbontar et al. 2021): redundancy reduction between two views.

A batch-level loss: it is a function of the D x D cross-correlation matrix of the
whole batch, not a sum of per-anchor terms, so the functional form returns one
scalar. Under `tf.distribute` the batch statistics are those of the *global* batch:
every replica gathers both views (`keras_contrastive.distribute.gather`, whose
gradient flows back to each row's owner) and computes the global loss.
"""

import keras
import numpy as np
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import (
    check_number,
    check_positive_number,
    fail,
    fail_shapes,
)
from keras_contrastive.losses._common import (
    MAX_LOGIT_SCALE,
    check_min_rows,
    huge_scale,
    non_finite_guard,
    static_dim,
    view_pair_inputs,
)
from keras_contrastive.losses.base import ContrastiveLossBase

_PACKAGE = "keras_contrastive"
# The paper's code standardises with torch.nn.BatchNorm1d(affine=False): biased
# variance over the batch, eps = 1e-5 under the square root.
BATCH_NORM_EPS = 1e-5


def _standardize(x):
    """Each column to mean 0 and variance 1 over the rows (batch norm, no affine).

    Columns with an entry beyond 1e15 are first divided by their largest |entry|
    (the mean and variance stay finite; ordinary columns are untouched).
    """
    x = x / huge_scale(x, axis=0, keepdims=True)
    centered = x - ops.mean(x, axis=0, keepdims=True)
    variance = ops.mean(ops.square(centered), axis=0, keepdims=True)
    return centered * ops.rsqrt(variance + BATCH_NORM_EPS)


def _use_gram(a):
    """Whether the N x N Gram route is cheaper than the D x D one (2N < D)."""
    n, d = static_dim(a, 0), static_dim(a, 1)
    return n is not None and d is not None and 2 * n < d


def _barlow_twins(z_a, z_b, redundancy_weight, scale_loss, gram=None):
    """The loss of the batch (every replica's rows); `gram` forces a route."""
    z_a, z_b = view_pair_inputs(z_a, z_b, min_rows=0)
    a, b = distribute.gather(z_a), distribute.gather(z_b)
    check_min_rows(a, 2, "z_a", why="the batch's standard deviation is needed")
    n = ops.cast(ops.shape(a)[0], "float32")
    a, b = _standardize(a), _standardize(b)
    diagonal = ops.sum(a * b, axis=0) / n  # C_ii
    invariance = ops.sum(ops.square(1.0 - diagonal))
    if _use_gram(a) if gram is None else gram:
        # sum_ij C_ij^2 = ||A^T B||_F^2 / N^2 = sum_nm (A A^T)_nm (B B^T)_nm / N^2:
        # two N x N Gram matrices instead of the D x D one when N < D / 2. With
        # rank(C) <= N < D the off-diagonal part is at least D^2 / N - D (never a
        # tiny difference of large numbers).
        gram_a = ops.matmul(a, ops.transpose(a))
        gram_b = ops.matmul(b, ops.transpose(b))
        total = ops.sum(gram_a * gram_b) / ops.square(n)
        redundancy = total - ops.sum(ops.square(diagonal))
    else:
        c = ops.matmul(ops.transpose(a), b) / n
        d = ops.shape(c)[0]
        off_diagonal = c * (1.0 - ops.eye(d, dtype=c.dtype))
        redundancy = ops.sum(ops.square(off_diagonal))
    loss = scale_loss * (invariance + redundancy_weight * redundancy)
    return loss + non_finite_guard(z_a, z_b)


def _check_weights(redundancy_weight, scale_loss):
    """Both at most 1e6 (the loss of a batch then stays finite)."""
    redundancy_weight = check_number(
        "redundancy_weight", redundancy_weight, minimum=0.0
    )
    if redundancy_weight > MAX_LOGIT_SCALE:
        fail(
            "redundancy_weight",
            f"a number in [0, {MAX_LOGIT_SCALE:g}]",
            redundancy_weight,
        )
    scale_loss = check_positive_number("scale_loss", scale_loss)
    if scale_loss > MAX_LOGIT_SCALE:
        fail("scale_loss", f"a number in (0, {MAX_LOGIT_SCALE:g}]", scale_loss)
    return redundancy_weight, scale_loss


def barlow_twins_loss(z_a, z_b, redundancy_weight=5e-3, scale_loss=1.0):
    """Barlow Twins' redundancy-reduction loss (Zbontar et al. 2021, eq. 1-2).

    Each column (feature) of `z_a` and `z_b` is standardised over the batch, as the
    paper's code does with a batch norm without affine parameters: mean 0 and
    biased variance 1, x_n = (x - mean) / sqrt(var + 1e-5). With N rows, the
    D x D cross-correlation matrix and the loss are

        C_ij = (1/N) sum_n a_ni b_nj
        L    = scale_loss * [ sum_i (1 - C_ii)^2 + lambda sum_i sum_{j != i} C_ij^2 ]

    The first term makes the two views' features agree (invariance), the second
    decorrelates different features (redundancy reduction). Computed in float32
    whatever the input dtype; when N < D / 2 the off-diagonal sum comes from two
    N x N Gram matrices (||A^T B||_F^2 = sum (A A^T) * (B B^T)) instead of the
    D x D matrix.

    This is a *batch-level* loss: it returns one scalar for the batch, not one value
    per anchor. Under `tf.distribute` both views are gathered from every replica
    (`keras_contrastive.distribute.gather`), so the means, variances and C are those
    of the global batch and every replica returns the global loss; the gather's
    gradient returns each row's share to its owner. Inside a
    `ContrastiveModel.compute_contrastive_loss` return it as it is: the step divides
    by the replica count and the optimizer sums the replicas' gradients, which is
    the single-device gradient. On one device and under JAX `DataParallel` the
    gather is the identity.

    Args:
        z_a: (N, D) embeddings of the first views, N >= 2 (over all replicas).
        z_b: (N, D) embeddings of the second views; row i pairs with row i of
            `z_a`.
        redundancy_weight: lambda >= 0, the weight of the off-diagonal
            (redundancy-reduction) term. Default 5e-3, the paper's lambda
            (5 * 10^-3); the official code's default is 0.0051.
        scale_loss: a positive factor on the whole loss, the official code's
            `--scale-loss` (1/32, later 0.024; its final version has none);
            default 1.

    Returns:
        A float32 scalar: the loss of the batch.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(8, 4))
    >>> float(barlow_twins_loss(z, z + 0.1 * rng.normal(size=(8, 4)))) > 0
    True
    >>> # Identical views whose standardised features are uncorrelated: C = I.
    >>> h = np.array([[1, 1, 1], [1, -1, 1], [-1, 1, -1], [-1, -1, -1]], "float32")
    >>> h[:, 2] = h[:, 0] * h[:, 1]
    >>> round(float(barlow_twins_loss(h, h)), 4)
    0.0
    """
    redundancy_weight, scale_loss = _check_weights(redundancy_weight, scale_loss)
    return _barlow_twins(z_a, z_b, redundancy_weight, scale_loss)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BarlowTwinsLoss(ContrastiveLossBase):
    """Barlow Twins (Zbontar et al. 2021), called `loss(z_a, z_b)`.

    With the batch's features standardised per dimension and C = A^T B / N (D x D):
    sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2, times `scale_loss`.
    See `barlow_twins_loss`.

    A batch-level loss: there is one term per batch, so every `reduction` gives the
    same scalar, and `sample_weight` must be None. Under `tf.distribute` it returns
    this replica's share of the global batch's loss, L / replicas (Keras'
    convention, as the other loss classes: the replicas' values sum to the
    single-device loss).

    Args:
        redundancy_weight: lambda >= 0 (default 5e-3, the paper's value).
        scale_loss: positive factor on the whole loss (default 1).
        reduction: accepted for uniformity with the other classes; every value
            gives the batch's loss.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(8, 4))
    >>> loss = BarlowTwinsLoss(redundancy_weight=5e-3)
    >>> float(loss(z, z + 0.01)) < float(loss(z, rng.normal(size=(8, 4))))
    True
    """

    def __init__(
        self,
        redundancy_weight=5e-3,
        scale_loss=1.0,
        reduction="mean",
        name="barlow_twins_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.redundancy_weight, self.scale_loss = _check_weights(
            redundancy_weight, scale_loss
        )

    def call(self, y_true, y_pred):
        """The batch's loss (a scalar)."""
        return _barlow_twins(y_true, y_pred, self.redundancy_weight, self.scale_loss)

    def compute_terms(self, y_true, y_pred):
        return ops.reshape(self.call(y_true, y_pred), (1,)), None

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            fail_shapes(
                "sample_weight",
                "be None for BarlowTwinsLoss (a batch-level loss has no per-sample "
                "terms to weight)",
                {"sample_weight": tuple(np.shape(sample_weight))},
            )
        with keras.name_scope(self.name):
            loss = self.call(y_true, y_pred)
            # This replica's share: the replicas' values sum to the global loss.
            return loss * (1.0 / distribute.num_replicas())

    def get_config(self):
        return {
            **super().get_config(),
            "redundancy_weight": self.redundancy_weight,
            "scale_loss": self.scale_loss,
        }
