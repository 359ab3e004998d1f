"""SigLIP (Zhai et al. 2023): what the shared loss tests (cases.py) do not cover.

Learnable scale and bias tensors (values and gradients against finite differences
of the float64 reference), the paper's initialisation as defaults, closed forms,
bad inputs. Values, per-anchor rows, the Keras plumbing and finite-ness properties
are tested with every other loss through `tests/losses/cases.py`.
"""

import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive import losses as L
from tests.backend_grad import finite_difference_grad
from tests.losses import reference as R
from tests.losses._run import value_and_grad

TOL = {"rtol": 2e-4, "atol": 2e-4}


def np_(x):
    return ops.convert_to_numpy(x)


def _views(rng, n=4, d=6):
    x = rng.normal(size=(n, d))
    return x, x + 0.8 * rng.normal(size=(n, d))


def test_defaults_are_the_papers_initialisation(rng):
    x, y = _views(rng)
    loss = L.SigLIPLoss()
    assert (loss.logit_scale, loss.logit_bias) == (10.0, -10.0)
    np.testing.assert_allclose(np_(loss(x, y)), R.siglip_scalar(x, y), **TOL)
    np.testing.assert_allclose(np_(L.siglip_loss(x, y)), R.siglip_rows(x, y), **TOL)


def test_mean_over_anchors_is_the_papers_normalisation(rng):
    # Algorithm 1: l = -sum(log_sigmoid(labels * logits)) / n.
    x, y = _views(rng)
    rows = np_(L.siglip_loss(x, y, logit_scale=3.0, logit_bias=-1.0))
    want = R.siglip_scalar(x, y, 3.0, -1.0)
    np.testing.assert_allclose(rows.mean(), want, **TOL)
    summed = L.SigLIPLoss(3.0, -1.0, reduction="sum")(x, y)
    np.testing.assert_allclose(np_(summed), want * 4, **TOL)


def test_orthonormal_pairs_closed_form():
    # Orthonormal rows, x = y: positive logit t + b, negative logits b. (The
    # shape of the other tests: eager JAX reuses its compiled kernels.)
    eye = np.eye(4, 6)
    t, b = 4.0, -2.0
    want = np.logaddexp(0, -(t + b)) + 3 * np.logaddexp(0, b)
    rows = np_(L.siglip_loss(eye, eye, logit_scale=t, logit_bias=b))
    np.testing.assert_allclose(rows, np.full(4, want), rtol=1e-6)


def test_extreme_logits_are_finite_and_accurate(rng):
    x, y = _views(rng)
    for t, b in ((1e3, -10.0), (1e3, 500.0), (1e-3, -50.0)):
        got = np_(L.siglip_loss(x, y, logit_scale=t, logit_bias=b))
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, R.siglip_rows(x, y, t, b), rtol=1e-4)


def test_gradients_wrt_inputs_scale_and_bias(rng):
    x, y = _views(rng)
    t, b = np.float64(7.0), np.float64(-3.0)

    def fn(x, y, t, b):
        return ops.mean(L.siglip_loss(x, y, logit_scale=t, logit_bias=b))

    value, grads = value_and_grad("siglip-scale-bias", fn, (x, y, t, b), (0, 1, 2, 3))
    np.testing.assert_allclose(value, R.siglip_scalar(x, y, t, b), **TOL)
    want = finite_difference_grad(
        lambda x, y, t, b: R.siglip_scalar(x, y, float(t), float(b)),
        [x, y, t, b],
        eps=1e-4,
    )
    for got, w in zip(grads, want):
        np.testing.assert_allclose(got, w, rtol=2e-2, atol=2e-3)


def test_learnable_log_scale_variable(rng):
    # A CLIP-style model: t = exp(t'), t' = log 10, b = -10, as Keras variables.
    x, y = _views(rng)
    log_scale = keras.Variable(np.log(10.0), dtype="float32")
    bias = keras.Variable([-10.0], dtype="float32")  # one value, shape (1,)
    got = L.siglip_loss(x, y, logit_scale=ops.exp(log_scale), logit_bias=bias)
    np.testing.assert_allclose(np_(got), R.siglip_rows(x, y), **TOL)
    scale = keras.Variable(10.0, dtype="float32")
    loss = L.SigLIPLoss(logit_scale=scale, logit_bias=bias)
    np.testing.assert_allclose(np_(loss(x, y)), R.siglip_scalar(x, y), **TOL)
    scale.assign(3.0)  # the class reads its variables at every call
    bias.assign([-4.0])
    np.testing.assert_allclose(
        np_(loss(x, y)), R.siglip_scalar(x, y, 3.0, -4.0), rtol=1e-4
    )
    config = loss.get_config()  # variables recorded as their current values
    assert (config["logit_scale"], config["logit_bias"]) == (3.0, -4.0)
    assert L.SigLIPLoss.from_config(config).get_config() == config


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (
            {"logit_scale": 0.0},
            ValueError,
            "`logit_scale` must be a positive number. Received: logit_scale=0.0",
        ),
        (
            {"logit_scale": -1},
            ValueError,
            "`logit_scale` must be a positive number. Received: logit_scale=-1",
        ),
        (
            {"logit_scale": "10"},
            TypeError,
            "`logit_scale` must be a positive number. Received: logit_scale='10'",
        ),
        (
            {"logit_bias": float("nan")},
            ValueError,
            "`logit_bias` must be a finite number. Received: logit_bias=nan",
        ),
        (
            {"logit_bias": None},
            TypeError,
            "`logit_bias` must be a finite number. Received: logit_bias=None",
        ),
        (
            {"logit_scale": np.ones(3, "float32")},
            ValueError,
            "`logit_scale` must be a number or a tensor with one value. "
            "Received: logit_scale.shape=(3,)",
        ),
    ],
)
def test_bad_scale_and_bias(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        L.SigLIPLoss(**kwargs)
    with pytest.raises(error, match=re.escape(message)):
        L.siglip_loss(np.ones((3, 2)), np.ones((3, 2)), **kwargs)


def test_bad_embeddings():
    loss = L.SigLIPLoss()
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`x` and `y` must have the same shape. "
            "Received: x.shape=(4, 3), y.shape=(5, 3)"
        ),
    ):
        loss(np.ones((4, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match=re.escape("`x` and `y` must have the same")):
        L.siglip_loss(np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(
        ValueError, match=re.escape("`y` must have rank 2. Received: y.shape=(4,)")
    ):
        L.siglip_loss(np.ones((4, 3)), np.ones((4,)))


def test_one_pair_has_only_its_positive():
    x = np.array([[1.0, 0.0]])
    got = np_(L.siglip_loss(x, x, logit_scale=2.0, logit_bias=1.0))
    np.testing.assert_allclose(got, [np.logaddexp(0.0, -3.0)], rtol=1e-6)
