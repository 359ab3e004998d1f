"""Barlow Twins (Zbontar et al. 2021): values against the float64 reference, both
computation routes, gradients against finite differences, closed forms and
invariances, the Loss class's plumbing, bad inputs.

The 4-device equality (global-batch statistics under `tf.distribute`) is in
tests/distribute/test_equality.py.
"""

import os
import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive import losses as L
from keras_contrastive.losses import barlow_twins
from tests.backend_grad import finite_difference_grad
from tests.losses import reference as R
from tests.losses._run import evaluate, value_and_grad

TOL = {"rtol": 2e-4, "atol": 2e-4}
# (N, D): D > 2N takes the N x N Gram route, the others the D x D route.
SHAPES = [(2, 3), (4, 16), (8, 3), (5, 11), (12, 5)]


def np_(x):
    return ops.convert_to_numpy(x)


def _views(rng, n, d):
    z_a = rng.normal(size=(n, d))
    return z_a, 0.7 * z_a + 0.5 * rng.normal(size=(n, d)) + 0.3


def _hadamard_columns():
    """(8, 7): columns 2-8 of the order-8 Sylvester Hadamard matrix: +-1 entries,
    mean 0, variance 1, pairwise orthogonal."""
    h = np.array([[1.0]])
    for _ in range(3):
        h = np.block([[h, h], [h, -h]])
    return h[:, 1:]


def _routes(z_a, z_b):
    """(default, N x N Gram route, D x D route) values."""
    return ops.stack(
        [L.barlow_twins_loss(z_a, z_b)]
        + [barlow_twins._barlow_twins(z_a, z_b, 5e-3, 1.0, gram=g) for g in (1, 0)]
    )


@pytest.mark.parametrize("n,d", SHAPES, ids=[f"N{n}-D{d}" for n, d in SHAPES])
def test_matches_reference(n, d, rng):
    z_a, z_b = _views(rng, n, d)
    want = R.barlow_twins_scalar(z_a, z_b, 5e-3)
    # Both routes (N x N Gram and D x D cross-correlation) give the reference.
    values = evaluate("barlow_twins-routes", _routes, (z_a, z_b))
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, np.full(3, want), **TOL)


def test_functional_and_class_values(rng):
    z_a, z_b = _views(rng, 6, 4)
    value = np_(L.barlow_twins_loss(z_a, z_b))
    assert value.shape == () and value.dtype == np.float32
    want = R.barlow_twins_scalar(z_a, z_b)
    np.testing.assert_allclose(value, want, **TOL)
    np.testing.assert_allclose(np_(L.BarlowTwinsLoss()(z_a, z_b)), want, **TOL)


def test_weights(rng):
    z_a, z_b = _views(rng, 6, 4)
    settings = ((0.0, 1.0), (0.0051, 1.0), (1.0, 0.024), (2.5, 3.0))

    def values(a, b):
        return ops.stack(
            [L.barlow_twins_loss(a, b, lam, scale) for lam, scale in settings]
            + [L.BarlowTwinsLoss(lam, scale)(a, b) for lam, scale in settings]
        )

    want = [R.barlow_twins_scalar(z_a, z_b, lam, scale) for lam, scale in settings]
    got = evaluate("barlow_twins-weights", values, (z_a, z_b))
    np.testing.assert_allclose(got, want + want, **TOL)


@pytest.mark.parametrize("n,d", [(4, 12), (6, 3)], ids=["gram-route", "dxd-route"])
def test_gradient_matches_finite_differences(n, d, rng):
    z_a, z_b = _views(rng, n, d)

    def fn(a, b):
        return L.BarlowTwinsLoss(redundancy_weight=0.5)(a, b)

    _, grads = value_and_grad(f"barlow_twins-{n}-{d}", fn, (z_a, z_b), (0, 1))
    want = finite_difference_grad(
        lambda a, b: R.barlow_twins_scalar(a, b, 0.5), [z_a, z_b], eps=1e-5
    )
    for got, w in zip(grads, want):
        np.testing.assert_allclose(got, w, rtol=2e-2, atol=2e-3)


def test_closed_forms():
    h = _hadamard_columns()
    d = h.shape[1]
    shrink = 1.0 / np.sqrt(1.0 + 1e-5)  # standardised entries are +-shrink
    # One feature repeated 5 times: C = shrink^2 (all ones), off-diagonal 5 * 4.
    same = np.repeat(h[:, :1], 5, axis=1)

    def values(h, same):
        return ops.stack(
            [
                L.barlow_twins_loss(h, h),
                L.barlow_twins_loss(h, -h),
                L.barlow_twins_loss(same, same, redundancy_weight=0.1),
            ]
        )

    identical, opposite, repeated = evaluate("barlow_twins-closed", values, (h, same))
    # Identical views, uncorrelated features: C = shrink^2 I, loss ~ 0.
    np.testing.assert_allclose(identical, d * (1 - shrink**2) ** 2, atol=1e-6)
    # Opposite views: C = -shrink^2 I, every diagonal term (1 + 1)^2.
    np.testing.assert_allclose(opposite, d * (1 + shrink**2) ** 2, rtol=1e-5)
    np.testing.assert_allclose(repeated, 0.1 * 5 * 4 * shrink**4, rtol=1e-5)


def test_invariances(rng):
    z_a, z_b = _views(rng, 8, 5)
    rows, cols = rng.permutation(8), rng.permutation(5)
    scale, shift = rng.uniform(0.5, 3.0, size=5), rng.normal(size=5)
    variants = [
        (z_a, z_b),
        (z_a[rows], z_b[rows]),  # the same row order in both views
        (z_a[:, cols], z_b[:, cols]),  # the same feature order in both views
        # A positive scale and a shift per feature, standardised away (up to the
        # epsilon, negligible at these scales).
        (z_a * scale + shift, z_b),
        (z_b, z_a),  # swapping the views transposes C
    ]
    got = evaluate(
        "barlow_twins-invariances",
        lambda *zs: ops.stack(
            [L.barlow_twins_loss(a, b) for a, b in zip(zs[::2], zs[1::2])]
        ),
        [z for pair in variants for z in pair],
    )
    np.testing.assert_allclose(got, np.full(5, got[0]), rtol=1e-4)
    np.testing.assert_allclose(got[0], R.barlow_twins_scalar(z_a, z_b), **TOL)


def test_constant_feature_and_low_precision_stay_finite(rng):
    z_a, z_b = _views(rng, 6, 4)
    z_a[:, 1] = 3.0  # zero variance: standardised to 0, C_11 = 0
    value, grads = value_and_grad(
        "barlow_twins-constant", L.barlow_twins_loss, (z_a, z_b), (0, 1)
    )
    np.testing.assert_allclose(value, R.barlow_twins_scalar(z_a, z_b), rtol=1e-4)
    assert all(np.all(np.isfinite(g)) for g in grads)
    low = L.barlow_twins_loss(ops.cast(z_a, "float16"), ops.cast(z_b, "bfloat16"))
    assert keras.backend.standardize_dtype(low.dtype) == "float32"
    want = R.barlow_twins_scalar(
        np_(ops.cast(ops.cast(z_a, "float16"), "float32")),
        np_(ops.cast(ops.cast(z_b, "bfloat16"), "float32")),
    )
    np.testing.assert_allclose(np_(low), want, rtol=1e-4)


def test_every_reduction_gives_the_batch_loss(rng):
    z_a, z_b = _views(rng, 6, 4)  # the shape above: eager JAX reuses its kernels
    want = R.barlow_twins_scalar(z_a, z_b)
    for reduction in ("mean", "sum", "sum_over_batch_size", None, "none"):
        got = np_(L.BarlowTwinsLoss(reduction=reduction)(z_a, z_b))
        assert got.shape == ()
        np.testing.assert_allclose(got, want, **TOL)


def test_get_config_round_trip(rng):
    loss = L.BarlowTwinsLoss(redundancy_weight=0.0051, scale_loss=0.5, name="bt")
    config = loss.get_config()
    assert config["redundancy_weight"] == 0.0051 and config["scale_loss"] == 0.5
    assert L.BarlowTwinsLoss.from_config(config).get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is L.BarlowTwinsLoss
    assert restored.get_config() == config
    z_a, z_b = _views(rng, 6, 4)
    np.testing.assert_allclose(np_(restored(z_a, z_b)), np_(loss(z_a, z_b)))


def test_compile_fit_save_load(rng, tmp_path):
    x = rng.normal(size=(16, 5)).astype("float32")
    target = rng.normal(size=(16, 3)).astype("float32")  # the other view
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=L.BarlowTwinsLoss())
    history = model.fit(x, target, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is L.BarlowTwinsLoss
    out = loaded(x[:8])
    np.testing.assert_allclose(
        np_(loaded.loss(target[:8], out)),
        R.barlow_twins_scalar(target[:8], np_(out)),
        **TOL,
    )


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (
            {"redundancy_weight": -0.1},
            ValueError,
            "`redundancy_weight` must be a number in [0, inf). "
            "Received: redundancy_weight=-0.1",
        ),
        (
            {"redundancy_weight": "5e-3"},
            TypeError,
            "`redundancy_weight` must be a number in [0, inf)",
        ),
        (
            {"scale_loss": 0.0},
            ValueError,
            "`scale_loss` must be a positive number. Received: scale_loss=0.0",
        ),
        (
            {"scale_loss": float("inf")},
            ValueError,
            "`scale_loss` must be a positive number. Received: scale_loss=inf",
        ),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        L.BarlowTwinsLoss(**kwargs)
    with pytest.raises(error, match=re.escape(message)):
        L.barlow_twins_loss(np.ones((3, 2)), np.ones((3, 2)), **kwargs)


def test_bad_inputs():
    loss = L.BarlowTwinsLoss()
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`z_a` and `z_b` must have the same shape. "
            "Received: z_a.shape=(4, 3), z_b.shape=(4, 2)"
        ),
    ):
        loss(np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match=re.escape("`z_a` and `z_b` must have the")):
        L.barlow_twins_loss(np.ones((4, 3)), np.ones((5, 3)))
    with pytest.raises(
        ValueError, match=re.escape("`z_a` must have rank 2. Received: z_a.shape=(4,)")
    ):
        L.barlow_twins_loss(np.ones((4,)), np.ones((4,)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`z_a` must have at least 2 rows (the batch's standard deviation is "
            "needed). Received: z_a.shape=(1, 3)"
        ),
    ):
        loss(np.ones((1, 3)), np.ones((1, 3)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`sample_weight` must be None for BarlowTwinsLoss (a batch-level loss "
            "has no per-sample terms to weight). Received: sample_weight.shape=(4,)"
        ),
    ):
        loss(np.ones((4, 3)), np.ones((4, 3)), sample_weight=np.ones(4))
