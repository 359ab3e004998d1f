"""Similarity and distance matrices used by the losses (public utilities)."""

from keras import ops

from keras_contrastive.losses._common import (
    cap_squared,
    check_rank,
    check_same_last_dim,
    huge_scale,
    l2_normalize,
    safe_sqrt,
    to_float32,
)


def cosine_similarity_matrix(a, b=None):
    """Cosine similarities between the rows of `a` and the rows of `b`.

    cos(a_i, b_j) = <a_i, b_j> / (||a_i|| ||b_j||), with the norms floored at 1e-6
    (rows are normalised as x * rsqrt(max(sum x^2, 1e-12))) so that an all-zero row
    has similarity 0 with everything and finite gradients.

    Args:
        a: (N, d) tensor.
        b: optional (M, d) tensor; defaults to `a`.

    Returns:
        (N, M) float32 tensor.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> a = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> np.round(ops.convert_to_numpy(cosine_similarity_matrix(a)), 4)
    array([[1.    , 0.7071],
           [0.7071, 1.    ]], dtype=float32)
    """
    a = to_float32(a)
    check_rank(a, 2, "a")
    a_n = l2_normalize(a)
    if b is None:
        b_n = a_n
    else:
        b = to_float32(b)
        check_rank(b, 2, "b")
        check_same_last_dim(a, b, "a", "b")
        b_n = l2_normalize(b)
    return ops.matmul(a_n, ops.transpose(b_n))


def pairwise_distances(x, y=None, squared=False):
    """Euclidean distances between the rows of `x` and the rows of `y`.

    D_ij^2 = ||x_i||^2 + ||y_j||^2 - 2 <x_i, y_j>, clamped at 0 (and exactly 0 on
    the diagonal when `y` is None). With `squared=False` the square root is a safe
    one: D = 0 where D^2 <= 1e-12, with a zero (not NaN) gradient there.

    Finite inputs give finite distances: when an entry exceeds 1e15 in magnitude
    the rows are divided by the largest one before the products (and the result
    multiplied back), and D^2 is capped at 1e30. A NaN or inf entry gives NaN in
    its row and column.

    Args:
        x: (N, d) tensor.
        y: optional (M, d) tensor; defaults to `x`.
        squared: return D^2 instead of D.

    Returns:
        (N, M) float32 tensor.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> x = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> ops.convert_to_numpy(pairwise_distances(x))
    array([[0., 5.],
           [5., 0.]], dtype=float32)
    """
    x = to_float32(x)
    check_rank(x, 2, "x")
    same = y is None
    if not same:
        y = to_float32(y)
        check_rank(y, 2, "y")
        check_same_last_dim(x, y, "x", "y")
    # 1 for ordinary inputs (x / 1 is exact): huge rows are scaled down first.
    scale = huge_scale(x) if same else ops.maximum(huge_scale(x), huge_scale(y))
    x = x / scale
    x_sq = ops.sum(ops.square(x), axis=1)
    if same:
        y, y_sq = x, x_sq
    else:
        y = y / scale
        y_sq = ops.sum(ops.square(y), axis=1)
    d2 = x_sq[:, None] + y_sq[None, :] - 2.0 * ops.matmul(x, ops.transpose(y))
    # where, not maximum: a NaN stays NaN on every backend.
    d2 = ops.where(d2 < 0.0, 0.0, d2)
    if same:
        # The Gram expansion leaves round-off on the diagonal: make it exactly 0.
        n = ops.shape(x)[0]
        d2 = d2 * (1.0 - ops.eye(n, dtype="float32"))
    d2 = cap_squared(d2, scale)
    if squared:
        return d2
    return safe_sqrt(d2)
