"""Semantic textual similarity: Spearman correlation of embedding cosines with gold
scores, the STS Benchmark protocol (Cer et al., 2017, "SemEval-2017 Task 1:
Semantic Textual Similarity Multilingual and Crosslingual Focused Evaluation"), as
reported for sentence encoders by Reimers and Gurevych (2019, "Sentence-BERT") and
Gao et al. (2021, "SimCSE")."""

import numpy as np

from keras_contrastive._validation import (
    check_positive_int,
    check_strings,
    fail,
    shown_as,
)
from keras_contrastive.evaluation.arrays import to_numpy
from keras_contrastive.evaluation.semantic_index import l2_normalize_rows
from keras_contrastive.evaluation.texts import encode_texts


def _check_vector(name, value, length=None, length_name=None):
    """A finite 1-D float64 NumPy array (of `length` if given), or raises."""
    array = to_numpy(value)
    if array.dtype.kind not in "biuf":
        fail(f"{name}.dtype", "numeric", str(array.dtype), TypeError)
    if array.ndim != 1:
        fail(f"{name}.shape", "of rank 1", array.shape)
    if length is not None and array.shape[0] != length:
        fail(
            f"{name}.shape",
            f"({length},): one value per item of `{length_name}`",
            array.shape,
        )
    array = array.astype(np.float64)
    bad = array.size - np.count_nonzero(np.isfinite(array))
    if bad:
        fail(
            name,
            "free of NaN and inf",
            shown_as(f"an array with {bad} NaN or inf values"),
        )
    return array


def average_ranks(values):
    """Ranks 1..N of a 1-D array, ties sharing the average of their ranks.

    The ranking of `scipy.stats.rankdata(values, method="average")`.

    Example:

    >>> average_ranks([10.0, 30.0, 20.0, 30.0])
    array([1. , 3.5, 2. , 3.5])
    """
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Start of each run of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values), dtype=np.float64)
    # Positions start..end-1 hold ranks start+1..end: their mean is (start+end+1)/2.
    ranks[order] = ((starts + ends + 1) / 2.0)[run]
    return ranks


def spearman_correlation(x, y):
    """Spearman's rank correlation coefficient of two 1-D arrays, in [-1, 1].

    The Pearson correlation of the average ranks (ties share the mean of their
    ranks; Spearman, 1904, "The proof and measurement of association between
    two things"). It is NaN when either array is constant (its ranks have no
    variance), as in `scipy.stats.spearmanr`.

    Args:
        x, y: 1-D arrays of finite numbers of the same length (at least 2).

    Returns:
        A Python float.

    Example:

    >>> spearman_correlation([1, 2, 3, 4], [10, 20, 40, 30])
    0.8
    """
    x = _check_vector("x", x)
    y = _check_vector("y", y, len(x), "x")
    if len(x) < 2:
        fail("x.shape", "(n,) with n >= 2", x.shape)
    rank_x = average_ranks(x)
    rank_y = average_ranks(y)
    rank_x -= rank_x.mean()
    rank_y -= rank_y.mean()
    denominator = np.sqrt(np.sum(rank_x * rank_x) * np.sum(rank_y * rank_y))
    if denominator == 0:
        return float("nan")
    # Clipped: rounding can put a perfect correlation a hair outside [-1, 1].
    return float(np.clip(np.sum(rank_x * rank_y) / denominator, -1.0, 1.0))


def check_sts_data(sentences1, sentences2, scores):
    """Checks an STS set; returns `(sentences1, sentences2, scores)` as two
    lists of str and a float64 array."""
    sentences1 = check_strings("sentences1", sentences1)
    sentences2 = check_strings("sentences2", sentences2)
    if len(sentences2) != len(sentences1):
        fail(
            "sentences2",
            f"as long as `sentences1` ({len(sentences1)} sentences)",
            shown_as(f"a list of {len(sentences2)} sentences"),
        )
    scores = _check_vector("scores", scores, len(sentences1), "sentences1")
    if len(scores) < 2:
        fail("scores.shape", "(n,) with n >= 2 pairs", scores.shape)
    if np.all(scores == scores[0]):
        fail(
            "scores",
            "gold scores that are not all equal (a rank correlation needs variance)",
            shown_as(f"{len(scores)} scores all equal to {scores[0]:g}"),
        )
    return sentences1, sentences2, scores


def pair_cosines(encoder, sentences1, sentences2, batch_size=32):
    """Cosine similarity of each pair's embeddings, as float64 `(num_pairs,)`.

    Both lists are embedded in one pass (`sentences1` then `sentences2`).
    """
    embeddings = encode_texts(
        encoder, list(sentences1) + list(sentences2), batch_size, name="sentences"
    )
    embeddings = l2_normalize_rows(embeddings.astype(np.float64))
    first, second = embeddings[: len(sentences1)], embeddings[len(sentences1) :]
    return np.sum(first * second, axis=1)


def sts_spearman(encoder, sentences1, sentences2, scores, batch_size=32):
    """Spearman correlation x 100 of embedding cosines with gold similarity scores.

    The STS Benchmark protocol (Cer et al., 2017) as used for sentence encoders
    (Reimers and Gurevych, 2019; Gao et al., 2021): each pair is embedded, its
    cosine similarity computed, and the Spearman rank correlation between the
    cosines and the human scores (0 to 5 in STS-B) is reported times 100. Only
    the ranking matters, so the scale of the scores does not.

    Args:
        encoder: a text encoder: an object with `encode(texts, batch_size=...,
            verbose=...)`, a `keras.Model` taking strings, or a callable
            mapping a list of strings to `(batch, dim)`.
        sentences1, sentences2: lists of str of equal length (at least 2).
        scores: gold similarity of each pair, a 1-D array of finite numbers,
            not all equal.
        batch_size: texts per encoder call.

    Returns:
        A Python float in [-100, 100]; NaN when every pair gets the same
        cosine (a collapsed encoder), as `scipy.stats.spearmanr` gives.

    Example:

    >>> import numpy as np
    >>> def encoder(batch):  # a toy encoder: counts of a, b and c
    ...     return np.array([[t.count(c) for c in "abc"] for t in batch], "float32")
    >>> sts_spearman(
    ...     encoder,
    ...     ["aab", "abc", "ccc"],
    ...     ["aaa", "cba", "abb"],
    ...     [4.0, 5.0, 0.5],
    ... )
    100.0
    """
    sentences1, sentences2, scores = check_sts_data(sentences1, sentences2, scores)
    batch_size = check_positive_int("batch_size", batch_size)
    cosines = pair_cosines(encoder, sentences1, sentences2, batch_size)
    return 100.0 * spearman_correlation(cosines, scores)
