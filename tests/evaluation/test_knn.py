import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import knn_accuracy, knn_classify
from tests.evaluation.reference import reference_knn


def _problem(rng, num_train=150, num_query=40, dim=12, num_classes=4):
    # Class means make the task non-trivial but not random: votes differ clearly.
    means = rng.normal(size=(num_classes, dim)) * 1.5
    train_labels = rng.integers(0, num_classes, num_train)
    query_labels = rng.integers(0, num_classes, num_query)
    train = means[train_labels] + rng.normal(size=(num_train, dim))
    query = means[query_labels] + rng.normal(size=(num_query, dim))
    return (
        train.astype("float32"),
        train_labels,
        query.astype("float32"),
        query_labels,
    )


@pytest.mark.parametrize("k", [1, 5, 37, 150])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_matches_numpy_reference(rng, k, temperature):
    train, labels, query, _ = _problem(rng)
    expected, neighbour_gap, vote_gap = reference_knn(
        train, labels, query, k, temperature, 4
    )
    # Only queries whose answer is not decided by float32 rounding count.
    clear = (neighbour_gap > 1e-5) & (vote_gap > 1e-4)
    assert clear.mean() > 0.9
    predicted = knn_classify(train, labels, query, k=k, temperature=temperature)
    assert predicted.dtype == np.int64 and predicted.shape == (40,)
    np.testing.assert_array_equal(predicted[clear], expected[clear])


def test_hand_computed_votes():
    # Query (1, 0). Neighbours with k=3: cos 1 (label 0), cos 0.8 (label 1),
    # cos 0.6 (label 1). t = 0.1: class 0 gets e^10 = 22026, class 1 gets
    # e^8 + e^6 = 2981 + 403 = 3384 -> 0. With t = 1: e^1 = 2.72 against
    # e^0.8 + e^0.6 = 2.23 + 1.82 = 4.05 -> 1.
    train = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]])
    labels = np.array([0, 1, 1, 0])
    query = np.array([[2.0, 0.0]])
    assert knn_classify(train, labels, query, k=3, temperature=0.1)[0] == 0
    assert knn_classify(train, labels, query, k=3, temperature=1.0)[0] == 1
    # k = 1: only the identical direction votes.
    assert knn_classify(train, labels, query, k=1, temperature=1.0)[0] == 0


def test_batching_gives_identical_results(rng):
    train, labels, query, _ = _problem(rng, num_train=120, num_query=30)
    whole = knn_classify(train, labels, query, k=20)
    # Query batches of one row; chunks smaller than k with a padded last chunk.
    for batch_size, train_batch_size in [(1, 120), (16, 13)]:
        chunked = knn_classify(
            train,
            labels,
            query,
            k=20,
            batch_size=batch_size,
            train_batch_size=train_batch_size,
        )
        np.testing.assert_array_equal(chunked, whole)


def test_k_larger_than_train_set_is_clamped(rng):
    train, labels, query, _ = _problem(rng, num_train=30)
    np.testing.assert_array_equal(
        knn_classify(train, labels, query, k=200),
        knn_classify(train, labels, query, k=30),
    )
    expected, _, vote_gap = reference_knn(train, labels, query, 30, 0.1, 4)
    clear = vote_gap > 1e-4
    np.testing.assert_array_equal(
        knn_classify(train, labels, query, k=200)[clear], expected[clear]
    )


def test_small_temperature_does_not_overflow(rng):
    train, labels, query, _ = _problem(rng)
    expected, neighbour_gap, vote_gap = reference_knn(train, labels, query, 10, 1e-3, 4)
    clear = (neighbour_gap > 1e-5) & (vote_gap > 1e-2)
    predicted = knn_classify(train, labels, query, k=10, temperature=1e-3)
    np.testing.assert_array_equal(predicted[clear], expected[clear])


def test_accepts_tensors_column_labels_and_num_classes(rng):
    train, labels, query, _ = _problem(rng)
    reference = knn_classify(train, labels, query, k=5)
    from_tensors = knn_classify(
        keras.ops.convert_to_tensor(train),
        labels.reshape(-1, 1).astype("uint8"),
        keras.ops.convert_to_tensor(query),
        k=5,
        num_classes=7,
    )
    np.testing.assert_array_equal(from_tensors, reference)
    as_floats = knn_classify(train, labels.astype("float32"), query, k=5)
    np.testing.assert_array_equal(as_floats, reference)


def test_zero_rows_and_empty_queries(rng):
    train = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = np.array([2, 0, 1])
    predicted = knn_classify(train, labels, np.array([[0.0, 3.0]]), k=1)
    np.testing.assert_array_equal(predicted, [1])
    empty = knn_classify(train, labels, np.zeros((0, 2)), k=1)
    assert empty.shape == (0,) and empty.dtype == np.int64


def test_knn_accuracy_matches_reference(rng):
    train, labels, query, query_labels = _problem(rng)
    expected, _, vote_gap = reference_knn(train, labels, query, 15, 0.1, 4)
    assert np.all(vote_gap > 1e-4)
    accuracy = knn_accuracy(train, labels, query, query_labels, k=15)
    assert isinstance(accuracy, float)
    assert accuracy == pytest.approx(np.mean(expected == query_labels))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"k": 0}, ValueError, "`k` must be an int >= 1. Received: k=0"),
        ({"k": 2.5}, TypeError, "`k` must be an int >= 1. Received: k=2.5"),
        ({"k": True}, TypeError, "`k`"),
        ({"temperature": 0.0}, ValueError, "`temperature`"),
        ({"temperature": -1.0}, ValueError, "`temperature`"),
        (
            {"temperature": "hot"},
            TypeError,
            "`temperature` must be a positive number. Received: temperature='hot'",
        ),
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        (
            {"num_classes": 2},
            ValueError,
            r"`num_classes` must be greater than the largest label in `train_labels` "
            r"\(3\). Received: num_classes=2",
        ),
    ],
)
def test_bad_arguments(kwargs, error, match):
    train = np.eye(4)
    labels = np.array([0, 1, 2, 3])
    with pytest.raises(error, match=match):
        knn_classify(train, labels, train, **kwargs)


def test_bad_shapes_and_labels():
    train = np.eye(4)
    labels = [0, 1, 2, 3]
    cases = [
        (
            (np.ones(4), labels, train),
            r"`train_embeddings.shape` must be of rank 2: \(num_samples, dim\). "
            r"Received: train_embeddings.shape=\(4,\)",
        ),
        (
            (train, labels, np.ones((2, 3))),
            r"`query_embeddings.shape\[1\]` must be equal to `train_embeddings`'s "
            r"feature dimension \(4\). Received: query_embeddings.shape\[1\]=3",
        ),
        (
            (train, [0, 1, 2], train),
            r"`train_labels.shape` must be \(4,\) or \(4, 1\): one class label per "
            r"row of `train_embeddings`. Received: train_labels.shape=\(3,\)",
        ),
        (
            (train, [0, 1, -2, 3], train),
            r"`train_labels` must be class labels >= 0. Received: train_labels=an "
            r"array holding -2",
        ),
        (
            (train, [0, 1, 2.5, 3], train),
            r"`train_labels` must be whole-number class labels. Received: "
            r"train_labels=an array holding 2.5",
        ),
        (
            (np.full((4, 4), np.nan), labels, train),
            r"`train_embeddings` must be free of NaN and inf. Received: "
            r"train_embeddings=an array of shape \(4, 4\) with 16 NaN or inf values",
        ),
        (
            (np.zeros((0, 4)), np.zeros(0, int), train),
            r"`train_embeddings.shape` must be \(num_samples, dim\) with "
            r"num_samples >= 1. Received: train_embeddings.shape=\(0, 4\)",
        ),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            knn_classify(*args)
    with pytest.raises(TypeError, match=r"`train_embeddings.dtype` must be numeric"):
        knn_classify(np.array([["a"]]), [0], train)
    with pytest.raises(TypeError, match=r"`train_labels.dtype` must be an integer"):
        knn_classify(train, ["a", "b", "c", "d"], train)
    with pytest.raises(
        ValueError, match=r"`query_labels.shape` must be \(4,\) or \(4, 1\)"
    ):
        knn_accuracy(train, labels, train, [0, 1])
    with pytest.raises(ValueError, match=r"`query_embeddings.shape` must be"):
        knn_accuracy(train, labels, np.zeros((0, 4)), [])


def test_arbitrary_label_values_are_mapped_to_contiguous_classes(rng, monkeypatch):
    train, labels, query, query_labels = _problem(rng)
    reference = knn_classify(train, labels, query, k=15)
    # A label of 10**9 once sized a (batch, 10**9 + 1) vote matrix (44.7 GiB).
    ids = np.array([7, 10**9, 42, 3 * 10**12])
    from keras_contrastive.evaluation import knn

    sizes = []
    real_vote = knn._vote

    def recording_vote(sims, labels, temperature, num_classes):
        sizes.append(num_classes)
        return real_vote(sims, labels, temperature, num_classes)

    monkeypatch.setattr(knn, "_vote", recording_vote)
    predicted = knn_classify(train, ids[labels], query, k=15)
    assert sizes == [len(ids)]  # one vote column per distinct label
    assert predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, ids[reference])
    accuracy = knn_accuracy(train, ids[labels], query, ids[query_labels], k=15)
    assert accuracy == knn_accuracy(train, labels, query, query_labels, k=15)
    # Whole-number float ids too; ties still go to the lowest label.
    as_floats = knn_classify(train, ids[labels].astype("float64"), query, k=15)
    np.testing.assert_array_equal(as_floats, ids[reference])
    tie = knn_classify(np.eye(2), [10**9, 5], np.ones((1, 2)), k=2)
    np.testing.assert_array_equal(tie, [5])
    with pytest.raises(ValueError, match=r"below 2\*\*63"):
        knn_classify(np.eye(2), [1e19, 5.0], np.ones((1, 2)), k=2)
