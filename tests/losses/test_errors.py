"""Every bad-input case: an error naming the argument, in the package's one message
style (`keras_contrastive._validation`, Keras' own): "`name` must be ... Received:
name=value" for arguments (TypeError for a wrong type, ValueError for a bad value),
"`z_a` must have rank 2. Received: z_a.shape=(...)" for tensors."""

import re

import numpy as np
import pytest

from keras_contrastive import losses as L

TEMPERATURE_CLASSES = [
    L.InfoNCE,
    L.NTXent,
    L.SymmetricInfoNCE,
    L.BinaryNCE,
    L.DebiasedNTXent,
    L.SupervisedContrastive,
]
TEMPERATURE_FUNCTIONS = [
    L.info_nce,
    L.nt_xent,
    L.symmetric_info_nce,
    L.binary_nce,
    L.debiased_nt_xent,
]
MARGIN_CLASSES = [L.ContrastiveLoss, L.TripletLoss, L.LiftedStructureLoss]
PAIR_CLASSES = [
    L.InfoNCE,
    L.NTXent,
    L.SymmetricInfoNCE,
    L.BinaryNCE,
    L.DebiasedNTXent,
    L.BYOLLoss,
]
NEEDS_NEGATIVES = [
    L.InfoNCE,
    L.NTXent,
    L.SymmetricInfoNCE,
    L.BinaryNCE,
    L.DebiasedNTXent,
]
LABEL_CLASSES = [
    L.ContrastiveLoss,
    L.TripletLoss,
    L.LiftedStructureLoss,
    L.SupervisedContrastive,
]


@pytest.mark.parametrize("cls", TEMPERATURE_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [0, 0.0, -0.5, float("nan"), "0.1", None])
def test_bad_temperature_class(cls, bad):
    error = TypeError if isinstance(bad, (str, type(None))) else ValueError
    message = f"`temperature` must be a positive number. Received: temperature={bad!r}"
    with pytest.raises(error, match=re.escape(message)):
        cls(temperature=bad)


def test_tensor_temperature_and_margin_are_accepted_as_they_are():
    z = np.ones((3, 2))
    t = np.array(0.5, "float32")
    assert L.InfoNCE(temperature=t).temperature is t
    assert L.TripletLoss(margin=t).margin is t
    assert np.isfinite(float(L.nt_xent(z, z, temperature=t)[0]))


@pytest.mark.parametrize("fn", TEMPERATURE_FUNCTIONS, ids=lambda f: f.__name__)
def test_bad_temperature_function(fn):
    z = np.ones((3, 2))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            fn(z, z, temperature=bad)
    with pytest.raises(ValueError, match="temperature"):
        L.supervised_contrastive([0, 1, 0], z, temperature=0.0)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_tau_plus(bad):
    message = re.escape(
        f"`tau_plus` must be a number in [0, 1). Received: tau_plus={bad!r}"
    )
    with pytest.raises(ValueError, match=message):
        L.DebiasedNTXent(tau_plus=bad)
    with pytest.raises(ValueError, match=message):
        L.debiased_nt_xent(np.ones((3, 2)), np.ones((3, 2)), tau_plus=bad)
    with pytest.raises(TypeError, match="`tau_plus` must be"):
        L.DebiasedNTXent(tau_plus="0.1")


@pytest.mark.parametrize("cls", MARGIN_CLASSES, ids=lambda c: c.__name__)
def test_negative_margin(cls):
    for bad in (-1.0, -1e-9, float("nan")):
        message = f"`margin` must be a number in [0, inf). Received: margin={bad!r}"
        with pytest.raises(ValueError, match=re.escape(message)):
            cls(margin=bad)
    with pytest.raises(TypeError, match="`margin` must be"):
        cls(margin=None)
    x = np.ones((3, 2))
    for fn in (L.contrastive_loss, L.triplet_loss, L.lifted_structure_loss):
        with pytest.raises(ValueError, match="margin"):
            fn([0, 0, 1], x, margin=-1.0)
    with pytest.raises(ValueError, match="margin"):
        L.triplet_margin(x, x, x, margin=-1.0)


def test_bad_mining():
    message = (
        "`mining` must be one of ('all', 'hard', 'semi-hard'). "
        "Received: mining='semihard'"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        L.TripletLoss(mining="semihard")
    with pytest.raises(ValueError, match="mining"):
        L.triplet_loss([0, 1], np.ones((2, 2)), mining="easy")


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        L.NTXent(reduction="max")


def test_bad_bias():
    with pytest.raises(ValueError, match=re.escape("`bias` must be a finite number")):
        L.BinaryNCE(bias=float("inf"))
    with pytest.raises(TypeError, match="`bias` must be a finite number"):
        L.binary_nce(np.ones((3, 2)), np.ones((3, 2)), bias="1")


def test_tensor_messages_name_the_shapes():
    with pytest.raises(
        ValueError,
        match=re.escape("`z_a` must have rank 2. Received: z_a.shape=(4, 3, 2)"),
    ):
        L.NTXent()(np.ones((4, 3, 2)), np.ones((4, 3, 2)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`z_a` and `z_b` must have the same shape. "
            "Received: z_a.shape=(4, 3), z_b.shape=(5, 3)"
        ),
    ):
        L.nt_xent(np.ones((4, 3)), np.ones((5, 3)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`z_a` must have at least 2 rows (negatives are needed). "
            "Received: z_a.shape=(1, 3)"
        ),
    ):
        L.nt_xent(np.ones((1, 3)), np.ones((1, 3)))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`labels` must have one entry per row of `embeddings`. "
            "Received: labels.shape=(3,), embeddings.shape=(4, 2)"
        ),
    ):
        L.supervised_contrastive(np.array([0, 1, 0]), np.ones((4, 2)))


@pytest.mark.parametrize("cls", PAIR_CLASSES, ids=lambda c: c.__name__)
def test_view_pair_shape_mismatch_and_rank(cls):
    loss = cls()
    with pytest.raises(ValueError, match="z_a|query"):
        loss(np.ones((4, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="z_a|query"):
        loss(np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="z_a|query"):
        loss(np.ones((4, 3, 2)), np.ones((4, 3, 2)))
    with pytest.raises(ValueError, match="z_b|keys"):
        loss(np.ones((4, 3)), np.ones((4,)))


@pytest.mark.parametrize("cls", NEEDS_NEGATIVES, ids=lambda c: c.__name__)
def test_fewer_than_two_rows(cls):
    with pytest.raises(ValueError, match="at least 2 rows"):
        cls()(np.ones((1, 3)), np.ones((1, 3)))


def test_info_nce_negative_shapes():
    q = np.ones((4, 3))
    with pytest.raises(ValueError, match="negatives"):
        L.info_nce(q, q, negatives=np.ones((5, 2)))
    with pytest.raises(ValueError, match="negatives"):
        L.info_nce(q, q, negatives=np.ones((3, 5, 3)))
    with pytest.raises(ValueError, match="negatives"):
        L.info_nce(q, q, negatives=np.ones((5,)))


@pytest.mark.parametrize("cls", LABEL_CLASSES, ids=lambda c: c.__name__)
def test_label_length_and_rank(cls):
    loss = cls()
    with pytest.raises(ValueError, match="labels"):
        loss(np.array([0, 1, 0]), np.ones((4, 2)))
    with pytest.raises(ValueError, match="labels"):
        loss(np.zeros((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="embeddings"):
        loss(np.array([0, 1, 0, 1]), np.ones((4,)))
    with pytest.raises(ValueError, match="embeddings"):
        loss(np.array([0, 1, 0, 1]), np.ones((4, 2, 1)))


def test_triplet_margin_shapes():
    with pytest.raises(ValueError, match="negative"):
        L.triplet_margin(np.ones((3, 2)), np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="anchor"):
        L.triplet_margin(np.ones((3,)), np.ones((3, 2)), np.ones((3, 2)))


def test_sample_weight_length():
    message = "`sample_weight` must have one entry per anchor (4) or per pair. "
    message += "Received: sample_weight.shape=(3,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        L.InfoNCE()(np.ones((4, 2)), np.ones((4, 2)), sample_weight=np.ones(3))


def test_mix_hard_negatives_arguments():
    q, negs = np.ones((2, 3)), np.ones((5, 3))
    mix = L.mix_hard_negatives
    message = re.escape("`num_hard` must be an int >= 1. Received: num_hard=0")
    with pytest.raises(ValueError, match=message):
        mix(q, negs, num_hard=0, num_synthetic=1, num_query_mixes=1, seed=0)
    with pytest.raises(ValueError, match="`num_hard` must be an int >= 2"):
        mix(q, negs, num_hard=1, num_synthetic=1, num_query_mixes=0, seed=0)
    message = re.escape(
        "`negatives` must have at least num_hard=6 rows. "
        "Received: negatives.shape=(5, 3)"
    )
    with pytest.raises(ValueError, match=message):
        mix(q, negs, num_hard=6, num_synthetic=1, num_query_mixes=0, seed=0)
    with pytest.raises(ValueError, match="`num_synthetic` must be an int >= 0"):
        mix(q, negs, num_hard=2, num_synthetic=-1, num_query_mixes=0, seed=0)
    with pytest.raises(TypeError, match="`num_query_mixes` must be an int >= 0"):
        mix(q, negs, num_hard=2, num_synthetic=1, num_query_mixes=1.5, seed=0)
    with pytest.raises(ValueError, match="`query` and `negatives` must have the"):
        mix(q, np.ones((5, 4)), num_hard=2, num_synthetic=1, num_query_mixes=0)
    with pytest.raises(TypeError, match="`seed` must be an int"):
        mix(q, negs, num_hard=2, num_synthetic=1, num_query_mixes=0, seed="x")
