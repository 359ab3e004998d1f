import numpy as np
import pytest

from keras_contrastive.evaluation import paraphrase_mining
from tests.evaluation.text_encoder import CharEncoder, char_features


def brute_force(embeddings, top_k, max_pairs, metric="cosine"):
    """All pair scores; a pair kept when either item ranks the other in its top_k."""
    x = np.asarray(embeddings, np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    scores = x @ x.T
    num = len(x)
    kept = set()
    for i in range(num):
        others = [j for j in np.argsort(-scores[i], kind="stable") if j != i]
        for j in others[:top_k]:
            kept.add((min(i, j), max(i, j)))
    pairs = sorted(kept, key=lambda p: (-scores[p], p))[:max_pairs]
    return [(i, j, scores[i, j]) for i, j in pairs]


def _assert_same(found, expected):
    assert [(i, j) for i, j, _ in found] == [(i, j) for i, j, _ in expected]
    np.testing.assert_allclose(
        [s for _, _, s in found], [s for _, _, s in expected], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "top_k, max_pairs, query_chunk_size, block_size",
    [(100, 10_000, 5000, 16384), (3, 10_000, 7, 11), (5, 40, 16, 9), (1, 5, 100, 30)],
)
def test_matches_brute_force(rng, top_k, max_pairs, query_chunk_size, block_size):
    embeddings = rng.normal(size=(60, 8)).astype("float32")
    found = paraphrase_mining(
        embeddings,
        top_k=top_k,
        max_pairs=max_pairs,
        query_chunk_size=query_chunk_size,
        block_size=block_size,
    )
    expected = brute_force(embeddings, min(top_k, 59), max_pairs)
    _assert_same(found, expected)
    assert all(i < j for i, j, _ in found)
    assert all(type(i) is int and type(s) is float for i, _, s in found)
    if top_k >= 59:
        assert len(found) == 60 * 59 // 2  # every pair once


def test_dot_metric(rng):
    embeddings = rng.normal(size=(30, 5)).astype("float32")
    found = paraphrase_mining(embeddings, top_k=4, metric="dot", query_chunk_size=8)
    _assert_same(found, brute_force(embeddings, 4, 10**6, metric="dot"))


def test_texts_through_an_encoder():
    sentences = [
        "A man is playing a guitar.",
        "The cat sits on the mat.",
        "A man plays the guitar.",
        "A cat is sitting on a mat.",
        "Stocks fell sharply today.",
    ]
    found = paraphrase_mining(CharEncoder(), sentences, top_k=2, batch_size=2)
    _assert_same(found, brute_force(char_features(sentences), 2, 10**6))
    assert {found[0][:2], found[1][:2]} == {(0, 2), (1, 3)}
    # Duplicated sentences: each is the other's perfect match, reported once.
    found = paraphrase_mining(CharEncoder(), ["same text", "same text", "other"])
    assert found[0][:2] == (0, 1) and found[0][2] == pytest.approx(1.0)
    assert len(found) == 3


def test_bad_arguments(rng):
    embeddings = rng.normal(size=(5, 3))
    cases = [
        (
            lambda: paraphrase_mining(embeddings[:1]),
            ValueError,
            r"`encoder_or_embeddings.shape` must be \(num_items, dim\) with "
            r"num_items >= 2 \(a pair\). Received: "
            r"encoder_or_embeddings.shape=\(1, 3\)",
        ),
        (
            lambda: paraphrase_mining(embeddings, top_k=0),
            ValueError,
            r"`top_k` must be an int >= 1. Received: top_k=0",
        ),
        (
            lambda: paraphrase_mining(embeddings, max_pairs=-1),
            ValueError,
            r"`max_pairs` must be an int >= 1",
        ),
        (
            lambda: paraphrase_mining(embeddings, metric="euclidean"),
            ValueError,
            r"`metric` must be one of \('cosine', 'dot'\)",
        ),
        (
            lambda: paraphrase_mining(embeddings, ["a", "b"]),
            ValueError,
            r"`sentences` must be one text per embedding row \(5 texts\). Received: "
            r"len\(sentences\)=2",
        ),
        (
            lambda: paraphrase_mining(CharEncoder(), None),
            TypeError,
            r"`sentences` must be a string or a sequence of strings. Received: "
            r"sentences=None",
        ),
        (
            lambda: paraphrase_mining(CharEncoder(), ["one"]),
            ValueError,
            r"`sentences` must be a list of at least 2 texts \(a pair\). Received: "
            r"sentences=\['one'\]",
        ),
        (
            lambda: paraphrase_mining(CharEncoder(), []),
            ValueError,
            r"`sentences` must be a non-empty batch of strings",
        ),
        (
            lambda: paraphrase_mining(np.ones(3)),
            ValueError,
            r"`encoder_or_embeddings.shape` must be of rank 2",
        ),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
