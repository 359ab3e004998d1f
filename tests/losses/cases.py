"""One entry per loss class: how to build it, its functional form, its references."""

from dataclasses import dataclass, field

import numpy as np

from keras_contrastive import losses as L
from tests.losses import reference as R


@dataclass
class Case:
    name: str
    cls: type
    kwargs: dict
    kind: str  # "pair": loss(z_a, z_b); "label": loss(labels, embeddings)
    fn: object  # functional form: fn(y_true, y_pred, **fn_kwargs) -> per-anchor
    fn_kwargs: dict
    rows: object  # NumPy reference per-anchor values
    scalar: object  # NumPy reference of the class's default (mean) value
    extra: dict = field(default_factory=dict)


def _mean_of(rows):
    return lambda *args, **kw: float(np.mean(rows(*args, **kw)))


CASES = [
    Case(
        "InfoNCE",
        L.InfoNCE,
        {"temperature": 0.2},
        "pair",
        L.info_nce,
        {"temperature": 0.2},
        lambda a, b: R.info_nce_rows(a, b, temperature=0.2),
        _mean_of(lambda a, b: R.info_nce_rows(a, b, temperature=0.2)),
    ),
    Case(
        "NTXent",
        L.NTXent,
        {"temperature": 0.5},
        "pair",
        L.nt_xent,
        {"temperature": 0.5},
        lambda a, b: R.nt_xent_rows(a, b, temperature=0.5),
        _mean_of(lambda a, b: R.nt_xent_rows(a, b, temperature=0.5)),
    ),
    Case(
        "SymmetricInfoNCE",
        L.SymmetricInfoNCE,
        {"temperature": 0.3},
        "pair",
        L.symmetric_info_nce,
        {"temperature": 0.3},
        lambda a, b: R.symmetric_info_nce_rows(a, b, temperature=0.3),
        # (InfoNCE(a->b) + InfoNCE(b->a)) / 2 as two separate means.
        lambda a, b: (
            0.5
            * (
                np.mean(R.info_nce_rows(a, b, temperature=0.3))
                + np.mean(R.info_nce_rows(b, a, temperature=0.3))
            )
        ),
    ),
    Case(
        "BinaryNCE",
        L.BinaryNCE,
        {"temperature": 0.5, "bias": -1.0},
        "pair",
        L.binary_nce,
        {"temperature": 0.5, "bias": -1.0},
        lambda a, b: R.binary_nce_rows(a, b, temperature=0.5, bias=-1.0),
        lambda a, b: R.binary_nce_scalar(a, b, temperature=0.5, bias=-1.0),
    ),
    Case(
        "DebiasedNTXent",
        L.DebiasedNTXent,
        {"temperature": 0.5, "tau_plus": 0.1},
        "pair",
        L.debiased_nt_xent,
        {"temperature": 0.5, "tau_plus": 0.1},
        lambda a, b: R.debiased_nt_xent_rows(a, b, temperature=0.5, tau_plus=0.1),
        _mean_of(lambda a, b: R.debiased_nt_xent_rows(a, b, 0.5, 0.1)),
    ),
    Case(
        "BYOLLoss",
        L.BYOLLoss,
        {},
        "pair",
        L.byol_loss,
        {},
        R.byol_rows,
        _mean_of(R.byol_rows),
    ),
    Case(
        "SigLIPLoss",
        L.SigLIPLoss,
        {"logit_scale": 10.0, "logit_bias": -5.0},
        "pair",
        L.siglip_loss,
        {"logit_scale": 10.0, "logit_bias": -5.0},
        lambda a, b: R.siglip_rows(a, b, logit_scale=10.0, logit_bias=-5.0),
        lambda a, b: R.siglip_scalar(a, b, logit_scale=10.0, logit_bias=-5.0),
    ),
    Case(
        "ContrastiveLoss",
        L.ContrastiveLoss,
        {"margin": 1.5},
        "label",
        L.contrastive_loss,
        {"margin": 1.5},
        lambda y, x: R.contrastive_rows(y, x, margin=1.5),
        lambda y, x: R.contrastive_scalar(y, x, margin=1.5),
    ),
    Case(
        "TripletLoss-all",
        L.TripletLoss,
        {"margin": 1.0, "mining": "all"},
        "label",
        L.triplet_loss,
        {"margin": 1.0, "mining": "all"},
        lambda y, x: R.triplet_all_rows(y, x, margin=1.0),
        lambda y, x: R.triplet_all_scalar(y, x, margin=1.0),
    ),
    Case(
        "TripletLoss-hard",
        L.TripletLoss,
        {"margin": 0.5, "mining": "hard"},
        "label",
        L.triplet_loss,
        {"margin": 0.5, "mining": "hard"},
        lambda y, x: R.triplet_hard_rows(y, x, margin=0.5),
        lambda y, x: R.triplet_hard_scalar(y, x, margin=0.5),
    ),
    Case(
        "TripletLoss-semi-hard",
        L.TripletLoss,
        {"margin": 1.0, "mining": "semi-hard"},
        "label",
        L.triplet_loss,
        {"margin": 1.0, "mining": "semi-hard"},
        lambda y, x: R.triplet_semi_hard_rows(y, x, margin=1.0),
        lambda y, x: R.triplet_semi_hard_scalar(y, x, margin=1.0),
    ),
    Case(
        "LiftedStructureLoss",
        L.LiftedStructureLoss,
        {"margin": 1.0},
        "label",
        L.lifted_structure_loss,
        {"margin": 1.0},
        lambda y, x: R.lifted_rows(y, x, margin=1.0),
        lambda y, x: R.lifted_scalar(y, x, margin=1.0),
    ),
    Case(
        "SupervisedContrastive",
        L.SupervisedContrastive,
        {"temperature": 0.2},
        "label",
        L.supervised_contrastive,
        {"temperature": 0.2},
        lambda y, x: R.supcon_rows(y, x, temperature=0.2),
        lambda y, x: R.supcon_scalar(y, x, temperature=0.2),
    ),
]

PAIR_CASES = [c for c in CASES if c.kind == "pair"]
LABEL_CASES = [c for c in CASES if c.kind == "label"]
# One entry per class (TripletLoss once) for the Keras plumbing tests.
CLASS_CASES = [c for c in CASES if c.name not in ("TripletLoss-hard",)]


# Builders taking the hyper-parameters as arguments: on JAX the gradient tests trace
# them, so one compiled function per loss and shape serves every drawn value. The
# fixed settings match CASES.
PAIR_BUILDERS = {
    "InfoNCE": lambda t: L.InfoNCE(t),
    "NTXent": lambda t: L.NTXent(t),
    "SymmetricInfoNCE": lambda t: L.SymmetricInfoNCE(t),
    "BinaryNCE": lambda t: L.BinaryNCE(t, bias=-1.0),
    "DebiasedNTXent": lambda t: L.DebiasedNTXent(t, tau_plus=0.1),
    "BYOLLoss": lambda t: L.BYOLLoss(),
    # The scale plays 1 / temperature: 10 at `hyper`'s default 0.1, as in CASES.
    "SigLIPLoss": lambda t: L.SigLIPLoss(logit_scale=1.0 / t, logit_bias=-5.0),
}
LABEL_BUILDERS = {
    "ContrastiveLoss": lambda m, t: L.ContrastiveLoss(m),
    "TripletLoss-all": lambda m, t: L.TripletLoss(m, mining="all"),
    "TripletLoss-hard": lambda m, t: L.TripletLoss(m, mining="hard"),
    "TripletLoss-semi-hard": lambda m, t: L.TripletLoss(m, mining="semi-hard"),
    "LiftedStructureLoss": lambda m, t: L.LiftedStructureLoss(m),
    "SupervisedContrastive": lambda m, t: L.SupervisedContrastive(t),
}


def pair_fn(name):
    """(z_a, z_b, temperature) -> mean loss, for tests._run.value_and_grad."""
    build = PAIR_BUILDERS[name]
    return lambda a, b, t: build(t)(a, b)


def label_fn(name):
    """(labels, embeddings, margin, temperature) -> mean loss."""
    build = LABEL_BUILDERS[name]
    return lambda y, e, m, t: build(m, t)(y, e)


def hyper(case):
    """(margin, temperature) of a case, defaults where it has none."""
    return case.kwargs.get("margin", 1.0), case.kwargs.get("temperature", 0.1)


def ids(cases):
    return [c.name for c in cases]


def make_inputs(case, rng, n, d=6, num_classes=3, scale=0.5):
    """(y_true, y_pred) float64 NumPy inputs for `case` with n rows."""
    if case.kind == "pair":
        z_a = rng.normal(size=(n, d))
        z_b = z_a + 0.8 * rng.normal(size=(n, d))
        return z_a, z_b
    labels = rng.integers(0, num_classes, size=n)
    return labels, scale * rng.normal(size=(n, d))
