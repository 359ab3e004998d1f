import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import effective_rank


def orthonormal(rng, rows, cols):
    q, _ = np.linalg.qr(rng.normal(size=(rows, cols)))
    return q


def with_singular_values(rng, singular_values, num_samples, dim):
    """U diag(s) V^T with random orthonormal U, V: its singular values are s."""
    r = len(singular_values)
    u, v = orthonormal(rng, num_samples, r), orthonormal(rng, dim, r)
    return (u * singular_values) @ v.T


def entropy_rank(singular_values):
    """exp of the entropy of s / sum(s), straight from the definition."""
    p = np.asarray(singular_values, np.float64)
    p = p / p.sum()
    return float(np.exp(-sum(pk * np.log(pk) for pk in p)))


@pytest.mark.parametrize("num_samples, dim", [(300, 16), (6, 40)])
def test_matches_the_definition_for_known_singular_values(num_samples, dim):
    rng = np.random.default_rng(0)
    s = np.array([5.0, 3.0, 2.0, 1.0, 0.5])
    x = with_singular_values(rng, s, num_samples, dim)
    assert effective_rank(x) == pytest.approx(entropy_rank(s), rel=1e-5)
    # Blocks smaller than the data: the accumulated Gram matrix is the same.
    assert effective_rank(x, batch_size=7) == pytest.approx(entropy_rank(s), rel=1e-5)


def test_closed_forms():
    assert effective_rank(np.eye(5)) == pytest.approx(5.0)
    assert effective_rank(np.eye(3, 7)) == pytest.approx(3.0)  # 3 of 7 directions
    line = np.outer(np.arange(1.0, 9.0), [1.0, -2.0, 0.5])
    assert effective_rank(line) == pytest.approx(1.0)
    # Two equal singular values and one half as large: p = (0.4, 0.4, 0.2).
    x = np.diag([2.0, 2.0, 1.0])
    expected = np.exp(-(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)))
    assert effective_rank(x) == pytest.approx(expected)
    assert effective_rank(np.zeros((4, 3))) == 0.0


def test_scale_free_and_row_order_free():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12)) * np.linspace(0.1, 3.0, 12)
    rank = effective_rank(x)
    assert 1.0 < rank < 12.0
    assert effective_rank(1e3 * x) == pytest.approx(rank, rel=1e-5)
    assert effective_rank(x[rng.permutation(200)]) == pytest.approx(rank, rel=1e-5)


def test_center_counts_the_directions_of_variation():
    # Rows +-e1, +-e2 around a common offset: centred, two equal singular values.
    pattern = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], np.float64)
    x = pattern + np.array([4.0, 4.0, 4.0])
    assert effective_rank(x, center=True) == pytest.approx(2.0, rel=1e-5)
    # Uncentred, the offset is a third, dominant direction (numpy's SVD as the
    # reference for the singular values).
    s = np.linalg.svd(x, compute_uv=False)
    assert effective_rank(x) == pytest.approx(entropy_rank(s), rel=1e-5)
    assert effective_rank(x) < effective_rank(x, center=True)  # the offset hides them
    # All rows equal: nothing varies.
    assert effective_rank(np.tile([1.0, 2.0], (5, 1)), center=True) == 0.0


def test_accepts_backend_tensors():
    rng = np.random.default_rng(2)
    s = np.array([4.0, 1.0, 1.0])
    x = with_singular_values(rng, s, 50, 8).astype("float32")
    rank = effective_rank(keras.ops.convert_to_tensor(x))
    assert rank == pytest.approx(entropy_rank(s), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"embeddings": np.ones(5)}, ValueError, "embeddings.shape"),
        ({"embeddings": np.ones((0, 4))}, ValueError, "num_samples >= 1"),
        ({"embeddings": np.array([[1.0, np.nan]])}, ValueError, "NaN"),
        ({"embeddings": np.array([["a", "b"]])}, TypeError, "embeddings.dtype"),
        ({"embeddings": np.eye(3), "center": "yes"}, TypeError, "center"),
        ({"embeddings": np.eye(3), "batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        effective_rank(**kwargs)
