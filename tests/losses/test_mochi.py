"""MoCHi's mix_hard_negatives: shapes, unit norms, convex mixtures of the hardest
negatives, seeding, no gradient, and use with info_nce."""

import keras
import numpy as np

from keras_contrastive import losses as L
from tests.losses.reference import normalize


def np_(x):
    return keras.ops.convert_to_numpy(x)


def _coefficients(target, u, v):
    """Least-squares (a, b, residual) with target ~ a u + b v."""
    basis = np.stack([u, v], axis=1)
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    return coef[0], coef[1], np.linalg.norm(basis @ coef - target)


def test_mixtures_of_the_hardest_negatives(rng):
    q = rng.normal(size=(4, 6))
    negs = rng.normal(size=(12, 6))
    out = np_(
        L.mix_hard_negatives(
            q, negs, num_hard=2, num_synthetic=3, num_query_mixes=2, seed=7
        )
    )
    assert out.shape == (4, 5, 6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-5)
    qn, nn = normalize(q), normalize(negs)
    for i in range(4):
        hard = np.argsort(-(nn @ qn[i]))[:2]
        n1, n2 = nn[hard[0]], nn[hard[1]]
        for h in out[
            i, :3
        ]:  # alpha n_1 + (1 - alpha) n_2, distinct pair, alpha in (0, 1)
            a, b, res = _coefficients(h, n1, n2)
            assert res < 1e-4 and a > 0 and b > 0
        for h in out[i, 3:]:  # beta q + (1 - beta) n_j with beta < 0.5
            best = min(
                (_coefficients(h, qn[i], n) for n in (n1, n2)), key=lambda t: t[2]
            )
            a_q, a_n, res = best
            assert res < 1e-4 and 0 < a_q < a_n


def test_seeding_and_no_gradient(rng):
    q, negs = rng.normal(size=(4, 6)), rng.normal(size=(12, 6))
    kwargs = dict(num_hard=4, num_synthetic=3, num_query_mixes=1)
    first = np_(L.mix_hard_negatives(q, negs, seed=3, **kwargs))
    again = np_(L.mix_hard_negatives(q, negs, seed=3, **kwargs))
    np.testing.assert_array_equal(first, again)
    generator = keras.random.SeedGenerator(5)
    a = np_(L.mix_hard_negatives(q, negs, seed=generator, **kwargs))
    b = np_(L.mix_hard_negatives(q, negs, seed=generator, **kwargs))
    assert not np.allclose(a, b)
    empty = L.mix_hard_negatives(q, negs, 2, 0, 0, seed=0)
    assert tuple(empty.shape) == (4, 0, 6)

    from tests.backend_grad import value_and_grad

    def total(x):  # "+ 0 * x" keeps x in the graph (torch refuses a detached output)
        mixed = L.mix_hard_negatives(x, negs, seed=1, **kwargs)
        return keras.ops.sum(mixed) + 0.0 * keras.ops.sum(keras.ops.cast(x, "float32"))

    _, (grad_q,) = value_and_grad(total, q)
    assert np.all(grad_q == 0)


def test_with_info_nce(rng):
    q, k = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    queue = rng.normal(size=(12, 6))
    mixed = L.mix_hard_negatives(q, queue, 4, 3, 2, seed=0)
    plain = np_(L.info_nce(q, k, negatives=queue))
    harder = np_(L.info_nce(q, k, negatives=[queue, mixed]))
    assert harder.shape == (4,) and np.all(harder > plain)
