import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import metric_retrieval

METRICS = ("precision_at_1", "r_precision", "map_at_r")


def reference_metric_retrieval(references, labels, queries=None, query_labels=None):
    """Brute force in float64: one full (stable) sort per query, plain loops."""
    references = np.asarray(references, np.float64)
    labels = np.asarray(labels).reshape(-1)
    leave_one_out = queries is None
    if leave_one_out:
        queries, query_labels = references, labels
    queries = np.asarray(queries, np.float64)
    query_labels = np.asarray(query_labels).reshape(-1)
    references = references / np.linalg.norm(references, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = {name: [] for name in METRICS}
    for q in range(len(queries)):
        sims = [float(queries[q] @ references[j]) for j in range(len(references))]
        candidates = [
            j for j in range(len(references)) if not (leave_one_out and j == q)
        ]
        # Best first; equal similarities by row, the lower first.
        ranking = sorted(candidates, key=lambda j: (-sims[j], j))
        r = sum(1 for j in candidates if labels[j] == query_labels[q])
        if r == 0:
            continue
        rel = [1 if labels[j] == query_labels[q] else 0 for j in ranking]
        scores["precision_at_1"].append(rel[0])
        scores["r_precision"].append(sum(rel[:r]) / r)
        average = 0.0
        for i in range(r):
            average += sum(rel[: i + 1]) / (i + 1) * rel[i]
        scores["map_at_r"].append(average / r)
    return {name: float(np.mean(values)) for name, values in scores.items()}


def _problem(rng, num, dim=8, num_classes=5, spread=1.0):
    means = rng.normal(size=(num_classes, dim)) * 1.5
    labels = rng.integers(0, num_classes, num)
    x = means[labels] + spread * rng.normal(size=(num, dim))
    return x.astype("float32"), labels


def _assert_close(result, expected):
    assert list(result) == list(expected)
    for name in expected:
        assert isinstance(result[name], float)
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_leave_one_out_matches_brute_force(rng, batch_size):
    x, labels = _problem(rng, 120)
    expected = reference_metric_retrieval(x, labels)
    # Metrics strictly between 0 and 1: the problem is neither trivial nor random.
    assert 0.2 < expected["map_at_r"] < 0.95
    _assert_close(metric_retrieval(x, labels, batch_size=batch_size), expected)


@pytest.mark.parametrize("batch_size", [3, 256])
def test_query_reference_split_matches_brute_force(rng, batch_size):
    # One problem split in two, so the queries share the references' classes.
    data, data_labels = _problem(rng, 137, spread=1.5)
    x, labels = data[:100], data_labels[:100]
    q, q_labels = data[100:], data_labels[100:]
    expected = reference_metric_retrieval(x, labels, q, q_labels)
    result = metric_retrieval(x, labels, q, q_labels, batch_size=batch_size)
    _assert_close(result, expected)


def test_backend_tensors_and_column_labels(rng):
    x, labels = _problem(rng, 60)
    expected = metric_retrieval(x, labels)
    result = metric_retrieval(
        keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(labels[:, None])
    )
    assert result == expected


def test_hand_computed_leave_one_out():
    # Angles 0, 11.3, 63.4, 73.3 degrees; classes 0, 0, 1, 0.
    # Item 0 ranks 1, 2, 3 -> rel 1, 0, 1, R = 2: P@1 1, RP 1/2, MAP (1 + 0) / 2.
    # Item 1 ranks 0, 2, 3 -> the same.
    # Item 2 is the only one of class 1: R = 0, left out.
    # Item 3 ranks 2, 1, 0 -> rel 0, 1, 1, R = 2: P@1 0, RP 1/2, MAP (0 + 1/2) / 2.
    x = np.array([[1.0, 0.0], [1.0, 0.2], [0.5, 1.0], [0.3, 1.0]])
    result = metric_retrieval(x, [0, 0, 1, 0])
    _assert_close(
        result,
        {
            "precision_at_1": 2 / 3,
            "r_precision": 1 / 2,
            "map_at_r": (0.5 + 0.5 + 0.25) / 3,
        },
    )


def test_hand_computed_query():
    # References on the unit circle at 10, 20, 30, 40, 50 degrees from the query,
    # classes 1, 0, 1, 0, 0: rel = 0, 1, 0, 1, 1 and R = 3.
    # P@1 = 0; RP = 1/3; MAP@R = (1/3) * (P(2) * 1) = (1/3) * (1/2) = 1/6.
    angles = np.deg2rad([10.0, 20.0, 30.0, 40.0, 50.0])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    result = metric_retrieval(x, [1, 0, 1, 0, 0], [[1.0, 0.0]], [0])
    _assert_close(
        result, {"precision_at_1": 0.0, "r_precision": 1 / 3, "map_at_r": 1 / 6}
    )
    # Classes 0, 0, 1, 0, 1: rel = 1, 1, 0, 1, 0 and R = 3.
    # P@1 = 1; RP = 2/3; MAP@R = (1/3) * (P(1) + P(2)) = (1/3) * (1 + 1) = 2/3.
    result = metric_retrieval(x, [0, 0, 1, 0, 1], [[1.0, 0.0]], [0])
    _assert_close(
        result, {"precision_at_1": 1.0, "r_precision": 2 / 3, "map_at_r": 2 / 3}
    )


def test_perfect_clusters_score_one():
    x = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99], [0.05, 1.0]])
    result = metric_retrieval(x, [3, 3, 7, 7, 7])
    _assert_close(result, dict.fromkeys(METRICS, 1.0))


def test_self_is_excluded():
    # Two classes, each item's own row is its most similar; excluding it, the
    # nearest other item is always of the other class.
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    result = metric_retrieval(x, [0, 1, 0, 1])
    assert result["precision_at_1"] == 0.0
    # The same points as a separate query set find themselves first.
    result = metric_retrieval(x, [0, 1, 0, 1], x, [0, 1, 0, 1])
    assert result["precision_at_1"] == 1.0


def test_singleton_classes_are_left_out(rng):
    x, labels = _problem(rng, 50)
    with_singletons = np.concatenate([x, rng.normal(size=(3, 8)).astype("float32")])
    singleton_labels = np.concatenate([labels, [100, 101, 102]])
    # The three extra items still serve as (irrelevant) references for others.
    expected = reference_metric_retrieval(with_singletons, singleton_labels)
    result = metric_retrieval(with_singletons, singleton_labels)
    _assert_close(result, expected)
    # A query class absent from the references is left out as well.
    queries = np.concatenate([x[:5], x[5:6]])
    query_labels = np.concatenate([labels[:5], [55]])
    _assert_close(
        metric_retrieval(x, labels, queries, query_labels),
        metric_retrieval(x, labels, x[:5], labels[:5]),
    )


def test_no_query_left_raises():
    x = np.eye(3)
    with pytest.raises(ValueError, match=r"`labels` must be labels with at least"):
        metric_retrieval(x, [0, 1, 2])
    with pytest.raises(ValueError, match=r"`query_labels` must be labels"):
        metric_retrieval(x, [0, 0, 1], x[:1], [5])


def test_ties_are_ranked_by_row():
    # All references identical: every similarity ties. Ranking by row puts the
    # lower rows first, whatever the partition chose.
    x = np.ones((9, 3))
    labels = np.array([1, 0, 1, 0, 0, 1, 0, 1, 1])
    expected = reference_metric_retrieval(x, labels)
    for batch_size in (1, 4, 100):
        _assert_close(metric_retrieval(x, labels, batch_size=batch_size), expected)
    # Ties at the boundary of the R nearest only, with a query.
    refs = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    ref_labels = [0, 1, 0, 0, 1]
    expected = reference_metric_retrieval(refs, ref_labels, [[1.0, 1.0]], [0])
    _assert_close(metric_retrieval(refs, ref_labels, [[1.0, 1.0]], [0]), expected)


def test_zero_rows_and_discrete_ties(rng):
    # Positive multiples of the six signed axes: cosines exactly 1, 0 or -1 in
    # any precision, so nearly every rank is a tie, decided by row.
    axes = np.concatenate([np.eye(3), -np.eye(3)])
    x = (axes[rng.integers(0, 6, 80)] * rng.integers(1, 4, (80, 1))).astype("float32")
    labels = rng.integers(0, 3, 80)
    expected = reference_metric_retrieval(x, labels)
    for batch_size in (1, 16, 256):
        _assert_close(metric_retrieval(x, labels, batch_size=batch_size), expected)
    # Rows of zeros (cosine 0 to everything) do not crash.
    x[:4] = 0.0
    result = metric_retrieval(x, labels, batch_size=16)
    assert all(0.0 <= value <= 1.0 for value in result.values())


def test_metrics_selection():
    x = np.array([[1.0, 0.0], [1.0, 0.2], [0.5, 1.0], [0.3, 1.0]])
    result = metric_retrieval(x, [0, 0, 1, 0], metrics="map_at_r")
    assert list(result) == ["map_at_r"]
    result = metric_retrieval(x, [0, 0, 1, 0], metrics=["r_precision", "map_at_r"])
    assert list(result) == ["r_precision", "map_at_r"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(labels=[0, 1, 0]), ValueError, r"`labels.shape` must be \(4,\)"),
        (dict(labels=[0.5, 1, 0, 1]), ValueError, r"`labels` must be whole-number"),
        (dict(labels=["a", "b", "a", "b"]), TypeError, r"`labels.dtype` must be"),
        (dict(labels=[0, -1, 0, 1]), ValueError, r"`labels` must be class labels"),
        (dict(embeddings=np.ones(4)), ValueError, r"`embeddings.shape` must be"),
        (
            dict(embeddings=np.zeros((0, 2)), labels=[]),
            ValueError,
            r"`embeddings.shape` must be .* num_samples >= 1",
        ),
        (
            dict(embeddings=np.full((4, 2), np.nan)),
            ValueError,
            r"`embeddings` must be free of NaN",
        ),
        (
            dict(query_embeddings=np.ones((2, 2))),
            ValueError,
            r"`query_labels` must be given together with `query_embeddings`",
        ),
        (
            dict(query_labels=[0, 1]),
            ValueError,
            r"`query_embeddings` must be given together with `query_labels`",
        ),
        (
            dict(query_embeddings=np.ones((2, 3)), query_labels=[0, 1]),
            ValueError,
            r"`query_embeddings.shape\[1\]` must be equal",
        ),
        (
            dict(query_embeddings=np.ones((2, 2)), query_labels=[0, 1, 1]),
            ValueError,
            r"`query_labels.shape` must be \(2,\)",
        ),
        (
            dict(query_embeddings=np.ones((0, 2)), query_labels=[]),
            ValueError,
            r"`query_embeddings.shape` must be",
        ),
        (dict(metrics="recall"), ValueError, r"`metrics` must be one of"),
        (dict(metrics=()), TypeError, r"`metrics` must be a name"),
        (dict(metrics=[1]), TypeError, r"`metrics` must be a name"),
        (dict(batch_size=0), ValueError, r"`batch_size` must be an int >= 1"),
        (dict(batch_size=2.0), TypeError, r"`batch_size` must be an int"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    arguments = dict(
        embeddings=np.array([[1.0, 0.0], [1.0, 0.2], [0.5, 1.0], [0.3, 1.0]]),
        labels=[0, 0, 1, 1],
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        metric_retrieval(**arguments)
