"""The method-test harness: every method of `keras_contrastive.models` in one list.

A `Method` says how to build a tiny instance of a method and what data it eats;
tests/methods/test_harness.py runs the same checks on every entry (fit on NumPy,
`tf.data` and `PyDataset` input, `.keras` save/load, `BackupAndRestore` resume,
mixed precision, bad input) and tests/distribute/replica_run.py its 4-device
equality. Adding a method to every check is one entry in `METHODS`; a public
method class without an entry fails `test_every_method_is_in_the_harness`.
"""

import dataclasses

import keras
import numpy as np

from keras_contrastive.callbacks import MomentumSchedule
from keras_contrastive.layers import PredictionHead, ProjectionHead
from keras_contrastive.models import (
    BYOL,
    CLIP,
    NNCLR,
    BarlowTwins,
    MemoryBankModel,
    MoCHi,
    MoCo,
    SimCLR,
    SimSiam,
)
from tests.methods.helpers import linear_encoder, tiny_encoder

#: Rows per example set (the memory bank's `num_examples`).
NUM_EXAMPLES = 24
DIM = 4


def projection(linear):
    """A small head: linear without batch norm for the multi-device runs (where
    TF batch norm is per replica), else one hidden layer with batch norm."""
    if linear:
        return ProjectionHead(hidden_dims=(), output_dim=DIM, batch_norm=False)
    return ProjectionHead(hidden_dims=(8,), output_dim=DIM)


def predictor(linear):
    if linear:
        return PredictionHead(hidden_dims=(), output_dim=DIM, batch_norm=False)
    return PredictionHead(hidden_dims=(8,), output_dim=DIM)


@dataclasses.dataclass(frozen=True)
class Method:
    """One harness entry.

    Attributes:
        make: `(encoder, augmenter, linear) -> model` with small heads.
        ids: whether the input carries example ids (`{"ids", "images"}`).
        momentum: whether `MomentumSchedule` applies (resume runs use it).
        bad_arguments: `(factory, error, match)`: constructions that must raise
            `error` with a message matching `match` (besides the encoder, image and
            batch checks every method gets).
        distributed: whether the 4-device equality run includes it.
        inputs: optional `(images, rng) -> x`, the model input made around the
            images (image-text pairs); None: the images (with ids if `ids`).
        encoder_name: the constructor argument `encoder` is passed as (its name
            in error messages).
    """

    make: callable
    ids: bool = False
    momentum: bool = False
    bad_arguments: tuple = ()
    distributed: bool = True
    inputs: callable = None
    encoder_name: str = "encoder"

    def model(self, augmenter=None, linear=False, encoder=None):
        if encoder is None:
            encoder = linear_encoder(2, 1, 3) if linear else tiny_encoder()
        return self.make(encoder, augmenter, linear)

    def data(self, n=NUM_EXAMPLES, size=8, channels=3, seed=0, dtype="uint8"):
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, (n, size, size, channels)).astype(dtype)
        if self.ids:
            return {"ids": np.arange(n, dtype="int32"), "images": images}
        if self.inputs is not None:
            return self.inputs(images, rng)
        return images

    def callbacks(self):
        return [MomentumSchedule(0.9, 1.0, total_steps=8)] if self.momentum else []


METHODS = {
    "simclr": Method(
        lambda encoder, augmenter, linear: SimCLR(
            encoder, projection(linear), augmenter, temperature=0.5
        ),
        bad_arguments=(
            (
                lambda: SimCLR(tiny_encoder(), temperature=0),
                ValueError,
                "`temperature`",
            ),
        ),
    ),
    "moco": Method(
        lambda encoder, augmenter, linear: MoCo(
            encoder,
            projection(linear),
            augmenter,
            queue_size=20,
            momentum=0.9,
            seed=1,
        ),
        momentum=True,
        bad_arguments=(
            (lambda: MoCo(tiny_encoder(), queue_size=0), ValueError, "`queue_size`"),
            (lambda: MoCo(tiny_encoder(), symmetric="yes"), TypeError, "`symmetric`"),
        ),
    ),
    "mochi": Method(
        lambda encoder, augmenter, linear: MoCo(
            encoder,
            projection(linear),
            augmenter,
            queue_size=20,
            momentum=0.9,
            hard_negative_mixing=MoCHi(num_hard=4, num_synthetic=4, num_query_mixes=2),
            seed=1,
        ),
        momentum=True,
        bad_arguments=(
            (
                lambda: MoCo(tiny_encoder(), hard_negative_mixing="x"),
                TypeError,
                "`hard_negative_mixing`",
            ),
            (
                lambda: MoCo(
                    tiny_encoder(), queue_size=8, hard_negative_mixing=MoCHi(num_hard=9)
                ),
                ValueError,
                "`hard_negative_mixing`",
            ),
        ),
        # The mixed negatives are drawn per replica: equal in distribution only.
        distributed=False,
    ),
    "byol": Method(
        lambda encoder, augmenter, linear: BYOL(
            encoder, projection(linear), predictor(linear), augmenter, momentum=0.9
        ),
        momentum=True,
        bad_arguments=(
            (lambda: BYOL(tiny_encoder(), momentum=1.5), ValueError, "`momentum`"),
        ),
    ),
    "simsiam": Method(
        lambda encoder, augmenter, linear: SimSiam(
            encoder, projection(linear), predictor(linear), augmenter
        ),
        bad_arguments=(
            (
                lambda: SimSiam(tiny_encoder(), prediction_head="x"),
                TypeError,
                "`prediction",
            ),
        ),
    ),
    "memory_bank": Method(
        lambda encoder, augmenter, linear: MemoryBankModel(
            encoder,
            NUM_EXAMPLES,
            projection(linear),
            augmenter,
            num_negatives=8,
            temperature=0.5,
            seed=1,
        ),
        ids=True,
        bad_arguments=(
            (
                lambda: MemoryBankModel(tiny_encoder(), 8, loss="x"),
                ValueError,
                "`loss`",
            ),
            (lambda: MemoryBankModel(tiny_encoder(), 1), ValueError, "`num_examples`"),
        ),
    ),
    "nnclr": Method(
        lambda encoder, augmenter, linear: NNCLR(
            encoder, projection(linear), predictor(linear), augmenter, support_size=20
        ),
        bad_arguments=(
            (
                lambda: NNCLR(tiny_encoder(), support_size=-1),
                ValueError,
                "`support_size`",
            ),
        ),
    ),
    "barlow_twins": Method(
        lambda encoder, augmenter, linear: BarlowTwins(
            encoder, projection(linear), augmenter
        ),
        bad_arguments=(
            (
                lambda: BarlowTwins(tiny_encoder(), redundancy_weight=-1.0),
                ValueError,
                "`redundancy_weight`",
            ),
        ),
    ),
}


TEXT_LENGTH, VOCABULARY = 5, 16


def text_tower():
    """Token ids -> the mean of their embeddings: a linear text tower."""
    return keras.Sequential(
        [
            keras.Input((TEXT_LENGTH,), dtype="int32"),
            keras.layers.Embedding(VOCABULARY, DIM),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )


def image_text_pairs(images, rng):
    """(images, token ids): random "captions" of TEXT_LENGTH tokens."""
    return images, rng.integers(1, VOCABULARY, (len(images), TEXT_LENGTH)).astype(
        "int32"
    )


def clip(loss, **kwargs):
    return Method(
        lambda encoder, augmenter, linear: CLIP(
            encoder, text_tower(), embed_dim=DIM, loss=loss, image_augmenter=augmenter
        ),
        inputs=image_text_pairs,
        encoder_name="image_encoder",
        **kwargs,
    )


METHODS["clip"] = clip(
    "softmax",
    bad_arguments=(
        (lambda: CLIP(tiny_encoder(), text_tower(), loss="x"), ValueError, "`loss`"),
        (
            lambda: CLIP(tiny_encoder(), text_tower(), temperature=0),
            ValueError,
            "`temperature`",
        ),
        (lambda: CLIP(tiny_encoder(), "text"), TypeError, "`text_encoder`"),
    ),
)
METHODS["clip_sigmoid"] = clip(
    "sigmoid",
    bad_arguments=(
        (
            lambda: CLIP(tiny_encoder(), text_tower(), loss="sigmoid", temperature=0.1),
            ValueError,
            "`temperature` must be left at 0.07",
        ),
    ),
)


def flip_and_noise():
    """A cheap seeded random augmenter with per-call randomness."""
    return keras.Sequential(
        [keras.layers.RandomFlip(seed=1), keras.layers.GaussianNoise(0.5, seed=2)]
    )
