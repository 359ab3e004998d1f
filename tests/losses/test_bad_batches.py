"""A bad batch never hides in a loss: NaN policy, sample weights, labels, bounds.

- A NaN (or inf) anywhere in an embedding gives a NaN loss, for every public loss,
  functional and class, whatever masks the loss applies (no valid pair, hard
  mining, ...).
- `sample_weight` NaN, inf or negative is a ValueError when visible in Python, and
  a NaN loss inside a compiled step; all-zero weights give 0 with zero gradients.
- Labels are integer class ids: fractional floats and strings are a ValueError on
  every backend (NaN inside a compiled step), whole-number floats are accepted.
- Finite inputs of any magnitude give finite losses; Python-number
  hyper-parameters outside the ranges that keep logits finite are a ValueError.
"""

import keras
import numpy as np
import pytest

from keras_contrastive import losses as L
from keras_contrastive.losses import base as loss_base
from tests.backend_grad import value_and_grad

BACKEND = keras.backend.backend()
N, D = 6, 4
LABELS = np.array([0, 0, 1, 1, 2, 2])


def _pair_inputs(rng):
    z_a = rng.normal(size=(N, D)).astype("float32")
    return z_a, (z_a + 0.3 * rng.normal(size=(N, D))).astype("float32")


# Every public loss: name -> (call(first, second) -> values, kind). "pair" losses
# take two (N, D) embeddings, "label" losses (labels, embeddings).
LOSSES = {
    "info_nce": (lambda a, b: L.info_nce(a, b), "pair"),
    "info_nce+queue": (
        lambda a, b: L.info_nce(a, b, negatives=np.ones((5, D), "float32")),
        "pair",
    ),
    "nt_xent": (L.nt_xent, "pair"),
    "symmetric_info_nce": (L.symmetric_info_nce, "pair"),
    "binary_nce": (L.binary_nce, "pair"),
    "debiased_nt_xent": (L.debiased_nt_xent, "pair"),
    "byol_loss": (L.byol_loss, "pair"),
    "siglip_loss": (L.siglip_loss, "pair"),
    "barlow_twins_loss": (L.barlow_twins_loss, "pair"),
    "triplet_margin": (lambda a, b: L.triplet_margin(a, b, -b), "pair"),
    "InfoNCE": (L.InfoNCE(), "pair"),
    "NTXent": (L.NTXent(), "pair"),
    "SymmetricInfoNCE": (L.SymmetricInfoNCE(), "pair"),
    "BinaryNCE": (L.BinaryNCE(), "pair"),
    "DebiasedNTXent": (L.DebiasedNTXent(), "pair"),
    "BYOLLoss": (L.BYOLLoss(), "pair"),
    "SigLIPLoss": (L.SigLIPLoss(), "pair"),
    "BarlowTwinsLoss": (L.BarlowTwinsLoss(), "pair"),
    "contrastive_loss": (L.contrastive_loss, "label"),
    "triplet_loss": (L.triplet_loss, "label"),
    "triplet_loss-hard": (lambda y, x: L.triplet_loss(y, x, mining="hard"), "label"),
    "triplet_loss-semi-hard": (
        lambda y, x: L.triplet_loss(y, x, mining="semi-hard"),
        "label",
    ),
    "lifted_structure_loss": (L.lifted_structure_loss, "label"),
    "supervised_contrastive": (L.supervised_contrastive, "label"),
    "ContrastiveLoss": (L.ContrastiveLoss(), "label"),
    "TripletLoss": (L.TripletLoss(), "label"),
    "TripletLoss-hard": (L.TripletLoss(mining="hard"), "label"),
    "TripletLoss-semi-hard": (L.TripletLoss(mining="semi-hard"), "label"),
    "LiftedStructureLoss": (L.LiftedStructureLoss(), "label"),
    "SupervisedContrastive": (L.SupervisedContrastive(), "label"),
}
# Public names of `keras_contrastive.losses` that are not losses.
NOT_LOSSES = {
    "mix_hard_negatives",
    "pairwise_distances",
    "cosine_similarity_matrix",
    "ContrastiveLossBase",
}


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def test_every_public_loss_is_covered():
    covered = {name.split("+")[0].split("-")[0] for name in LOSSES}
    assert set(L.__all__) - NOT_LOSSES == covered


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("where", ["first", "second", "inf"])
def test_nan_in_an_embedding_gives_nan(name, where):
    loss, kind = LOSSES[name]
    rng = np.random.default_rng(0)
    z_a, z_b = _pair_inputs(rng)
    if kind == "label" and where == "first":
        # All labels distinct: no valid pair or triplet, every weight 0. The
        # losses used to return exactly 0 here whatever the embeddings held.
        args = [np.arange(N), z_b]
        bad = 1
    else:
        args = [LABELS, z_b] if kind == "label" else [z_a, z_b]
        bad = 0 if where == "first" else 1
    args[bad] = args[bad].copy()
    args[bad][2, 1] = np.inf if where == "inf" else np.nan
    values = _numpy(loss(*args))
    assert np.all(np.isnan(values)), (name, values)
    # ... and the same inputs without the NaN give a finite loss.
    args[bad][2, 1] = 0.5
    assert np.all(np.isfinite(_numpy(loss(*args)))), name


def test_nan_in_info_nce_negatives_gives_nan():
    rng = np.random.default_rng(0)
    z_a, z_b = _pair_inputs(rng)
    queue = rng.normal(size=(5, D)).astype("float32")
    queue[3, 0] = np.nan
    assert np.all(np.isnan(_numpy(L.info_nce(z_a, z_b, negatives=queue))))
    per_query = rng.normal(size=(N, 3, D)).astype("float32")
    per_query[0, 1, 2] = np.nan
    assert np.all(np.isnan(_numpy(L.info_nce(z_a, z_b, negatives=[per_query]))))


def test_lifted_structure_nan_gradient_is_not_a_finite_loss():
    # The probe that found it: one NaN embedding gave a finite loss (7.41 there)
    # with a NaN gradient.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 3)).astype("float32")
    x[5, 0] = np.nan
    value = float(_numpy(L.LiftedStructureLoss()(np.arange(8) % 3, x)))
    assert np.isnan(value)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_huge_finite_inputs_give_finite_losses(name):
    loss, kind = LOSSES[name]
    rng = np.random.default_rng(1)
    z_a, z_b = _pair_inputs(rng)
    for scale in (1e18, 1e30, 3e38 / 4):
        a, b = (z / np.abs(z).max() * scale for z in (z_a, z_b))
        args = (LABELS, b) if kind == "label" else (a, b)
        values = _numpy(loss(*args))
        assert np.all(np.isfinite(values)), (name, scale, values)


def test_huge_inputs_keep_their_direction_and_cap_distances():
    rng = np.random.default_rng(2)
    z_a, z_b = _pair_inputs(rng)
    want = _numpy(L.nt_xent(z_a, z_b))
    np.testing.assert_allclose(_numpy(L.nt_xent(z_a * 1e25, z_b * 1e25)), want, 1e-5)
    x = rng.normal(size=(N, D))
    d2 = _numpy(L.pairwise_distances(x * 1e20, squared=True))
    np.testing.assert_array_equal(d2, 1e30 * (1.0 - np.eye(N)).astype("float32"))
    # Below 1e15 nothing is rescaled: the same numbers as before.
    np.testing.assert_allclose(
        _numpy(L.triplet_margin(x * 1e8, x * 1e8 + 2e7, x * 1e8 - 1e7, 0.0)),
        D * 3e14,
        rtol=1e-4,
    )


def test_pairwise_distances_keep_nan():
    x = np.ones((3, 2))
    x[1, 0] = np.nan
    d = _numpy(L.pairwise_distances(x))
    assert np.all(np.isnan(d[1])) and np.all(np.isnan(d[:, 1]))
    assert d[0, 2] == 0.0


# ----------------------------------------------------------------------------------
# Sample weights

WEIGHTED = [L.NTXent, L.InfoNCE, L.SupervisedContrastive, L.TripletLoss]


def _weighted_inputs(cls, rng):
    z_a, z_b = _pair_inputs(rng)
    if cls in (L.SupervisedContrastive, L.TripletLoss):
        return LABELS, z_b
    return z_a, z_b


@pytest.mark.parametrize("cls", WEIGHTED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0, -np.inf])
def test_bad_sample_weight_is_a_value_error(cls, bad):
    args = _weighted_inputs(cls, np.random.default_rng(0))
    weights = np.ones(N)
    weights[1] = bad
    with pytest.raises(ValueError, match=r"`sample_weight` must be finite and >= 0"):
        cls()(*args, sample_weight=weights)
    # An eager backend tensor is visible in Python too.
    with pytest.raises(ValueError, match=r"`sample_weight` must be finite and >= 0"):
        cls()(*args, sample_weight=keras.ops.convert_to_tensor(weights))
    with pytest.raises(ValueError, match=r"`sample_weight` must be finite"):
        cls(reduction="sum")(*args, sample_weight=weights)


def test_sample_weight_of_strings_is_a_type_error():
    z = np.ones((N, D))
    with pytest.raises(TypeError, match=r"`sample_weight` must be numbers"):
        L.NTXent()(z, z, sample_weight=np.array(["a"] * N))


def _traced(fn, *args):
    """`fn(*args)` where the arguments are not visible in Python: compiled on JAX
    and TensorFlow; on PyTorch (eager) as on an accelerator, where the loss does
    not copy values to the host."""
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.jit(fn)(*args), np.float64)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)(*[tf.constant(a) for a in args]).numpy()
    import torch

    return _numpy(fn(*[torch.tensor(a) for a in args]))


def _not_on_host(monkeypatch):
    """Make every value look like it lives on an accelerator (no host check)."""
    monkeypatch.setattr(loss_base, "host_value", lambda x, device_copy=True: None)
    from keras_contrastive.losses import _common

    monkeypatch.setattr(_common, "host_value", lambda x, device_copy=True: None)


@pytest.mark.parametrize("cls", WEIGHTED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", None])
def test_bad_sample_weight_in_a_compiled_step_gives_nan(
    cls, bad, reduction, monkeypatch
):
    y_true, y_pred = _weighted_inputs(cls, np.random.default_rng(0))
    weights = np.ones(N, "float32")
    weights[1] = bad
    if BACKEND == "torch":
        _not_on_host(monkeypatch)
    loss = cls(reduction=reduction)
    value = _traced(lambda w: loss(y_true, y_pred, sample_weight=w), weights)
    assert np.all(np.isnan(value)), value
    good = _traced(lambda w: loss(y_true, y_pred, sample_weight=w), np.ones(N, "f"))
    assert np.all(np.isfinite(good))


@pytest.mark.parametrize("cls", WEIGHTED, ids=lambda c: c.__name__)
def test_all_zero_sample_weights_give_zero_with_zero_gradients(cls):
    y_true, y_pred = _weighted_inputs(cls, np.random.default_rng(0))
    loss = cls()
    weights = np.zeros(N, "float32")
    value, (grad,) = value_and_grad(
        lambda e: loss(y_true, e, sample_weight=weights), y_pred.astype("f")
    )
    assert value == 0.0
    assert np.all(grad == 0.0)
    # ... but a NaN embedding still gives NaN with zero weights.
    bad = y_pred.copy()
    bad[0, 0] = np.nan
    assert np.isnan(float(_numpy(loss(y_true, bad, sample_weight=weights))))


# ----------------------------------------------------------------------------------
# Labels

LABEL_LOSSES = [
    L.ContrastiveLoss(),
    L.TripletLoss(),
    L.TripletLoss(mining="hard"),
    L.TripletLoss(mining="semi-hard"),
    L.LiftedStructureLoss(),
    L.SupervisedContrastive(),
    L.contrastive_loss,
    L.triplet_loss,
    L.lifted_structure_loss,
    L.supervised_contrastive,
]


def _label_id(loss):
    if isinstance(loss, keras.losses.Loss):
        return type(loss).__name__ + getattr(loss, "mining", "").replace("all", "")
    return loss.__name__


@pytest.mark.parametrize("loss", LABEL_LOSSES, ids=_label_id)
def test_fractional_float_labels_are_a_value_error(loss):
    x = np.random.default_rng(0).normal(size=(N, D)).astype("float32")
    fractional = np.array([0.5, 0.5, 1.2, 1.7, 2.1, 2.9])
    message = r"`labels` must be integer class ids \(whole numbers\)\. Received: "
    with pytest.raises(ValueError, match=message + r"labels=an array holding 0\.5"):
        loss(fractional, x)
    with pytest.raises(ValueError, match=message):
        loss(keras.ops.convert_to_tensor(fractional.astype("float32")), x)
    with pytest.raises(ValueError, match=message):
        loss(np.array([0.0, np.nan, 1.0, 1.0, 2.0, 2.0]), x)


@pytest.mark.parametrize("loss", LABEL_LOSSES, ids=_label_id)
def test_string_and_other_labels_are_a_value_error(loss):
    x = np.random.default_rng(0).normal(size=(N, D)).astype("float32")
    for labels in (
        np.array(list("aabbcc")),
        list("aabbcc"),
        np.array([b"a", b"a", b"b", b"b", b"c", b"c"]),
        np.array([True, True, False, False, True, False]),
        np.array([0, 0, 1, 1, 2, 2], dtype=object),
    ):
        with pytest.raises(ValueError, match=r"`labels` must be integer class ids"):
            loss(labels, x)
    with pytest.raises(ValueError, match=r"int32 range"):
        loss(np.array([0, 0, 1, 1, 2**40, 2**40]), x)
    with pytest.raises(ValueError, match=r"`labels` must be an array of integer"):
        loss([[0], [0, 1], [1], [1], [2], [2]], x)  # ragged


@pytest.mark.parametrize("loss", LABEL_LOSSES, ids=_label_id)
def test_whole_float_labels_equal_integer_labels(loss):
    x = np.random.default_rng(0).normal(size=(N, D)).astype("float32")
    want = _numpy(loss(LABELS, x))
    np.testing.assert_allclose(_numpy(loss(LABELS.astype("float64"), x)), want)
    np.testing.assert_allclose(_numpy(loss(LABELS.astype("float32")[:, None], x)), want)
    tensor = keras.ops.convert_to_tensor(LABELS.astype("float32"))
    np.testing.assert_allclose(_numpy(loss(tensor, x)), want, rtol=1e-6)


@pytest.mark.parametrize("loss", LABEL_LOSSES[:6], ids=_label_id)
def test_fractional_labels_in_a_compiled_step_give_nan(loss, monkeypatch):
    x = np.random.default_rng(0).normal(size=(N, D)).astype("float32")
    if BACKEND == "torch":
        _not_on_host(monkeypatch)
    fractional = np.array([0.5, 0.5, 1.0, 1.0, 2.0, 2.0], "float32")
    assert np.isnan(_traced(lambda y: loss(y, x), fractional))
    whole = LABELS.astype("float32")
    np.testing.assert_allclose(
        _traced(lambda y: loss(y, x), whole), _numpy(loss(LABELS, x)), rtol=1e-5
    )


# ----------------------------------------------------------------------------------
# Hyper-parameters that would overflow float32


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: L.NTXent(temperature=1e-7), "`temperature` must be a number >= 1e-06"),
        (lambda: L.nt_xent(np.ones((2, 2)), np.ones((2, 2)), temperature=1e-40), None),
        (lambda: L.SupervisedContrastive(temperature=1e-30), None),
        (lambda: L.SigLIPLoss(logit_scale=1e7), "`logit_scale` must be a number in"),
        (lambda: L.SigLIPLoss(logit_bias=-1e7), "`logit_bias` must be a number in"),
        (lambda: L.BinaryNCE(bias=1e30), "`bias` must be a number in [-1e+06"),
        (lambda: L.TripletLoss(margin=1e13), "`margin` must be a number in [0, 1e+12]"),
        (lambda: L.ContrastiveLoss(margin=1e38), "`margin` must be"),
        (lambda: L.BarlowTwinsLoss(scale_loss=1e7), "`scale_loss` must be"),
        (lambda: L.BarlowTwinsLoss(redundancy_weight=1e30), "`redundancy_weight`"),
    ],
)
def test_hyper_parameters_that_overflow_are_a_value_error(build, message):
    with pytest.raises(ValueError, match=None if message is None else _esc(message)):
        build()


def _esc(text):
    import re

    return re.escape(text)


def test_smallest_temperature_and_largest_scale_stay_finite():
    rng = np.random.default_rng(0)
    z_a, z_b = _pair_inputs(rng)
    for loss in (
        L.NTXent(temperature=1e-6),
        L.InfoNCE(temperature=1e-6),
        L.SymmetricInfoNCE(temperature=1e-6),
        L.DebiasedNTXent(temperature=1e-6, tau_plus=0.5),
        L.BinaryNCE(temperature=1e-6, bias=1e6),
        L.SigLIPLoss(logit_scale=1e6, logit_bias=-1e6),
    ):
        assert np.isfinite(float(_numpy(loss(z_a, z_b)))), loss.name
    for loss in (
        L.SupervisedContrastive(temperature=1e-6),
        L.TripletLoss(margin=1e12, mining="semi-hard"),
        L.ContrastiveLoss(margin=1e12),
        L.LiftedStructureLoss(margin=1e12),
    ):
        assert np.isfinite(float(_numpy(loss(LABELS, z_b)))), loss.name


# ----------------------------------------------------------------------------------
# Found by tests/test_fuzz.py


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_an_empty_batch_is_a_value_error(name):
    loss, kind = LOSSES[name]
    empty = np.zeros((0, D), "float32")
    args = (np.zeros(0, int), empty) if kind == "label" else (empty, empty)
    with pytest.raises(ValueError, match=r"must have at least (1 row|2 rows)"):
        loss(*args)


def test_float64_beyond_float32_is_clamped_not_inf():
    rng = np.random.default_rng(0)
    z_a, z_b = _pair_inputs(rng)
    big = z_b.astype("float64") * 1e39  # finite in float64, inf in float32
    for loss in (L.NTXent(), L.BYOLLoss(), L.SigLIPLoss(), L.BarlowTwinsLoss()):
        assert np.isfinite(float(_numpy(loss(z_a, big)))), loss.name
        tensor = keras.ops.convert_to_tensor(big)
        if keras.backend.standardize_dtype(tensor.dtype) == "float64":
            # (JAX without x64 has no float64 tensors: there it is NumPy only.)
            assert np.isfinite(float(_numpy(loss(z_a, tensor)))), loss.name
    assert np.isfinite(_numpy(L.triplet_margin(z_a, z_b, big))).all()
    # inf stays inf, so the loss is NaN.
    big[0, 0] = np.inf
    assert np.isnan(float(_numpy(L.NTXent()(z_a, big))))


def test_argument_errors_come_from_the_library():
    with pytest.raises(ValueError, match=r"`reduction` must be one of"):
        L.NTXent(reduction="max")
    z = np.ones((N, D))
    with pytest.raises(ValueError, match=r"`sample_weight` must be None for Barlow"):
        L.BarlowTwinsLoss()(z, z, sample_weight=np.array(["a"] * N))
