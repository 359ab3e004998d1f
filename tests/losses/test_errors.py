"""Every bad-input case of issue 2, section 3: a ValueError naming the argument."""

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
    with pytest.raises(ValueError, match="temperature"):
        cls(temperature=bad)


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
    with pytest.raises(ValueError, match="tau_plus"):
        L.DebiasedNTXent(tau_plus=bad)
    with pytest.raises(ValueError, match="tau_plus"):
        L.debiased_nt_xent(np.ones((3, 2)), np.ones((3, 2)), tau_plus=bad)


@pytest.mark.parametrize("cls", MARGIN_CLASSES, ids=lambda c: c.__name__)
def test_negative_margin(cls):
    for bad in (-1.0, -1e-9, float("nan")):
        with pytest.raises(ValueError, match="margin"):
            cls(margin=bad)
    x = np.ones((3, 2))
    for fn in (L.contrastive_loss, L.triplet_loss, L.lifted_structure_loss):
        with pytest.raises(ValueError, match="margin"):
            fn([0, 0, 1], x, margin=-1.0)
    with pytest.raises(ValueError, match="margin"):
        L.triplet_margin(x, x, x, margin=-1.0)


def test_bad_mining():
    with pytest.raises(ValueError, match="mining"):
        L.TripletLoss(mining="semihard")
    with pytest.raises(ValueError, match="mining"):
        L.triplet_loss([0, 1], np.ones((2, 2)), mining="easy")


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        L.NTXent(reduction="max")


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
    with pytest.raises(ValueError, match="sample_weight"):
        L.InfoNCE()(np.ones((4, 2)), np.ones((4, 2)), sample_weight=np.ones(3))


def test_mix_hard_negatives_arguments():
    q, negs = np.ones((2, 3)), np.ones((5, 3))
    mix = L.mix_hard_negatives
    with pytest.raises(ValueError, match="num_hard"):
        mix(q, negs, num_hard=0, num_synthetic=1, num_query_mixes=1, seed=0)
    with pytest.raises(ValueError, match="num_hard"):
        mix(q, negs, num_hard=1, num_synthetic=1, num_query_mixes=0, seed=0)
    with pytest.raises(ValueError, match="num_hard"):
        mix(q, negs, num_hard=6, num_synthetic=1, num_query_mixes=0, seed=0)
    with pytest.raises(ValueError, match="num_synthetic"):
        mix(q, negs, num_hard=2, num_synthetic=-1, num_query_mixes=0, seed=0)
    with pytest.raises(ValueError, match="num_query_mixes"):
        mix(q, negs, num_hard=2, num_synthetic=1, num_query_mixes=1.5, seed=0)
    with pytest.raises(ValueError, match="negatives"):
        mix(q, np.ones((5, 4)), num_hard=2, num_synthetic=1, num_query_mixes=0)
    with pytest.raises(ValueError, match="seed"):
        mix(q, negs, num_hard=2, num_synthetic=1, num_query_mixes=0, seed="x")
