import sys

import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import SemanticIndex, encode_texts
from tests.evaluation.text_encoder import CharEncoder, char_features


def brute_force(corpus, queries, k, metric):
    """Float64 scores and stable top-k over all rows (the reference)."""
    corpus = np.asarray(corpus, np.float64)
    queries = np.asarray(queries, np.float64)
    if metric == "cosine":
        corpus = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    if metric == "euclidean":
        scores = -np.linalg.norm(queries[:, None, :] - corpus[None], axis=2)
    else:
        scores = queries @ corpus.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1), scores


def _clustered(rng, num, dim=16, centers=20):
    means = rng.normal(size=(centers, dim)) * 2
    return (means[rng.integers(0, centers, num)] + rng.normal(size=(num, dim))).astype(
        "float32"
    )


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize("block_size, query_batch_size", [(16384, 256), (37, 7)])
def test_exact_search_matches_brute_force(rng, metric, block_size, query_batch_size):
    corpus, queries = _clustered(rng, 300), _clustered(rng, 25)
    index = SemanticIndex(
        metric=metric, block_size=block_size, query_batch_size=query_batch_size
    )
    index.add(corpus)
    ids, scores = index.search(queries, k=12)
    expected_ids, expected_scores, _ = brute_force(corpus, queries, 12, metric)
    assert ids.shape == scores.shape == (25, 12)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_ids_several_adds_len_and_reset(rng):
    first, second = _clustered(rng, 30), _clustered(rng, 20)
    index = SemanticIndex(block_size=8)
    index.add(first).add(second)
    assert len(index) == 50 and index.dim == 16
    ids, _ = index.search(second[:3], k=1)
    np.testing.assert_array_equal(ids[:, 0], [30, 31, 32])

    named = SemanticIndex()
    named.add(first[:2], ids=["a", "b"])
    named.add(first[2:3], ids=np.array(["c"]))
    ids, scores = named.search(first[2:3], k=3)
    assert ids[0, 0] == "c" and set(ids[0]) == {"a", "b", "c"}
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(named.ids, ["a", "b", "c"])

    index.reset()
    assert len(index) == 0 and index.dim is None
    index.add(first[:4], ids=[7, 8, 9, 10])
    assert index.search(first[3:4], k=1)[0][0, 0] == 10


def test_backend_tensors_and_zero_rows(rng):
    corpus = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], "float32")
    index = SemanticIndex().add(keras.ops.convert_to_tensor(corpus))
    ids, scores = index.search(keras.ops.convert_to_tensor([[0.0, 3.0]]), k=3)
    # The zero row scores 0, like row 1 (PyTorch's topk may order the two ties
    # either way).
    assert ids[0, 0] == 2 and set(ids[0, 1:]) == {0, 1}
    np.testing.assert_allclose(scores, [[1.0, 0.0, 0.0]], atol=1e-6)


def test_texts_through_each_kind_of_encoder():
    texts = ["a red car", "a blue car", "the cat sleeps", "a cat is sleeping"]
    encoder = CharEncoder()
    index = SemanticIndex(encoder=encoder, batch_size=3)
    index.add(texts, ids=["car1", "car2", "cat1", "cat2"])
    ids, scores = index.search(["cats sleeping"], k=2)
    assert set(ids[0]) == {"cat1", "cat2"}
    assert encoder.calls[0] == (4, 3, 0)  # whole list, batch_size and verbose passed
    # A plain callable is called on batches of `batch_size` texts.
    seen = []

    def function(batch):
        seen.append(len(batch))
        return char_features(batch)

    by_function = SemanticIndex(encoder=function, batch_size=3).add(texts)
    same_ids, same_scores = by_function.search(["cats sleeping"], k=2)
    assert seen == [3, 1, 1]
    np.testing.assert_allclose(same_scores, scores, rtol=1e-6)
    # Embeddings can be mixed with texts of the same dimension.
    by_function.add(char_features(["a green car"]))
    assert len(by_function) == 5


class EncodingModel(keras.Model):
    """A Keras model with `encode`, like `keras_contrastive.text.SentenceEncoder`."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(4)

    def call(self, features):
        return self.dense(features)

    def encode(self, texts, batch_size=32, verbose="auto"):
        return keras.ops.convert_to_numpy(self(char_features(texts)))


def test_a_keras_model_with_encode_is_used_through_encode():
    model = EncodingModel()
    embeddings = encode_texts(model, ["a red car", "a cat"])
    expected = keras.ops.convert_to_numpy(model(char_features(["a red car", "a cat"])))
    np.testing.assert_allclose(embeddings, expected, rtol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="string tensors exist on the TensorFlow backend only",
)
def test_keras_model_taking_strings():
    inputs = keras.Input(shape=(), dtype="string")
    lookup = keras.layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")
    model = keras.Model(inputs, lookup(inputs))
    np.testing.assert_array_equal(
        encode_texts(model, ["a", "b", "zz"], batch_size=2),
        [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
    )
    index = SemanticIndex(encoder=model).add(["a", "b"], ids=["A", "B"])
    assert index.search(["b"], k=1)[0].tolist() == [["B"]]


def test_encode_texts_checks_the_encoder_output():
    with pytest.raises(
        ValueError,
        match=r"`encoder` must be a text encoder returning one embedding row per "
        r"text, of shape \(num_texts, dim\). Received: encoder=an encoder returning "
        r"shape \(1, 4\) for 2 texts",
    ):
        encode_texts(lambda batch: np.ones((1, 4)), ["a", "b"])
    with pytest.raises(ValueError, match=r"`encoder\(texts\)` must be free of NaN"):
        encode_texts(lambda batch: np.full((len(batch), 2), np.nan), ["a"])
    with pytest.raises(TypeError, match="`encoder` must be a text encoder"):
        encode_texts(42, ["a"])


def test_bad_arguments(rng):
    corpus = _clustered(rng, 5)
    index = SemanticIndex().add(corpus)
    cases = [
        (
            lambda: index.search(corpus, k=0),
            ValueError,
            r"`k` must be an int in "
            r"\[1, 5\] \(at most the number of indexed items\). Received: k=0",
        ),
        (lambda: index.search(corpus, k=6), ValueError, r"Received: k=6"),
        (lambda: index.search(corpus, k=2.0), TypeError, r"`k` must be an int"),
        (
            lambda: index.search(corpus[:, :3], k=1),
            ValueError,
            r"`queries.shape\[1\]` must be the index's embedding dimension \(16\). "
            r"Received: queries.shape\[1\]=3",
        ),
        (
            lambda: index.search(["text"], k=1),
            ValueError,
            r"`encoder` must be a text encoder to add or search texts",
        ),
        (
            lambda: index.add([]),
            ValueError,
            r"`texts_or_embeddings` must be a non-empty batch of strings. Received: "
            r"texts_or_embeddings=\[\]",
        ),
        (
            lambda: index.add(np.zeros((0, 16))),
            ValueError,
            r"`texts_or_embeddings.shape` must be \(num_samples, dim\) with "
            r"num_samples >= 1",
        ),
        (
            lambda: index.add(corpus[:1], ids=[3]),
            ValueError,
            r"`ids` must be unique \(within the call and across the index\). Received: "
            r"ids=ids including 3 more than once",
        ),
        (
            lambda: index.add(corpus[:2], ids=[10]),
            ValueError,
            r"`ids.shape` must be \(2,\): one id per added item. Received: "
            r"ids.shape=\(1,\)",
        ),
        (
            lambda: index.add(corpus[:1], ids=["x"]),
            TypeError,
            r"`ids` must be int ids like those already in the index",
        ),
        (
            lambda: index.add(corpus[:1], ids=[1.5]),
            TypeError,
            r"`ids` must be a list or 1-D array of ints or strings",
        ),
        (
            lambda: SemanticIndex(metric="cos"),
            ValueError,
            r"`metric` must be one of \('cosine', 'dot', 'euclidean'\). Received: "
            r"metric='cos'",
        ),
        (lambda: SemanticIndex(backend="annoy"), ValueError, r"`backend` must be"),
        (lambda: SemanticIndex(block_size=0), ValueError, r"`block_size` must be"),
        (lambda: SemanticIndex(encoder=3), TypeError, r"`encoder` must be a text"),
        (lambda: SemanticIndex().search(corpus, k=1), ValueError, "index is empty"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    texts = SemanticIndex(encoder=CharEncoder())
    with pytest.raises(
        TypeError,
        match=r"`texts_or_embeddings\[1\]` must be a string. Received: "
        r"texts_or_embeddings\[1\]=7",
    ):
        texts.add(["fine", 7])
    # One string is a batch of one, as in `SentenceEncoder.encode`.
    texts.add("one text")
    assert len(texts) == 1 and texts.search("one text", k=1)[0].shape == (1, 1)


def test_missing_faiss_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(ImportError, match=r'pip install "keras_contrastive\[ann\]"'):
        SemanticIndex(backend="hnsw")


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_hnsw_recall_and_format(rng, metric):
    pytest.importorskip("faiss")
    corpus, queries = _clustered(rng, 2000, dim=24), _clustered(rng, 100, dim=24)
    exact = SemanticIndex(metric=metric).add(corpus)
    approximate = SemanticIndex(metric=metric, backend="hnsw", hnsw_m=16)
    approximate.add(corpus[:1200]).add(corpus[1200:])
    assert len(approximate) == 2000
    exact_ids, _ = exact.search(queries, k=10)
    ids, scores = approximate.search(queries, k=10)
    assert ids.shape == scores.shape == (100, 10)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids)])
    assert recall >= 0.95
    # Whatever it finds is scored like the exact search scores it.
    _, _, all_scores = brute_force(corpus, queries, 10, metric)
    np.testing.assert_allclose(
        scores, np.take_along_axis(all_scores, ids, axis=1), rtol=1e-4, atol=1e-4
    )


def test_hnsw_ids_texts_and_reset(rng):
    pytest.importorskip("faiss")
    texts = ["a red car", "a blue car", "the cat sleeps", "a cat is sleeping"]
    index = SemanticIndex(encoder=CharEncoder(), backend="hnsw")
    index.add(texts, ids=["car1", "car2", "cat1", "cat2"])
    ids, scores = index.search(["cats sleeping", "red cars"], k=4)
    exact = SemanticIndex(encoder=CharEncoder()).add(texts, ids=list(index.ids))
    expected_ids, expected_scores = exact.search(["cats sleeping", "red cars"], k=4)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)
    index.reset()
    assert len(index) == 0
    index.add(char_features(["x"]))
    assert index.search(char_features(["x"]), k=1)[0].tolist() == [[0]]
