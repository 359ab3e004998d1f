"""Gradients against finite differences of the NumPy references; zero-gradient rules."""

import numpy as np
import pytest
from keras import ops

from keras_contrastive import losses as L
from tests.backend_grad import finite_difference_grad
from tests.losses import reference as R
from tests.losses._run import value_and_grad
from tests.losses.cases import (
    CASES,
    LABEL_BUILDERS,
    LABEL_CASES,
    PAIR_BUILDERS,
    hyper,
    ids,
    label_fn,
    make_inputs,
    pair_fn,
)

TOL = {"rtol": 2e-2, "atol": 2e-3}


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_gradient_matches_finite_differences(case, rng):
    y_true, y_pred = make_inputs(case, rng, 4)
    margin, temperature = hyper(case)
    if case.kind == "pair":
        _, grads = value_and_grad(
            case.name, pair_fn(case.name), (y_true, y_pred, temperature), (0, 1)
        )
        expected = finite_difference_grad(case.scalar, [y_true, y_pred], eps=1e-4)
    else:
        labels = np.array([0, 0, 1, 1]) if case.name != "ContrastiveLoss" else y_true
        _, grads = value_and_grad(
            case.name, label_fn(case.name), (labels, y_pred, margin, temperature), (1,)
        )
        expected = finite_difference_grad(
            lambda x: case.scalar(labels, x), [y_pred], eps=1e-4
        )
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, **TOL)


def test_info_nce_queue_gradient(rng):
    q, k, queue = (rng.normal(size=(n, 6)) for n in (4, 4, 12))
    _, grads = value_and_grad(
        "info_nce-queue",
        lambda a, b, c: ops.mean(L.info_nce(a, b, negatives=c, temperature=0.5)),
        (q, k, queue),
        (0, 1, 2),
    )
    want = finite_difference_grad(
        lambda a, b, c: float(np.mean(R.info_nce_rows(a, b, [c], temperature=0.5))),
        [q, k, queue],
        eps=1e-4,
    )
    for got, w in zip(grads, want):
        np.testing.assert_allclose(got, w, **TOL)


@pytest.mark.parametrize("case", LABEL_CASES, ids=ids(LABEL_CASES))
def test_no_valid_pair_gives_zero_with_zero_gradient(case, rng):
    x = rng.normal(size=(4, 6))
    margin, temperature = hyper(case)
    batches = []
    if case.name != "ContrastiveLoss":  # every pair counts for the contrastive loss
        batches.append(np.array([0, 1, 2, 3]))  # no positive pair at all
    if case.name.startswith("TripletLoss"):
        batches.append(np.array([5, 5, 5, 5]))  # positives but no negative
    for labels in batches:
        value, (grad,) = value_and_grad(
            case.name, label_fn(case.name), (labels, x, margin, temperature), (1,)
        )
        assert value == 0.0
        assert np.all(grad == 0.0)
    # A single row has no pair for any label-based loss.
    value, (grad,) = value_and_grad(
        case.name,
        label_fn(case.name),
        (np.array([1]), x[:1], margin, temperature),
        (1,),
    )
    assert value == 0.0 and np.all(grad == 0.0)


def test_zero_rows_and_duplicates_have_finite_gradients(rng):
    z = rng.normal(size=(4, 6))
    z[1] = 0.0
    z_b = z.copy()  # exact duplicates of every positive
    for name in PAIR_BUILDERS:
        value, grads = value_and_grad(name, pair_fn(name), (z, z_b, 0.1), (0, 1))
        assert np.isfinite(value), name
        assert all(np.all(np.isfinite(g)) for g in grads), name
    labels = np.array([0, 0, 1, 2])
    emb = z.copy()
    emb[3] = emb[0]  # row 3 duplicates row 0 under another label
    for name in LABEL_BUILDERS:
        value, (grad,) = value_and_grad(
            name, label_fn(name), (labels, emb, 1.0, 0.1), (1,)
        )
        assert np.isfinite(value), name
        assert np.all(np.isfinite(grad)), name
