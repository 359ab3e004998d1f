"""keras_contrastive.losses: the contrastive loss family.

Every loss has a functional form (snake_case; per-anchor values, usable inside any
model code) and a registered `keras.losses.Loss` class (CamelCase; mean by default,
`reduction=None` for per-anchor values; `get_config` round-trips; works in
`model.compile(loss=...)` and `.keras` save/load).

View-pair losses are called `loss(z_a, z_b)`; label-based metric losses are called
`loss(labels, embeddings)` (Keras' y_true, y_pred order). Barlow Twins is a
batch-level loss: its functional form returns one scalar for the batch. See
docs/losses.md.

Bad batches show: a NaN or inf in any input makes every loss NaN (also where no
pair is valid), finite inputs of any magnitude give finite losses, a NaN, inf or
negative `sample_weight` and labels that are not integer class ids are a
`ValueError` when visible in Python (a NaN loss inside a compiled step), and
all-zero weights give 0 with zero gradients (docs/losses.md, "Bad batches").
"""

from keras_contrastive.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss
from keras_contrastive.losses.base import ContrastiveLossBase
from keras_contrastive.losses.hard_negatives import mix_hard_negatives
from keras_contrastive.losses.metric import (
    ContrastiveLoss,
    LiftedStructureLoss,
    SupervisedContrastive,
    TripletLoss,
    contrastive_loss,
    lifted_structure_loss,
    supervised_contrastive,
    triplet_loss,
    triplet_margin,
)
from keras_contrastive.losses.siglip import SigLIPLoss, siglip_loss
from keras_contrastive.losses.similarity import (
    cosine_similarity_matrix,
    pairwise_distances,
)
from keras_contrastive.losses.view_pair import (
    BinaryNCE,
    BYOLLoss,
    DebiasedNTXent,
    InfoNCE,
    NTXent,
    SymmetricInfoNCE,
    binary_nce,
    byol_loss,
    debiased_nt_xent,
    info_nce,
    nt_xent,
    symmetric_info_nce,
)

__all__ = [
    # view-pair losses: loss(z_a, z_b)
    "InfoNCE",
    "NTXent",
    "SymmetricInfoNCE",
    "BinaryNCE",
    "DebiasedNTXent",
    "BYOLLoss",
    "info_nce",
    "nt_xent",
    "symmetric_info_nce",
    "binary_nce",
    "debiased_nt_xent",
    "byol_loss",
    # SigLIP's sigmoid loss: loss(x, y), per-anchor values
    "SigLIPLoss",
    "siglip_loss",
    # batch-level loss: loss(z_a, z_b) -> one scalar for the batch
    "BarlowTwinsLoss",
    "barlow_twins_loss",
    # label-based metric losses: loss(labels, embeddings)
    "ContrastiveLoss",
    "TripletLoss",
    "LiftedStructureLoss",
    "SupervisedContrastive",
    "contrastive_loss",
    "triplet_loss",
    "triplet_margin",
    "lifted_structure_loss",
    "supervised_contrastive",
    # hard negatives and utilities
    "mix_hard_negatives",
    "pairwise_distances",
    "cosine_similarity_matrix",
    "ContrastiveLossBase",
]
