"""Streaming (row-blocked) NT-Xent, InfoNCE and symmetric InfoNCE are exact.

With `block_size` set, the losses never hold the (N, N) logits: each block of
query rows is reduced to its log-sum-exp, and the backward pass recomputes the
block's logits or reuses the forward pass's softmax products
(losses/_streaming.py). Value and gradient must equal an
independent float64 NumPy reference (gradients by central differences) and the
dense path within 1e-5, for batch sizes that are not a multiple of the block, for
any temperature, with extra negatives (MoCo's queue, the multiple negatives
ranking loss's hard negatives, per-query negatives), and inside the context the
gradient cache uses.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.losses import (
    InfoNCE,
    NTXent,
    SymmetricInfoNCE,
    info_nce,
    nt_xent,
    symmetric_info_nce,
)
from keras_contrastive.losses._streaming import (
    default_block_size,
    resolve_block_size,
)
from tests.backend_grad import finite_difference_grad
from tests.backend_grad import value_and_grad as eager_value_and_grad

ATOL = 1e-5


def value_and_grad(fn, *arrays):
    """(value, grads) as NumPy; jitted on JAX, whose eager mode would compile
    every primitive for each shape (most of this file's time)."""
    if keras.backend.backend() != "jax":
        return eager_value_and_grad(fn, *arrays)
    import jax

    step = jax.jit(jax.value_and_grad(fn, argnums=tuple(range(len(arrays)))))
    value, grads = step(*arrays)
    return float(value), [np.asarray(g) for g in grads]


# ----------------------------------------------------------------- NumPy reference


def _normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)


def _lse(s):
    m = s.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(s - m).sum(axis=-1, keepdims=True)))[..., 0]


def ref_nt_xent(z_a, z_b, tau):
    z = _normalize(np.concatenate([z_a, z_b]))
    n = len(z_a)
    s = z @ z.T / tau
    np.fill_diagonal(s, -np.inf)
    twin = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    return _lse(s) - s[np.arange(2 * n), twin]


def ref_info_nce(q, k, tau, shared=(), per_query=()):
    q, k = _normalize(q), _normalize(k)
    s = [q @ k.T / tau] + [q @ _normalize(m).T / tau for m in shared]
    s += [np.einsum("nd,nkd->nk", q, _normalize(m)) / tau for m in per_query]
    return _lse(np.concatenate(s, axis=1)) - np.sum(q * k, axis=1) / tau


def ref_symmetric(a, b, tau):
    s = _normalize(a) @ _normalize(b).T / tau
    return 0.5 * (_lse(s) + _lse(s.T)) - np.diag(s)


def check(loss_fn, ref_fn, arrays, block_size, rows):
    """The plain and the weighted sum of the per-row values: streaming =
    reference = dense. The plain sum gives every row's log-sum-exp the same
    upstream gradient (the backward pass's shortcut); weights give each its own
    (the path that recomputes the softmax)."""
    for weights in (np.ones(rows), np.random.default_rng(7).uniform(0.5, 1.5, rows)):
        check_weighted(loss_fn, ref_fn, arrays, block_size, weights)


def check_weighted(loss_fn, ref_fn, arrays, block_size, weights):
    def weighted(block):
        return lambda *ts: ops.sum(
            loss_fn(*ts, block_size=block) * ops.convert_to_tensor(weights, "float32")
        )

    value, grads = value_and_grad(weighted(block_size), *arrays)
    dense_value, dense_grads = value_and_grad(weighted(None), *arrays)

    def ref(*xs):
        return float(np.sum(ref_fn(*xs) * weights))

    assert value == pytest.approx(ref(*arrays), abs=ATOL, rel=ATOL)
    assert value == pytest.approx(dense_value, abs=ATOL, rel=ATOL)
    for g, r, d in zip(
        grads, finite_difference_grad(ref, arrays, eps=1e-5), dense_grads
    ):
        np.testing.assert_allclose(g, r, atol=ATOL, rtol=ATOL)
        np.testing.assert_allclose(g, d, atol=ATOL)


def pair(rows, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    z_a = rng.normal(size=(rows, dim)).astype("float32")
    z_b = (z_a + 0.5 * rng.normal(size=(rows, dim))).astype("float32")
    return z_a, z_b


# ------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "rows, block_size, tau", [(5, 3, 0.5), (7, 4, 0.1), (3, 64, 1.0)]
)
def test_nt_xent(rows, block_size, tau):
    # 2N = 10 rows in blocks of 3, 14 in 4: the last block is short.
    check(
        lambda a, b, block_size: nt_xent(a, b, tau, block_size=block_size),
        lambda a, b: ref_nt_xent(a, b, tau),
        pair(rows),
        block_size,
        2 * rows,
    )


@pytest.mark.parametrize("rows, block_size, tau", [(6, 4, 0.07)])
def test_info_nce(rows, block_size, tau):
    check(
        lambda q, k, block_size: info_nce(q, k, temperature=tau, block_size=block_size),
        lambda q, k: ref_info_nce(q, k, tau),
        pair(rows),
        block_size,
        rows,
    )


def test_info_nce_with_a_queue_and_per_query_negatives():
    rows, tau = 5, 0.2
    rng = np.random.default_rng(3)
    queue = rng.normal(size=(9, 6)).astype("float32")
    per_query = rng.normal(size=(rows, 2, 6)).astype("float32")
    z_a, z_b = pair(rows)
    check(
        lambda q, k, m, p, block_size: info_nce(
            q, k, negatives=[m, p], temperature=tau, block_size=block_size
        ),
        lambda q, k, m, p: ref_info_nce(q, k, tau, shared=[m], per_query=[p]),
        (z_a, z_b, queue, per_query),
        2,
        rows,
    )


def test_a_queue_without_gradient():
    # MoCo's queue is a constant: the loss's gradient reaches query and key only.
    rows, tau = 5, 0.2
    queue = np.random.default_rng(4).normal(size=(9, 6)).astype("float32")
    check(
        lambda q, k, block_size: info_nce(
            q,
            k,
            negatives=ops.convert_to_tensor(queue),
            temperature=tau,
            block_size=block_size,
        ),
        lambda q, k: ref_info_nce(q, k, tau, shared=[queue]),
        pair(rows),
        2,
        rows,
    )


def test_multiple_negatives_ranking_loss():
    # SBERT's objective: anchors against every positive and every hard negative
    # of the batch (one hard negative per row), temperature 0.05 (scale 20).
    rows, tau = 7, 0.05
    anchors, positives = pair(rows, seed=1)
    hard = pair(rows, seed=2)[0]
    check(
        lambda a, p, h, block_size: info_nce(
            a, p, negatives=h, temperature=tau, block_size=block_size
        ),
        lambda a, p, h: ref_info_nce(a, p, tau, shared=[h]),
        (anchors, positives, hard),
        3,
        rows,
    )


@pytest.mark.parametrize("rows, block_size", [(5, 2)])
def test_symmetric_info_nce(rows, block_size):
    check(
        lambda a, b, block_size: symmetric_info_nce(a, b, 0.1, block_size=block_size),
        lambda a, b: ref_symmetric(a, b, 0.1),
        pair(rows),
        block_size,
        rows,
    )


def test_a_tensor_temperature_gets_its_gradient():
    # CLIP's learnable scale: the temperature is a tensor the loss divides by.
    z_a, z_b = pair(5)
    tau = np.array(0.2, "float32")
    streamed = value_and_grad(
        lambda a, b, t: ops.mean(symmetric_info_nce(a, b, t, block_size=3)),
        z_a,
        z_b,
        tau,
    )
    dense = value_and_grad(
        lambda a, b, t: ops.mean(symmetric_info_nce(a, b, t)), z_a, z_b, tau
    )
    assert streamed[0] == pytest.approx(dense[0], abs=ATOL)
    for g, d in zip(streamed[1], dense[1]):
        np.testing.assert_allclose(g, d, atol=ATOL)


def test_loss_classes():
    z_a, z_b = pair(5)
    streamed = NTXent(block_size=2)
    assert float(streamed(z_a, z_b)) == pytest.approx(
        float(NTXent()(z_a, z_b)), abs=ATOL
    )
    for cls in (NTXent, InfoNCE, SymmetricInfoNCE):
        config = cls(block_size=2).get_config()
        assert config["block_size"] == 2
        assert cls.from_config(config).block_size == 2
        assert cls().block_size is None


def test_default_block_size_streams_only_larger_batches():
    z_a, z_b = pair(5)
    dense = ops.convert_to_numpy(nt_xent(z_a, z_b))
    for block in (3, 10, 64):  # 10 rows: streamed in blocks of 3, dense otherwise
        with default_block_size(block):
            value = ops.convert_to_numpy(nt_xent(z_a, z_b))
        np.testing.assert_allclose(value, dense, atol=ATOL)
    with default_block_size(2):
        inner = ops.convert_to_numpy(info_nce(z_a, z_b, block_size=None))
    np.testing.assert_allclose(
        inner, ops.convert_to_numpy(info_nce(z_a, z_b)), atol=ATOL
    )


def test_the_context_streams_above_its_thresholds():
    z = np.zeros((5, 3), "float32")  # 10 NT-Xent rows
    assert resolve_block_size(None, z, 2) is None
    assert resolve_block_size(4, z, 2) == 4  # an explicit block_size always wins
    with default_block_size(4):
        assert resolve_block_size(None, z, 2) == 4
        assert resolve_block_size(None, z, 1) == 4
        assert resolve_block_size(2, z, 2) == 2
    with default_block_size(4, min_rows=10):
        assert resolve_block_size(None, z, 2) is None
    with default_block_size(10):
        assert resolve_block_size(None, z, 2) is None
    assert resolve_block_size(None, z, 2) is None  # restored on exit


def test_nan_input_gives_nan():
    z_a, z_b = pair(5)
    z_a[2, 1] = np.nan
    for fn in (nt_xent, info_nce, symmetric_info_nce):
        assert np.all(np.isnan(ops.convert_to_numpy(fn(z_a, z_b, block_size=2))))


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_block_size_is_a_value_error(bad):
    z_a, z_b = pair(4)
    for call in (
        lambda: nt_xent(z_a, z_b, block_size=bad),
        lambda: info_nce(z_a, z_b, block_size=bad),
        lambda: symmetric_info_nce(z_a, z_b, block_size=bad),
        lambda: NTXent(block_size=bad),
        lambda: default_block_size(bad).__enter__(),
    ):
        with pytest.raises(ValueError, match="block_size"):
            call()


@pytest.mark.parametrize("bad", [2.5, "4", True])
def test_block_size_of_another_type_is_a_type_error(bad):
    z_a, z_b = pair(4)
    with pytest.raises(TypeError, match="block_size"):
        nt_xent(z_a, z_b, block_size=bad)
