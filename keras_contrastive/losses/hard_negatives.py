"""MoCHi: synthetic hard negatives by mixing (Kalantidis et al. 2020)."""

import keras
from keras import ops

from keras_contrastive._validation import check_int, fail, fail_shapes, is_int
from keras_contrastive.losses._common import (
    check_rank,
    check_same_last_dim,
    l2_normalize,
    shape_of,
    static_dim,
    to_float32,
)


def _seed_stream(seed):
    """A callable giving one seed per random draw: a SeedGenerator advances itself;
    an int seed s gives s, s + 1, ... (equal ints would give equal streams)."""
    if isinstance(seed, keras.random.SeedGenerator):
        return lambda: seed
    if not is_int(seed):
        fail("seed", "an int, a keras.random.SeedGenerator or None", seed, TypeError)
    seed = int(seed)
    counter = iter(range(seed, seed + 1000))
    return lambda: next(counter)


def mix_hard_negatives(
    query, negatives, num_hard, num_synthetic, num_query_mixes, seed=None
):
    """MoCHi's synthetic hard negatives (Kalantidis et al. 2020).

    For each query q (L2-normalised) and its `num_hard` closest negatives
    n_1..n_K (highest cosine similarity, from the shared `negatives`, e.g. MoCo's
    queue):

    * `num_synthetic` mixtures of two distinct hard negatives,
      h = normalise(alpha n_i + (1 - alpha) n_j), alpha ~ U(0, 1);
    * `num_query_mixes` mixtures of the query with a hard negative,
      h' = normalise(beta q + (1 - beta) n_j), beta ~ U(0, 0.5), so the
      negative dominates and h' stays a negative.

    The result carries no gradient (the paper does not back-propagate through the
    synthetic points) and is returned per query, shape
    (N, num_synthetic + num_query_mixes, d); pass it to `info_nce` as rank-3
    negatives, alone or together with the queue:
    `info_nce(q, k, negatives=[queue, mixed])`.

    Args:
        query: (N, d) queries.
        negatives: (M, d) negatives, M >= num_hard.
        num_hard: K, how many of each query's closest negatives are mixed (>= 1;
            >= 2 when num_synthetic > 0).
        num_synthetic: number of negative-negative mixtures per query.
        num_query_mixes: number of query-negative mixtures per query.
        seed: an int, a `keras.random.SeedGenerator` (a fresh draw per call; inside
            a jitted JAX function use it from Keras-traced code, e.g. a layer or a
            model's train step), or None.

    Returns:
        (N, num_synthetic + num_query_mixes, d) float32 unit-norm negatives.

    Example:

    >>> import numpy as np
    >>> from keras_contrastive.losses import info_nce
    >>> rng = np.random.default_rng(0)
    >>> q, k = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    >>> queue = rng.normal(size=(32, 8))
    >>> mixed = mix_hard_negatives(q, queue, num_hard=8, num_synthetic=6,
    ...                            num_query_mixes=2, seed=0)
    >>> tuple(mixed.shape)
    (4, 8, 8)
    >>> tuple(info_nce(q, k, negatives=[queue, mixed]).shape)
    (4,)
    """
    num_hard = check_int("num_hard", num_hard, minimum=1)
    num_synthetic = check_int("num_synthetic", num_synthetic, minimum=0)
    num_query_mixes = check_int("num_query_mixes", num_query_mixes, minimum=0)
    if num_synthetic > 0 and num_hard < 2:
        fail(
            "num_hard",
            "an int >= 2 to mix pairs of negatives (num_synthetic > 0)",
            num_hard,
        )
    query, negatives = to_float32(query), to_float32(negatives)
    check_rank(query, 2, "query")
    check_rank(negatives, 2, "negatives")
    check_same_last_dim(query, negatives, "query", "negatives")
    m = static_dim(negatives, 0)
    if m is not None and m < num_hard:
        fail_shapes(
            "negatives",
            f"have at least num_hard={num_hard} rows",
            {"negatives": shape_of(negatives)},
        )
    if seed is None:
        seed = keras.random.SeedGenerator()
    next_seed = _seed_stream(seed)

    q = ops.stop_gradient(l2_normalize(query))
    neg = ops.stop_gradient(l2_normalize(negatives))
    _, hard_index = ops.top_k(ops.matmul(q, ops.transpose(neg)), num_hard)
    n = ops.shape(q)[0]

    def pick(slot):  # (N, S) positions among the K hard ones -> (N, S, d) rows
        return ops.take(neg, ops.take_along_axis(hard_index, slot, axis=1), axis=0)

    parts = []
    if num_synthetic > 0:
        shape = (n, num_synthetic)
        i = keras.random.randint(shape, 0, num_hard, seed=next_seed())
        # j != i: an offset in [1, K) modulo K.
        offset = keras.random.randint(shape, 1, num_hard, seed=next_seed())
        j = ops.mod(i + offset, num_hard)
        alpha = keras.random.uniform(shape + (1,), seed=next_seed())
        parts.append(l2_normalize(alpha * pick(i) + (1.0 - alpha) * pick(j)))
    if num_query_mixes > 0:
        shape = (n, num_query_mixes)
        j = keras.random.randint(shape, 0, num_hard, seed=next_seed())
        beta = keras.random.uniform(
            shape + (1,), minval=0.0, maxval=0.5, seed=next_seed()
        )
        parts.append(l2_normalize(beta * q[:, None, :] + (1.0 - beta) * pick(j)))
    if not parts:
        d = ops.shape(q)[1]
        return ops.zeros((n, 0, d), dtype="float32")
    mixed = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
    return ops.stop_gradient(mixed)
