"""`effective_rank`: how many dimensions a representation really uses.

A label-free collapse diagnostic. Complete collapse (every image to one point)
shows in the spread of the embeddings; *dimensional* collapse, where embeddings
stay apart but fill only a few directions of their space (Jing et al. 2022), does
not, and it is what methods without negatives drift into. The effective rank of
Roy & Vetterli (2007), which Garrido et al. (2023) call RankMe and show to track
downstream accuracy, measures it: with sigma_1..sigma_r the singular values of the
`(num_samples, dim)` embedding matrix and p_k = sigma_k / sum_j sigma_j,

    effective_rank = exp(-sum_k p_k log p_k)        (RankMe, Garrido et al. 2023, eq. 1)

It is 1 when every embedding lies on one line, `d` when the matrix has `d` equal
non-zero singular values, and between the two otherwise: the exponential of the
entropy of the singular-value distribution.

The singular values are the square roots of the eigenvalues of the smaller Gram
matrix (`dim x dim`, or `num_samples x num_samples` when there are fewer rows),
accumulated in float64 in blocks of rows, so memory stays `dim x dim` whatever the
number of embeddings.
"""

import numpy as np

from keras_contrastive._validation import check_bool, check_positive_int
from keras_contrastive.evaluation.arrays import check_embeddings


def _gram(x, batch_size):
    """The smaller Gram matrix of `x` (float64): x^T x, or x x^T for few rows."""
    if x.shape[0] < x.shape[1]:
        rows = x.astype(np.float64)
        return rows @ rows.T
    gram = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, x.shape[0], batch_size):
        block = x[start : start + batch_size].astype(np.float64)
        gram += block.T @ block
    return gram


def effective_rank(embeddings, center=False, batch_size=4096):
    """The effective rank (RankMe) of a set of embeddings, a float in [1, dim].

    `exp(-sum_k p_k log p_k)` with `p_k = sigma_k / sum_j sigma_j` over the
    singular values `sigma_k` of the embedding matrix (Roy & Vetterli 2007;
    Garrido et al. 2023, eq. 1, whose epsilon inside the log is left out here:
    terms with p_k = 0 contribute 0). A falling effective rank during training,
    at a steady `embedding_std`, is dimensional collapse (Jing et al. 2022).

    Args:
        embeddings: `(num_samples, dim)` array or tensor, finite.
        center: subtract the mean embedding first, so the rank counts the
            directions in which the embeddings *vary* (a representation whose
            features share a large common offset, e.g. after a ReLU, otherwise
            spends one singular value on it). Default False, as RankMe.
        batch_size: rows per block of the Gram-matrix accumulation.

    Returns:
        A Python float: 0.0 when every embedding is zero (after centering, when
        they are all equal), otherwise between 1 and `min(num_samples, dim)`.

    Example:

    >>> import numpy as np
    >>> from keras_contrastive.evaluation import effective_rank
    >>> round(effective_rank(np.eye(4)), 6)  # four equal directions
    4.0
    >>> round(effective_rank(np.ones((8, 3))), 6)  # every row on one line
    1.0
    >>> rng = np.random.default_rng(0)
    >>> collapsed = rng.normal(size=(256, 2)) @ rng.normal(size=(2, 64))
    >>> effective_rank(collapsed) < 2.0  # 64 features, two directions
    True
    """
    x = check_embeddings("embeddings", embeddings, allow_empty=False)
    center = check_bool("center", center)
    batch_size = check_positive_int("batch_size", batch_size)
    if center:
        x = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    eigenvalues = np.linalg.eigvalsh(_gram(x, batch_size))
    singular_values = np.sqrt(np.clip(eigenvalues, 0.0, None))
    if singular_values.max() == 0.0:
        return 0.0
    # Singular values below float32 rounding of the largest are numerical zeros
    # (the tolerance of `numpy.linalg.matrix_rank`, at the input's precision).
    tolerance = singular_values.max() * max(x.shape) * np.finfo(np.float32).eps
    singular_values = singular_values[singular_values > tolerance]
    p = singular_values / singular_values.sum()
    return float(np.exp(-np.sum(p * np.log(p))))
