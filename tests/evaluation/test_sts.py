import os

import numpy as np
import pytest
import scipy.stats

from keras_contrastive.evaluation import spearman_correlation, sts_spearman
from keras_contrastive.evaluation.sts import average_ranks
from tests.conftest import SHARED_DATA
from tests.evaluation.text_encoder import CharEncoder, char_features

STSB = os.path.join(SHARED_DATA, "stsb")


def _cases(rng):
    yield rng.normal(size=50), rng.normal(size=50)
    x = rng.normal(size=200)
    yield x, x + rng.normal(size=200) * 0.5  # strongly related
    # Many ties on both sides (STS scores come in steps of 0.2 or 0.25).
    yield rng.integers(0, 6, 300).astype(float), rng.integers(0, 4, 300) * 1.25
    yield np.array([1.0, 1.0, 2.0, 2.0, 2.0, 5.0]), np.array([3, 1, 1, 2, 2, 0])
    yield np.array([0.1, 0.2]), np.array([5.0, 4.0])  # two items: -1


def test_spearman_matches_scipy(rng):
    for x, y in _cases(rng):
        expected = scipy.stats.spearmanr(x, y).statistic
        assert spearman_correlation(x, y) == pytest.approx(expected, abs=1e-12)
        np.testing.assert_allclose(
            average_ranks(x), scipy.stats.rankdata(x, method="average")
        )


def test_spearman_of_a_constant_is_nan_like_scipy():
    assert np.isnan(spearman_correlation([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_sts_spearman_matches_a_scipy_reference(rng):
    words = ["red", "car", "cat", "sleeps", "the", "dog", "runs", "fast", "a"]
    sentences1 = [" ".join(rng.choice(words, 4)) for _ in range(40)]
    sentences2 = [" ".join(rng.choice(words, 5)) for _ in range(40)]
    scores = rng.integers(0, 11, 40) / 2.0
    a, b = char_features(sentences1), char_features(sentences2)
    cosines = np.sum(a * b, axis=1) / (
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    )
    expected = 100 * scipy.stats.spearmanr(cosines, scores).statistic
    encoder = CharEncoder()
    value = sts_spearman(encoder, sentences1, sentences2, scores, batch_size=8)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, abs=1e-6)
    # Both lists go through the encoder in one call.
    assert encoder.calls == [(80, 8, 0)]


def test_sts_spearman_on_stsb_dev():
    if not os.path.isdir(STSB):
        pytest.skip("shared STS-B data not present")
    from keras_contrastive.datasets import load_stsb

    sentences1, sentences2, scores = load_stsb(STSB, split="dev")
    value = sts_spearman(CharEncoder(), sentences1, sentences2, scores)
    a, b = char_features(sentences1), char_features(sentences2)
    cosines = np.sum(a * b, axis=1) / np.maximum(
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12
    )
    assert value == pytest.approx(
        100 * scipy.stats.spearmanr(cosines, scores).statistic, abs=1e-4
    )
    # Character overlap tracks similarity a little: well above chance, far below
    # a sentence encoder (86.7 for all-MiniLM-L6-v2).
    assert 20 < value < 70


def test_bad_arguments():
    encoder = CharEncoder()
    good = (["a b", "c d"], ["a c", "d d"], [1.0, 2.0])
    cases = [
        (
            (["a"], ["b", "c"], [1.0, 2.0]),
            ValueError,
            r"`sentences2` must be as long as `sentences1` \(1 sentences\). Received: "
            r"sentences2=a list of 2 sentences",
        ),
        (
            (good[0], good[1], [1.0]),
            ValueError,
            r"`scores.shape` must be \(2,\): one value per item of `sentences1`. "
            r"Received: scores.shape=\(1,\)",
        ),
        (
            (good[0], good[1], [1.0, 1.0]),
            ValueError,
            r"`scores` must be gold scores that are not all equal",
        ),
        (
            (good[0], good[1], [1.0, np.nan]),
            ValueError,
            r"`scores` must be free of NaN and inf",
        ),
        (
            ([], [], []),
            ValueError,
            r"`sentences1` must be a non-empty batch of strings. Received: "
            r"sentences1=\[\]",
        ),
        (
            (["a"], ["b"], [1.0]),
            ValueError,
            r"`scores.shape` must be \(n,\) with n >= 2 pairs",
        ),
        (
            (["a", 3], ["b", "c"], [1.0, 2.0]),
            TypeError,
            r"`sentences1\[1\]` must be a string. Received: sentences1\[1\]=3",
        ),
        ((good[0], good[1], ["x", "y"]), TypeError, r"`scores.dtype` must be"),
    ]
    for args, error, match in cases:
        with pytest.raises(error, match=match):
            sts_spearman(encoder, *args)
    with pytest.raises(ValueError, match=r"`batch_size` must be an int >= 1"):
        sts_spearman(encoder, *good, batch_size=0)
    with pytest.raises(ValueError, match=r"`x.shape` must be \(n,\) with n >= 2"):
        spearman_correlation([1.0], [2.0])
