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
    CPC,
    NNCLR,
    SBERT,
    BarlowTwins,
    CriticEmbedding,
    DeepInfoMax,
    MemoryBankModel,
    MoCHi,
    MoCo,
    SimCLR,
    SimCSE,
    SimSiam,
)
from keras_contrastive.text import TokenizedTexts
from tests.methods.helpers import linear_encoder, tiny_encoder
from tests.text import _tiny

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
        input_kinds: the kinds of `fit` input the input check compares (see
            `fit_input`).

    Methods on other data than images (texts: `TextMethod`) override `model`,
    `data`, `labels`, `fit_input` and `bad_inputs`; the checks only use these.
    """

    make: callable
    ids: bool = False
    momentum: bool = False
    bad_arguments: tuple = ()
    distributed: bool = True
    inputs: callable = None
    encoder_name: str = "encoder"
    input_kinds: tuple = ("numpy", "tf_data", "py_dataset")

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

    def labels(self, n=NUM_EXAMPLES, seed=0):
        """The `y` of `fit` (None: the method learns without labels)."""
        return None

    def fit_input(self, kind, x, y, batch_size):
        """`(args, kwargs)` of `fit` feeding `x` (and `y`) as `kind`: "numpy"
        (arrays), "tf_data" (a `tf.data.Dataset`) or "py_dataset"
        (`keras.utils.PyDataset`), the same batches in the same order."""
        if kind == "numpy":
            return (x, y), {"batch_size": batch_size, "shuffle": False}
        element = x if y is None else (x, y)
        if kind == "tf_data":
            import tensorflow as tf

            dataset = tf.data.Dataset.from_tensor_slices(element)
            return (dataset.batch(batch_size),), {}
        # Keras shuffles a PyDataset's batch order unless told not to.
        return (Batches(element, batch_size),), {"shuffle": False}

    def bad_inputs(self):
        """`(x, y, error, match)`: inputs `fit` must refuse with a clear error."""
        flat = keras.tree.map_structure(
            lambda a: a[..., 0] if a.ndim == 4 else a, self.data()
        )
        cases = [(flat, None, ValueError, r"`images` must be a batch of images")]
        if self.ids:
            images = self.data()["images"]
            cases.append((images, None, ValueError, "`x` must be example ids with"))
        return cases

    def callbacks(self):
        return [MomentumSchedule(0.9, 1.0, total_steps=8)] if self.momentum else []


class Batches(keras.utils.PyDataset):
    """The rows of a nest of arrays in batches, in order (the last one dropped
    when short)."""

    def __init__(self, x, batch_size):
        super().__init__()
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return len(keras.tree.flatten(self.x)[0]) // self.batch_size

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return keras.tree.map_structure(lambda a: a[rows], self.x)


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


# ------------------------------------------------------------------------ texts

#: Fixed padded length of the harness's token arrays.
TEXT_TOKENS = 16
SUBJECTS = ("the man", "a woman", "the dog", "a cat", "the quick brown fox")
ACTIONS = ("is playing guitar", "is eating", "sat on the mat", "jumps over")


def sentence_columns(n, seed):
    """`{"anchor", "positive", "negative"}` texts (a paraphrase and an unrelated
    sentence per anchor) and 3-way labels, from the tiny test vocabulary."""
    rng = np.random.default_rng(seed)
    subject = rng.integers(0, len(SUBJECTS), n)
    action = rng.integers(0, len(ACTIONS), n)
    columns = {"anchor": [], "positive": [], "negative": []}
    for s, a in zip(subject, action):
        columns["anchor"].append(f"{SUBJECTS[s]} {ACTIONS[a]}")
        columns["positive"].append(f"{SUBJECTS[s].replace('the', 'a')} {ACTIONS[a]}!")
        other = (s + 1 + a) % len(SUBJECTS), (a + 1) % len(ACTIONS)
        columns["negative"].append(f"{SUBJECTS[other[0]]} {ACTIONS[other[1]]}")
    return columns, rng.integers(0, 3, n).astype("int32")


@dataclasses.dataclass(frozen=True)
class TextMethod(Method):
    """A harness entry for a method on sentences (SBERT, SimCSE).

    Its data are columns of texts from the tiny test vocabulary
    (tests/text/_tiny.py), `data()` tokenised to `TEXT_TOKENS` ids (the "numpy"
    and "tf_data" kinds feed token arrays and a `tf.data` of token dicts),
    "py_dataset" is a `keras_contrastive.text.TokenizedTexts` and "texts" the
    strings themselves (Python lists, tokenised on the host by `fit`).

    Attributes:
        columns: the dict keys of the model input, in order; () for one batch of
            texts (SimCSE).
        labelled: whether `fit` takes 3-way class labels as `y`.
        dropout: the tiny BERT's dropout (0 in the 4-device runs, `linear`).
        bad_texts: `(texts, y, error, match)` besides the shared ones.
    """

    columns: tuple = ("anchor", "positive")
    labelled: bool = False
    dropout: float = 0.0
    bad_texts: tuple = ()
    input_kinds: tuple = ("numpy", "tf_data", "py_dataset", "texts")

    def model(self, augmenter=None, linear=False, encoder=None):
        if encoder is None:
            # Dropout is a text method's view randomness: off where the checks
            # ask for deterministic views (linear networks, an Identity augmenter;
            # TensorFlow draws bfloat16 dropout masks differently from float32).
            deterministic = linear or isinstance(augmenter, keras.layers.Identity)
            encoder = _tiny.tiny_encoder(
                sequence_length=TEXT_TOKENS,
                dropout=0.0 if deterministic else self.dropout,
            )
        return self.make(encoder, augmenter, linear)

    def texts(self, n=NUM_EXAMPLES, seed=0):
        columns, _ = sentence_columns(n, seed)
        if not self.columns:
            return columns["anchor"]
        names = ("anchor", "positive", "negative")
        return {key: columns[name] for key, name in zip(self.columns, names)}

    def data(self, n=NUM_EXAMPLES, seed=0, **image_arguments):
        tokenizer = _tiny.tiny_tokenizer(TEXT_TOKENS)
        texts = self.texts(n, seed)
        if not self.columns:
            return tokenizer(texts, TEXT_TOKENS)
        return {key: tokenizer(column, TEXT_TOKENS) for key, column in texts.items()}

    def labels(self, n=NUM_EXAMPLES, seed=0):
        return sentence_columns(n, seed)[1] if self.labelled else None

    def fit_input(self, kind, x, y, batch_size):
        n = len(keras.tree.flatten(x)[0])
        if kind == "texts":
            return (self.texts(n), y), {"batch_size": batch_size, "shuffle": False}
        if kind == "py_dataset":
            tokenizer = _tiny.tiny_tokenizer(TEXT_TOKENS)
            dataset = TokenizedTexts(
                self.texts(n), tokenizer, labels=y, batch_size=batch_size
            )
            return (dataset,), {}
        return super().fit_input(kind, x, y, batch_size)

    def bad_inputs(self):
        texts, y = self.texts(), self.labels()
        if self.columns:
            first = self.columns[0]
            blank = dict(texts, **{first: [" "] + texts[first][1:]})
            cases = [
                (blank, y, ValueError, rf"`x\['{first}'\]\[0\]` must be a non-empty"),
                (texts[first], y, ValueError, "`x` must be .* columns"),
            ]
        else:
            cases = [
                (["a man", ""] + texts[2:], y, ValueError, "must be a non-empty text"),
                ([], y, ValueError, "`x` must be a non-empty batch of strings"),
            ]
        if self.labelled:
            cases.append((texts, None, ValueError, "`y` must be the labels of each"))
        return cases + list(self.bad_texts)


def sbert(objective, **kwargs):
    return lambda encoder, augmenter, linear: SBERT(
        encoder, objective=objective, **kwargs
    )


METHODS["sbert"] = TextMethod(
    sbert("multiple_negatives"),
    columns=("anchor", "positive", "negative"),
    bad_arguments=(
        (lambda: SBERT(_tiny.tiny_encoder(), objective="x"), ValueError, "`objec"),
        (lambda: SBERT(_tiny.tiny_encoder(), temperature=0), ValueError, "`temper"),
    ),
    bad_texts=(
        (
            (list(range(NUM_EXAMPLES)), ["a man"] * NUM_EXAMPLES),
            None,
            TypeError,
            r"`x\['anchor'\]\[0\]` must be a string",
        ),
    ),
)
METHODS["sbert_classification"] = TextMethod(
    sbert("classification", num_labels=3),
    columns=("sentence1", "sentence2"),
    labelled=True,
    # `fit` of the 4-device runs takes no labels.
    distributed=False,
    bad_arguments=(
        (
            lambda: SBERT(_tiny.tiny_encoder(), "classification", num_labels=1),
            ValueError,
            "`num_labels`",
        ),
    ),
)
METHODS["simcse"] = TextMethod(
    lambda encoder, augmenter, linear: SimCSE(encoder, temperature=0.05),
    columns=(),
    dropout=0.1,
    bad_arguments=(
        (lambda: SimCSE(_tiny.tiny_encoder(), temperature=-1), ValueError, "`temp"),
        (lambda: SimCSE(_tiny.tiny_encoder(), augmenter=3), TypeError, "`augmenter`"),
    ),
    bad_texts=((np.arange(8.0), None, TypeError, "`x` must be a batch of texts"),),
)


def flip_and_noise():
    """A cheap seeded random augmenter with per-call randomness."""
    return keras.Sequential(
        [keras.layers.RandomFlip(seed=1), keras.layers.GaussianNoise(0.5, seed=2)]
    )


# -------------------------------------------------------------------- sequences

#: Steps and features of the harness's sequences (CPC).
SEQUENCE_STEPS, SEQUENCE_FEATURES = 6, 3


@dataclasses.dataclass(frozen=True)
class SequenceMethod(Method):
    """A harness entry for a method on sequences `(batch, steps, features)` (CPC).

    Its encoder maps each step to `DIM` features (a per-step linear map when
    `linear`, else a 1-D convolution); steps are left unknown in the encoder's
    input, so sequences too short for the method reach its own check.
    """

    def model(self, augmenter=None, linear=False, encoder=None):
        if encoder is None:
            step = (
                keras.layers.Dense(DIM, use_bias=False)
                if linear
                else keras.layers.Conv1D(DIM, 2, padding="same", activation="relu")
            )
            encoder = keras.Sequential([keras.Input((None, SEQUENCE_FEATURES)), step])
        return self.make(encoder, augmenter, linear)

    def data(self, n=NUM_EXAMPLES, seed=0, dtype="float32", **image_arguments):
        rng = np.random.default_rng(seed)
        shape = (n, SEQUENCE_STEPS, SEQUENCE_FEATURES)
        return rng.normal(size=shape).astype(dtype)

    def bad_inputs(self):
        short = self.data()[:, :2]
        return [(short, None, ValueError, "`prediction_steps` must be smaller")]


METHODS["cpc"] = SequenceMethod(
    lambda encoder, augmenter, linear: CPC(
        encoder, keras.layers.GRU(DIM, return_sequences=True), prediction_steps=2
    ),
    bad_arguments=(
        (
            lambda: CPC(keras.layers.Dense(2), prediction_steps=0),
            ValueError,
            "`prediction_steps`",
        ),
        (
            lambda: CPC(keras.layers.Dense(2), context_network="gru"),
            TypeError,
            "`context_network`",
        ),
    ),
)


# ------------------------------------------------------------ local-global pairs


@dataclasses.dataclass(frozen=True)
class LocalGlobalMethod(Method):
    """A harness entry for Deep InfoMax: its encoder names a local feature map
    ("local"): a rescaling to [0, 1], a 1x1 convolution, average pooling and a
    linear map when `linear` (2 x 2 x 1 images), else a strided convolution with
    batch norm before the pooling."""

    def model(self, augmenter=None, linear=False, encoder=None):
        if encoder is None:
            if linear:
                layers = [
                    keras.Input((2, 2, 1)),
                    # Pixels in 0..255 would give raw dot-product scores in the
                    # tens of thousands (the critic does not normalise), and the
                    # equality test's SGD(0.5) steps would diverge.
                    keras.layers.Rescaling(1 / 255),
                    keras.layers.Conv2D(DIM, 1, use_bias=False, name="local"),
                    keras.layers.GlobalAveragePooling2D(),
                    keras.layers.Dense(DIM, use_bias=False),
                ]
            else:
                layers = [
                    keras.Input((8, 8, 3)),
                    keras.layers.Rescaling(1 / 127.5, offset=-1),
                    keras.layers.Conv2D(4, 3, strides=2, name="local"),
                    keras.layers.BatchNormalization(),
                    keras.layers.ReLU(),
                    keras.layers.GlobalAveragePooling2D(),
                ]
            encoder = keras.Sequential(layers)
        return self.make(encoder, augmenter, linear)


def deep_infomax(estimator):
    def make(encoder, augmenter, linear):
        if linear:
            networks = [keras.layers.Dense(DIM, use_bias=False) for _ in range(2)]
        else:
            networks = [CriticEmbedding(8, output_offset=False), CriticEmbedding(8)]
        return DeepInfoMax(encoder, "local", *networks, augmenter, estimator=estimator)

    return make


METHODS["deep_infomax"] = LocalGlobalMethod(
    deep_infomax("infonce"),
    bad_arguments=(
        (
            lambda: DeepInfoMax(tiny_encoder(), "local", estimator="dv"),
            ValueError,
            "`estimator`",
        ),
        (lambda: DeepInfoMax(tiny_encoder(), 1.5), TypeError, "`feature_layer`"),
    ),
)
METHODS["deep_infomax_jsd"] = LocalGlobalMethod(deep_infomax("jsd"))
