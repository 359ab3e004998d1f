"""Values of every loss against the independent NumPy references (float64)."""

import keras
import numpy as np
import pytest

from keras_contrastive import losses as L
from tests.losses import reference as R
from tests.losses.cases import CASES, LABEL_CASES, ids, make_inputs

TOL = {"rtol": 2e-4, "atol": 2e-4}


def np_(x):
    return keras.ops.convert_to_numpy(x)


SIZES = [
    (case, n)
    for case in CASES
    for n in ((2, 4, 12) if case.kind == "pair" else (4, 12))
]


@pytest.mark.parametrize("case,n", SIZES, ids=[f"{case.name}-{n}" for case, n in SIZES])
def test_functional_and_class_match_reference(case, n, rng):
    y_true, y_pred = make_inputs(case, rng, n)
    rows = np_(case.fn(y_true, y_pred, **case.fn_kwargs))
    np.testing.assert_allclose(rows, case.rows(y_true, y_pred), **TOL)
    loss = case.cls(**case.kwargs)
    value = np_(loss(y_true, y_pred))
    assert value.shape == () and value.dtype == np.float32
    np.testing.assert_allclose(value, case.scalar(y_true, y_pred), **TOL)
    # reduction=None gives the per-anchor values of the functional form.
    none = np_(case.cls(**case.kwargs, reduction=None)(y_true, y_pred))
    np.testing.assert_allclose(none, rows, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", LABEL_CASES, ids=ids(LABEL_CASES))
def test_label_losses_larger_batches_and_many_classes(case, rng):
    for k in (2, 5, 12):
        labels, x = make_inputs(case, rng, 12, num_classes=k, scale=0.4)
        value = np_(case.cls(**case.kwargs)(labels, x))
        np.testing.assert_allclose(value, case.scalar(labels, x), **TOL)
        rows = np_(case.fn(labels, x, **case.fn_kwargs))
        np.testing.assert_allclose(rows, case.rows(labels, x), **TOL)


@pytest.mark.parametrize("margin", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("mining", ["all", "hard", "semi-hard"])
def test_triplet_mining_margins(margin, mining, rng):
    ref = {
        "all": R.triplet_all_scalar,
        "hard": R.triplet_hard_scalar,
        "semi-hard": R.triplet_semi_hard_scalar,
    }[mining]
    labels = rng.integers(0, 3, size=12)
    x = 0.6 * rng.normal(size=(12, 6))
    value = np_(L.TripletLoss(margin=margin, mining=mining)(labels, x))
    np.testing.assert_allclose(value, ref(labels, x, margin=margin), **TOL)


def test_labels_as_column_and_float(rng):
    labels = rng.integers(0, 3, size=12)
    x = rng.normal(size=(12, 6))
    expected = R.supcon_scalar(labels, x, temperature=0.1)
    loss = L.SupervisedContrastive(temperature=0.1)
    for y in (labels[:, None], labels.astype("float32"), labels.astype("int64")):
        np.testing.assert_allclose(np_(loss(y, x)), expected, **TOL)


def test_info_nce_with_queue_and_per_query_negatives(rng):
    q, k = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    queue = rng.normal(size=(12, 6))
    per_query = rng.normal(size=(4, 3, 6))
    for negs in ([queue], [per_query], [queue, per_query]):
        arg = negs[0] if len(negs) == 1 else negs
        got = np_(L.info_nce(q, k, negatives=arg, temperature=0.3))
        want = R.info_nce_rows(q, k, negs, temperature=0.3)
        np.testing.assert_allclose(got, want, **TOL)


def test_info_nce_single_query_with_queue(rng):
    # One query has no in-batch negative, but the queue supplies them.
    q, k = rng.normal(size=(1, 6)), rng.normal(size=(1, 6))
    queue = rng.normal(size=(12, 6))
    got = np_(L.info_nce(q, k, negatives=queue))
    np.testing.assert_allclose(got, R.info_nce_rows(q, k, [queue]), **TOL)


def test_triplet_margin_matches_reference(rng):
    a, p, n = (rng.normal(size=(4, 6)) for _ in range(3))
    got = np_(L.triplet_margin(a, p, n, margin=0.7))
    np.testing.assert_allclose(got, R.triplet_margin_rows(a, p, n, 0.7), **TOL)


def test_similarity_utilities(rng):
    x, y = rng.normal(size=(12, 6)), rng.normal(size=(4, 6))
    d = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
    np.testing.assert_allclose(np_(L.pairwise_distances(x, y)), d, **TOL)
    np.testing.assert_allclose(
        np_(L.pairwise_distances(x, y, squared=True)), d**2, rtol=1e-4, atol=1e-4
    )
    dx = np_(L.pairwise_distances(x))
    assert np.all(np.diag(dx) == 0)
    c = R.normalize(x) @ R.normalize(y).T
    np.testing.assert_allclose(np_(L.cosine_similarity_matrix(x, y)), c, **TOL)
    np.testing.assert_allclose(
        np_(L.cosine_similarity_matrix(x)), R.normalize(x) @ R.normalize(x).T, **TOL
    )


def test_reductions_and_sample_weight(rng):
    labels = np.array([0, 0, 1, 2])
    x = rng.normal(size=(4, 6))
    rows = R.supcon_rows(labels, x, temperature=0.1)
    valid = np.array([1, 1, 0, 0], dtype=float)
    sw = np.array([1.0, 2.0, 3.0, 1.0])
    loss = L.SupervisedContrastive(temperature=0.1)
    np.testing.assert_allclose(
        np_(loss(labels, x, sample_weight=sw)),
        np.sum(rows * valid * sw) / np.sum(valid * sw),
        **TOL,
    )
    summed = L.SupervisedContrastive(temperature=0.1, reduction="sum")
    np.testing.assert_allclose(np_(summed(labels, x)), np.sum(rows), **TOL)
    sob = L.SupervisedContrastive(temperature=0.1, reduction="sum_over_batch_size")
    np.testing.assert_allclose(np_(sob(labels, x)), np.sum(rows) / 2, **TOL)
    none = L.SupervisedContrastive(temperature=0.1, reduction="none")
    np.testing.assert_allclose(np_(none(labels, x, sample_weight=sw)), rows * sw, **TOL)


def test_ntxent_pair_sample_weight_is_tiled(rng):
    z_a, z_b = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    rows = R.nt_xent_rows(z_a, z_b, temperature=0.5)
    sw = np.array([1.0, 0.0, 2.0, 1.0])
    w = np.concatenate([sw, sw])
    got = np_(L.NTXent()(z_a, z_b, sample_weight=sw))
    np.testing.assert_allclose(got, np.sum(rows * w) / np.sum(w), **TOL)
    got = np_(L.NTXent()(z_a, z_b, sample_weight=w))
    np.testing.assert_allclose(got, np.sum(rows * w) / np.sum(w), **TOL)


def test_low_temperature_large_batch_is_finite(rng):
    z = rng.normal(size=(500, 16)).astype("float32")
    z_b = z + 0.3 * rng.normal(size=z.shape).astype("float32")
    labels = rng.integers(0, 50, size=1000)
    emb = np.concatenate([z, z_b])
    # 1,000 rows: NT-Xent's 2N, SupCon's N. (The other losses meet tau = 0.01 in
    # the property tests and below.)
    for value in (
        L.NTXent(temperature=0.01)(z, z_b),
        L.SupervisedContrastive(temperature=0.01)(labels, emb),
    ):
        assert np.isfinite(np_(value))
    # The (2N)-row NTXent at tau = 0.01 against the float64 reference.
    small_a, small_b = z[:12], z_b[:12]
    got = np_(L.nt_xent(small_a, small_b, temperature=0.01))
    want = R.nt_xent_rows(small_a, small_b, 0.01)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    far_b = z[12:24]  # unrelated partners: losses of order 1/tau
    got = np_(L.nt_xent(small_a, far_b, temperature=0.01))
    np.testing.assert_allclose(got, R.nt_xent_rows(small_a, far_b, 0.01), rtol=1e-4)
    got = np_(L.debiased_nt_xent(small_a, small_b, temperature=0.05, tau_plus=0.2))
    want = R.debiased_nt_xent_rows(small_a, small_b, 0.05, 0.2)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
