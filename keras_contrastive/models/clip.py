"""CLIP (Radford et al. 2021) and SigLIP (Zhai et al. 2023): an image tower and a
text tower trained so that matching image-text pairs have similar embeddings."""

import math
import random

import keras
import numpy as np
from keras import ops

from keras_contrastive import _validation as v
from keras_contrastive.losses import siglip_loss, symmetric_info_nce
from keras_contrastive.losses._common import l2_normalize, to_float32
from keras_contrastive.models.contrastive_model import (
    ContrastiveModel,
    example_batch,
)
from keras_contrastive.models.fit_data import batch_count
from keras_contrastive.models.image_model import check_image_batch
from keras_contrastive.models.monitoring import embedding_std, view_pair_accuracy

#: CLIP's guard (Radford et al. 2021, sec. 2.5): the logit scale never exceeds 100.
MAX_LOGIT_SCALE = 100.0
LOSSES = ("softmax", "sigmoid")
#: The key of precomputed text-tower outputs in a batch's texts (frozen text tower).
TEXT_FEATURES = "text_features"
_DEFAULT_TEMPERATURE = 0.07
_SIGLIP_SCALE = 10.0  # Zhai et al. 2023: t' = log 10


def _is_strings(texts):
    """A host batch of strings (list / tuple of str, NumPy array of str)."""
    if isinstance(texts, np.ndarray):
        return texts.dtype.kind in "USO"
    if isinstance(texts, (list, tuple)):
        return len(texts) > 0 and isinstance(texts[0], (str, bytes, np.str_))
    return False


def _rows(value):
    """The number of rows of an array, list or dict of arrays (None if unknown)."""
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    if isinstance(value, (list, tuple)):
        return len(value)
    shape = getattr(value, "shape", None)
    return None if shape is None or not len(shape) else shape[0]


def _take(value, rows):
    if isinstance(value, dict):
        return {key: _take(item, rows) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [value[i] for i in rows]
    return value[rows]


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MaxValue(keras.constraints.Constraint):
    """Clips a variable to at most `max_value` after every optimizer update."""

    def __init__(self, max_value):
        self.max_value = float(max_value)

    def __call__(self, w):
        return ops.minimum(w, ops.cast(self.max_value, w.dtype))

    def get_config(self):
        return {"max_value": self.max_value}


@keras.saving.register_keras_serializable(package="keras_contrastive")
class EmbeddingTower(keras.Model):
    """One tower of a two-tower model for inference: `encoder`, then the linear
    `projection`, then L2 normalisation (float32). Either part may be None.

    `CLIP.image_embedder()` and `CLIP.text_embedder()` return these; they share
    the CLIP model's layers (no copy), and `predict` batches and compiles them.
    """

    def __init__(self, encoder=None, projection=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = v.check_layer("encoder", encoder, optional=True)
        self.projection = v.check_layer("projection", projection, optional=True)

    def call(self, inputs, training=False):
        x = inputs
        if self.encoder is not None:
            x = self.encoder(x, training=False)
        if self.projection is not None:
            x = self.projection(x)
        return l2_normalize(to_float32(x))

    def get_config(self):
        config = super().get_config()
        for key in ("encoder", "projection"):
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projection"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


class ImageTextPairs(keras.utils.PyDataset):
    """Batches of `(images, texts)` pairs for `fit`, texts tokenised on the host.

    JAX and PyTorch have no string tensors, so strings never enter the compiled
    step: each batch's texts are tokenised here (in the data pipeline, optionally
    in `workers`), padded to one fixed length by the tokenizer. `CLIP.fit` builds
    one of these when given strings; build it yourself for workers or a seed.

    Args:
        images: array (N, height, width, channels).
        texts: N strings (list, tuple or NumPy array of str), or N rows of token
            ids / a dict of such arrays (then no tokenizer is needed).
        tokenizer: callable from a list of strings to token ids (an int array or
            a dict of int arrays) of one fixed length, e.g.
            `lambda t: encoder.tokenize(t, sequence_length=encoder.sequence_length)`
            for a `SentenceEncoder`.
        batch_size: pairs per batch (the last batch may be smaller).
        drop_last: leave out a last batch smaller than `batch_size` (the pairs
            left out change with each epoch's shuffle), as PyTorch's
            `DataLoader(drop_last=True)` does.
        shuffle: reshuffle the order at every epoch.
        seed: int or None, for shuffling.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Each item is `((images, tokens),)`: the model input `x` is the pair.
    """

    def __init__(
        self,
        images,
        texts,
        tokenizer=None,
        batch_size=32,
        shuffle=False,
        seed=None,
        drop_last=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.images = images
        if _is_strings(texts):
            texts = v.check_strings("texts", texts)
            v.check_callable("tokenizer", tokenizer, "a callable tokenising strings")
        self.texts = texts
        _check_counts(images, texts)
        self.tokenizer = tokenizer
        self.batch_size = v.check_positive_int("batch_size", batch_size)
        self.shuffle = v.check_bool("shuffle", shuffle)
        self.drop_last = v.check_bool("drop_last", drop_last)
        self._rng = np.random.default_rng(v.check_seed("seed", seed))
        self.order = np.arange(len(images))
        if self.shuffle:
            self._rng.shuffle(self.order)

    def __len__(self):
        return batch_count(len(self.images), self.batch_size, self.drop_last)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        texts = _take(self.texts, rows)
        if _is_strings(texts):
            texts = self.tokenizer(texts)
        return ((self.images[rows], texts),)

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self.order)


class _PairBatches(keras.utils.PyDataset):
    """A user's `PyDataset` of `(images, texts)` batches (which Keras would read as
    `(x, y)`) as batches whose `x` is the pair, strings tokenised."""

    def __init__(self, source, tokenizer):
        super().__init__(
            workers=source.workers,
            use_multiprocessing=source.use_multiprocessing,
            max_queue_size=source.max_queue_size,
        )
        self.source = source
        self.tokenizer = tokenizer

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        images, texts = self.source[index]
        if _is_strings(texts):
            texts = self.tokenizer(v.check_strings("texts", texts))
        return ((images, texts),)

    def on_epoch_end(self):
        self.source.on_epoch_end()


def _check_counts(images, texts):
    n_images, n_texts = _rows(images), _rows(texts)
    if n_images is not None and n_texts is not None and n_images != n_texts:
        v.fail(
            "texts",
            f"one text per image ({n_images} images)",
            v.shown_as(f"{n_texts} texts"),
        )


def _is_tf_dataset(x):
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TensorFlow is optional
        return False
    return isinstance(x, tf.data.Dataset)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class CLIP(ContrastiveModel):
    """CLIP: contrastive language-image pre-training (Radford et al. 2021), and
    SigLIP's sigmoid loss (Zhai et al. 2023) with `loss="sigmoid"`.

    Two towers embed a batch of N images and their N texts; a linear projection
    of each tower maps to `embed_dim`, L2-normalised: I_i and T_j. With the
    learnable logit scale t (initialised to 1 / `temperature`, stored as log t
    and capped at 100, the paper's guard), the N x N logits are
    s_ij = t <I_i, T_j>.

    - `loss="softmax"` (CLIP, Radford et al. 2021, fig. 3): symmetric InfoNCE,
      the mean of the image-to-text and text-to-image cross-entropies
      (`keras_contrastive.losses.symmetric_info_nce`):

          L = 1/(2N) sum_i [ (logsumexp_j s_ij - s_ii) + (logsumexp_j s_ji - s_ii) ]

    - `loss="sigmoid"` (SigLIP, Zhai et al. 2023, Algorithm 1): every pair is a
      binary classification with a learnable bias b (initialised to -10, the
      scale to 10), `keras_contrastive.losses.siglip_loss`:

          L = -1/N sum_i sum_j log sigmoid(z_ij (s_ij + b)),  z_ij = 1 if i = j else -1

    Both use the global batch on several devices: under `tf.distribute` each
    replica compares its own images (texts) with every replica's texts (images),
    gathered with their gradients (open_clip's `local_loss` with
    `gather_with_grad`: an n x N block per replica, linear memory); under JAX
    `DataParallel` the step sees the global batch.

    Locking a tower: `freeze_text=True` is LiT ("locked-image text tuning", Zhai
    et al. 2022, with the roles reversed: there the image tower is locked),
    `freeze_image=True` LiT proper. A frozen tower runs in inference mode (no
    dropout, batch-norm statistics fixed); its projection still learns. With a
    frozen text tower the tower's outputs may be computed once
    (`text_features`) and fed instead of the texts: `fit((images,
    {"text_features": features}))` (LiT's precomputation).

    Args:
        image_encoder: a Keras model from images (as the augmenter returns them)
            to 2-D features (batch, dim): a small CNN, a keras-hub backbone with
            pooling, ...
        text_encoder: a Keras model from texts to 2-D features: a
            `keras_contrastive.text.SentenceEncoder` (token dicts; `fit` and
            `encode_text` tokenise strings with its tokenizer), or any Keras
            model over token ids (then pass `tokenizer` to feed strings).
        embed_dim: size of the joint embedding (the projections' output).
        temperature: initial softmax temperature: the logit scale starts at
            1 / temperature (CLIP: 0.07, scale 14.3). At least 0.01 (scale at most
            100). For `loss="sigmoid"` leave it at 0.07: the scale starts at
            SigLIP's 10 (set `initial_scale` instead).
        learn_temperature: whether the logit scale is learned (the CLIP paper:
            yes); if False it stays at its initial value.
        loss: "softmax" (CLIP) or "sigmoid" (SigLIP).
        freeze_image: lock the image tower (train its projection only).
        freeze_text: lock the text tower (LiT-style).
        image_augmenter: optional Keras layer applied to the images in training
            (random crops, flips, ...); not applied in `evaluate` or
            `encode_image`.
        tokenizer: optional callable from a list of strings to token ids of one
            fixed length (an int array or a dict of them), for text towers that
            have no `tokenize` method. Not saved with the model unless None.
        initial_scale: optional initial logit scale in (0, 100], overriding
            1 / temperature (softmax) and 10 (sigmoid).
        initial_bias: SigLIP's initial bias b (default -10); sigmoid only.
        **kwargs: `ContrastiveModel` arguments (`gradient_cache`, `name`).

    Inputs: `fit` takes `(images, texts)` pairs: `fit((images, texts))` or
    `fit(images, texts)` with NumPy images and a list of strings (tokenised on
    the host, per batch, `ImageTextPairs`), token-id arrays, or token dicts; a
    `tf.data.Dataset` or `keras.utils.PyDataset` yielding `(images, texts)`
    batches (string tensors in `tf.data` are tokenised with the text encoder's
    `tokenize_graph`). Logs `loss`, `contrastive_accuracy` (top-1 retrieval of
    the paired text / image in the batch, both directions averaged),
    `embedding_std` (of the image embeddings) and `logit_scale`.

    After training: `encode_image(images)` and `encode_text(texts)` give
    L2-normalised embeddings (NumPy float32); `predict(images)` too;
    `keras_contrastive.evaluation.zero_shot_classifier` and
    `retrieval_metrics` read them out.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_contrastive.models import CLIP

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    token_ids = np.random.randint(1, 100, (64, 6))  # or strings with a tokenizer
    image_tower = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    text_tower = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        keras.layers.Embedding(100, 16),
        keras.layers.GlobalAveragePooling1D(),
    ])
    model = CLIP(image_tower, text_tower, embed_dim=32)
    model.compile(optimizer="adam")
    model.fit((images, token_ids), batch_size=32, epochs=1, verbose=0)
    image_embeddings = model.encode_image(images, verbose=0)  # (64, 32), unit rows
    ```
    """

    logged_stats = ("contrastive_accuracy", "embedding_std", "logit_scale")
    #: Every output row depends on its own image and text only (towers without
    #: batch norm).
    supports_gradient_cache = True
    nested_config = ("image_encoder", "text_encoder", "image_augmenter")
    config_attributes = (
        "embed_dim",
        "temperature",
        "learn_temperature",
        "freeze_image",
        "freeze_text",
        "initial_scale",
        "initial_bias",
    )

    def __init__(
        self,
        image_encoder,
        text_encoder,
        embed_dim=512,
        temperature=_DEFAULT_TEMPERATURE,
        learn_temperature=True,
        loss="softmax",
        freeze_image=False,
        freeze_text=False,
        image_augmenter=None,
        tokenizer=None,
        initial_scale=None,
        initial_bias=-10.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_encoder = v.check_layer("image_encoder", image_encoder)
        self.text_encoder = v.check_layer("text_encoder", text_encoder)
        self.embed_dim = v.check_positive_int("embed_dim", embed_dim)
        # `self.loss` belongs to Keras' `compile`.
        self.loss_name = v.check_one_of("loss", loss, LOSSES)
        self.temperature = v.check_number("temperature", temperature, minimum=0.01)
        if self.loss_name == "sigmoid" and self.temperature != _DEFAULT_TEMPERATURE:
            v.fail(
                "temperature",
                f"left at {_DEFAULT_TEMPERATURE} for loss='sigmoid' (its scale starts "
                f"at SigLIP's {_SIGLIP_SCALE:g}; set `initial_scale` instead)",
                temperature,
            )
        self.learn_temperature = v.check_bool("learn_temperature", learn_temperature)
        self.freeze_image = v.check_bool("freeze_image", freeze_image)
        self.freeze_text = v.check_bool("freeze_text", freeze_text)
        self.image_augmenter = v.check_layer(
            "image_augmenter", image_augmenter, optional=True
        )
        self.tokenizer = v.check_callable(
            "tokenizer", tokenizer, "a callable tokenising strings", optional=True
        )
        if initial_scale is not None:
            initial_scale = v.check_number(
                "initial_scale", initial_scale, 0.0, MAX_LOGIT_SCALE, min_open=True
            )
        self.initial_scale = initial_scale
        self.initial_bias = v.check_number("initial_bias", initial_bias)
        if self.freeze_image:
            self.image_encoder.trainable = False
        if self.freeze_text:
            self.text_encoder.trainable = False
        self.image_projection = keras.layers.Dense(
            self.embed_dim, use_bias=False, name="image_projection"
        )
        self.text_projection = keras.layers.Dense(
            self.embed_dim, use_bias=False, name="text_projection"
        )
        self.log_scale = None
        self.logit_bias = None
        # Inference models sharing the layers, made on first use; kept out of
        # Keras' (and torch's) tracking so that saving sees each layer once.
        object.__setattr__(self, "_embedders", {})

    # ------------------------------------------------------------ properties

    @property
    def encoder(self):
        """The image tower (what `model.encoder` is for the image methods)."""
        return self.image_encoder

    @property
    def augmenter(self):
        # Read by `ContrastiveModel` to save the augmenter's random state.
        return self.image_augmenter

    @property
    def loss_type(self):
        """ "softmax" or "sigmoid"."""
        return self.loss_name

    @property
    def logit_scale(self):
        """t = exp(log t), clamped to at most 100 (a float32 scalar tensor)."""
        log_scale = ops.convert_to_tensor(self.log_scale)
        limit = math.log(MAX_LOGIT_SCALE)
        # Above the cap the gradient is 0; at or below it flows to log t.
        return ops.exp(ops.where(log_scale > limit, limit, log_scale))

    def starting_scale(self):
        if self.initial_scale is not None:
            return self.initial_scale
        return _SIGLIP_SCALE if self.loss_name == "sigmoid" else 1.0 / self.temperature

    # ------------------------------------------------------------ inputs

    def split_inputs(self, x):
        """`(images, texts)` from a model input: a pair or a dict with "images"
        and "texts"."""
        if isinstance(x, dict) and set(x) == {"images", "texts"}:
            return x["images"], x["texts"]
        if isinstance(x, (tuple, list)) and len(x) == 2:
            return x[0], x[1]
        v.fail(
            "x",
            '(images, texts) pairs: a tuple or a dict with "images" and "texts"',
            v.summarize(x),
        )

    def text_tokenizer(self):
        """The host tokenizer for strings: `tokenizer`, or the text encoder's
        `tokenize` padded to its fixed `sequence_length`; None if neither."""
        if self.tokenizer is not None:
            return self.tokenizer
        tokenize = getattr(self.text_encoder, "tokenize", None)
        if tokenize is None:
            return None
        length = getattr(self.text_encoder, "sequence_length", None)
        if length is None:
            return tokenize
        return _FixedLengthTokenizer(self.text_encoder, length)

    def _require_tokenizer(self):
        tokenizer = self.text_tokenizer()
        if tokenizer is None:
            v.fail(
                "tokenizer",
                "given to feed strings to a text encoder without a `tokenize` "
                "method (strings cannot enter a compiled JAX or PyTorch step)",
                None,
            )
        return tokenizer

    def _pair_data(self, x, y, batch_size, shuffle, drop_last=False):
        """The data of `fit` / `evaluate` with the pair as the model input `x`.

        Returns `(x, batch_size)`: strings are wrapped in an `ImageTextPairs`
        (batched there), datasets of `(images, texts)` batches are re-packed.
        """
        if y is not None and getattr(x, "ndim", None) == 4:
            x = (x, y)  # fit(images, texts)
        elif y is not None:
            v.fail("y", "None for CLIP: pass (images, texts) as x", v.summarize(y))
        if isinstance(x, keras.utils.PyDataset):
            batch = x[0] if len(x) else None
            if (
                isinstance(batch, (tuple, list))
                and len(batch) == 2
                and getattr(batch[0], "ndim", None) == 4
            ):
                return _PairBatches(x, self._tokenizer_if_strings(batch[1])), None
            return x, batch_size
        if _is_tf_dataset(x):
            return self._pair_dataset(x), batch_size
        if isinstance(x, dict) and set(x) == {"images", "texts"}:
            x = (x["images"], x["texts"])
        if isinstance(x, (tuple, list)) and len(x) == 2:
            images, texts = x
            if not hasattr(images, "shape"):
                images = np.asarray(images)
            check_image_batch(getattr(images, "shape", ()), name="images")
            if isinstance(texts, dict) and TEXT_FEATURES in texts:
                self._check_text_features(texts)
            if _is_strings(texts):
                texts = v.check_strings("texts", texts)
            _check_counts(images, texts)
            if _is_strings(texts):
                data = ImageTextPairs(
                    images,
                    texts,
                    self._require_tokenizer(),
                    batch_size=batch_size or 32,
                    shuffle=bool(shuffle),
                    drop_last=drop_last,
                    # Seeded by keras.utils.set_random_seed (Python's generator).
                    seed=random.getrandbits(31),
                )
                return data, None
            return (images, texts), batch_size
        return x, batch_size

    def _tokenizer_if_strings(self, texts):
        return self._require_tokenizer() if _is_strings(texts) else None

    def _pair_dataset(self, dataset):
        """A tf.data dataset of `(images, texts)` batches as `((images, texts),)`;
        string texts tokenised with the text encoder's `tokenize_graph`."""
        import tensorflow as tf

        spec = dataset.element_spec
        if not (
            isinstance(spec, tuple)
            and len(spec) == 2
            and isinstance(spec[0], tf.TensorSpec)
            and spec[0].shape.rank == 4
        ):
            return dataset
        tokenize = None
        if isinstance(spec[1], tf.TensorSpec) and spec[1].dtype == tf.string:
            tokenize = getattr(self.text_encoder, "tokenize_graph", None)
            if tokenize is None:
                v.fail(
                    "x",
                    "a tf.data.Dataset of token ids, or of strings with a text "
                    "encoder that has `tokenize_graph` (SentenceEncoder)",
                    v.shown_as("a dataset of strings"),
                )

        def pack(images, texts):
            if tokenize is not None:
                texts = tokenize(texts)
            return ((images, texts),)

        return dataset.map(pack)

    def _check_text_features(self, texts):
        if not self.freeze_text:
            v.fail(
                "texts",
                f'token ids or strings; precomputed {{"{TEXT_FEATURES}": ...}} need '
                "freeze_text=True (a trained text tower changes its outputs)",
                v.shown_as(f'a dict with "{TEXT_FEATURES}"'),
            )

    # ------------------------------------------------------------ build

    def _create_scale_variables(self):
        if self.log_scale is not None:
            return
        self.log_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.starting_scale())),
            trainable=self.learn_temperature,
            constraint=MaxValue(math.log(MAX_LOGIT_SCALE)),
            name="log_logit_scale",
        )
        if self.loss_name == "sigmoid":
            self.logit_bias = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(self.initial_bias),
                name="logit_bias",
            )

    def build(self, input_shape):
        images_shape, _ = self.split_inputs(input_shape)
        check_image_batch(images_shape, name="images")
        self._create_scale_variables()
        self.forward_pass(example_batch(input_shape), training=False)
        self.built = True

    # ------------------------------------------------------------ method hooks

    def _features(self, tower, inputs, training, name):
        features = tower(inputs, training=training)
        if len(features.shape) != 2:
            v.fail(
                name,
                "a network returning 2-D (batch, features) tensors",
                tuple(features.shape),
                received_as=f"{getattr(tower, 'name', name)}(inputs).shape",
            )
        return features

    def embed_images(self, images, training=False):
        """L2-normalised float32 image embeddings (batch, embed_dim)."""
        features = self._features(
            self.image_encoder,
            images,
            training and not self.freeze_image,
            "image_encoder",
        )
        return l2_normalize(to_float32(self.image_projection(features)))

    def embed_texts(self, texts, training=False):
        """L2-normalised float32 text embeddings from token ids (or a dict of
        them, or precomputed `{"text_features": ...}`)."""
        if isinstance(texts, dict) and TEXT_FEATURES in texts:
            self._check_text_features(texts)
            features = texts[TEXT_FEATURES]
        else:
            features = self._features(
                self.text_encoder,
                texts,
                training and not self.freeze_text,
                "text_encoder",
            )
        return l2_normalize(to_float32(self.text_projection(features)))

    def forward_pass(self, x, training=False):
        images, texts = self.split_inputs(x)
        check_image_batch(images.shape, name="images")
        _check_counts(images, texts)
        if self.image_augmenter is not None:
            images = self.image_augmenter(images, training=training)
        return {
            "z_a": self.embed_images(images, training),
            "z_b": self.embed_texts(texts, training),
        }

    def compute_contrastive_loss(self, outputs):
        images, texts = outputs["z_a"], outputs["z_b"]
        scale = self.logit_scale
        if self.loss_name == "softmax":
            return ops.mean(symmetric_info_nce(images, texts, temperature=1.0 / scale))
        bias = ops.convert_to_tensor(self.logit_bias)
        return ops.mean(siglip_loss(images, texts, logit_scale=scale, logit_bias=bias))

    def compute_contrastive_stats(self, outputs):
        images, texts = outputs["z_a"], outputs["z_b"]
        accuracy = 0.5 * (
            view_pair_accuracy(images, texts) + view_pair_accuracy(texts, images)
        )
        return {
            "contrastive_accuracy": accuracy,
            "embedding_std": embedding_std(images),
            "logit_scale": ops.cast(self.logit_scale, "float32"),
        }

    def call(self, inputs, training=False):
        """Image embeddings of a batch of images, or `(image, text)` embeddings
        of a pair."""
        if isinstance(inputs, (tuple, list, dict)):
            images, texts = self.split_inputs(inputs)
            return self.embed_images(images), self.embed_texts(texts)
        return self.embed_images(inputs)

    # ------------------------------------------------------------ fit

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        shuffle=True,
        validation_split=0.0,
        validation_data=None,
        drop_last=None,
        **kwargs,
    ):
        drop_last = self.resolve_drop_last(drop_last)
        if validation_split:
            x, y, validation_data = self._split_validation(x, y, validation_split)
        x, batch_size = self._pair_data(x, y, batch_size, shuffle, drop_last)
        if validation_data is not None:
            validation_data, _ = self._pair_data(
                validation_data, None, batch_size, False
            )
        return super().fit(
            x,
            batch_size=batch_size,
            shuffle=shuffle,
            validation_data=validation_data,
            drop_last=drop_last,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        x, batch_size = self._pair_data(x, y, batch_size, False)
        return super().evaluate(x, batch_size=batch_size, **kwargs)

    def _split_validation(self, x, y, validation_split):
        """Keras' `validation_split` for pairs: the last fraction, before any
        shuffling."""
        v.check_number("validation_split", validation_split, 0.0, 1.0, max_open=True)
        if y is not None:
            x, y = (x, y), None
        if isinstance(x, dict) and set(x) == {"images", "texts"}:
            x = (x["images"], x["texts"])
        if not (isinstance(x, (tuple, list)) and len(x) == 2):
            v.fail(
                "validation_split",
                "0 unless x holds arrays (images, texts); pass validation_data",
                validation_split,
            )
        images, texts = x
        n = _rows(images)
        cut = int(n * (1.0 - validation_split))
        if cut < self.min_batch_size or n - cut < 1:
            v.fail(
                "validation_split",
                f"leaving both parts non-empty (of {n})",
                validation_split,
            )
        train = (images[:cut], _take(texts, range(cut)))
        held_out = (images[cut:], _take(texts, range(cut, n)))
        return train, None, held_out

    # ------------------------------------------------------------ inference

    def _embedder(self, kind):
        if kind not in self._embedders:
            if kind == "image":
                tower = EmbeddingTower(
                    self.image_encoder, self.image_projection, name="image_embedder"
                )
            elif kind == "text":
                tower = EmbeddingTower(
                    self.text_encoder, self.text_projection, name="text_embedder"
                )
            elif kind == "features":  # text-tower outputs -> embeddings
                tower = EmbeddingTower(
                    None, self.text_projection, name="text_feature_embedder"
                )
            else:  # the text tower alone, in inference mode
                tower = _RawTower(self.text_encoder, name="text_tower")
            self._embedders[kind] = tower
        return self._embedders[kind]

    def image_embedder(self):
        """A Keras model from images to L2-normalised embeddings (shares this
        model's layers; no augmentation)."""
        self._check_built("image_embedder")
        return self._embedder("image")

    def text_embedder(self):
        """A Keras model from token ids (what the text tower takes) to
        L2-normalised embeddings (shares this model's layers)."""
        self._check_built("text_embedder")
        return self._embedder("text")

    def _check_built(self, what):
        if not self.built:
            raise ValueError(
                f"`{what}` needs a built CLIP model: call `fit` first, or "
                "`model.build_for((images, texts))` on a sample batch."
            )

    def encode_image(self, images, batch_size=256, verbose="auto"):
        """L2-normalised image embeddings, a float32 NumPy array (N, embed_dim).

        Runs in inference mode (no augmentation), batched and compiled
        (`predict`), with a progress bar unless `verbose=0`.
        """
        self._check_built("encode_image")
        images = images if hasattr(images, "shape") else np.asarray(images)
        check_image_batch(images.shape, name="images")
        batch_size = v.check_positive_int("batch_size", batch_size)
        out = self._embedder("image").predict(
            images, batch_size=batch_size, verbose=verbose
        )
        return np.asarray(ops.convert_to_numpy(out), np.float32)

    def text_features(self, texts, batch_size=256, verbose="auto"):
        """The text tower's outputs (before the projection), float32 NumPy.

        Strings go through the encoder's own `encode` when it has one
        (`SentenceEncoder`: batches sorted by length), else through the
        tokenizer and `predict`. With `freeze_text=True` these never change:
        compute them once and `fit((images, {"text_features": features}))`.
        """
        batch_size = v.check_positive_int("batch_size", batch_size)
        tower = self.text_encoder
        if _is_strings(texts) or isinstance(texts, str):
            texts = v.check_strings("texts", texts)
            encode = getattr(tower, "encode", None)
            if callable(encode) and self.tokenizer is None:
                out = encode(texts, batch_size=batch_size, verbose=verbose)
                return np.asarray(ops.convert_to_numpy(out), np.float32)
            texts = self._require_tokenizer()(texts)
        out = self._embedder("raw_text").predict(
            texts, batch_size=batch_size, verbose=verbose
        )
        return np.asarray(ops.convert_to_numpy(out), np.float32)

    def encode_text(self, texts, batch_size=256, verbose="auto"):
        """L2-normalised text embeddings, a float32 NumPy array (N, embed_dim).

        `texts`: a list of strings (tokenised on the host), token ids or a dict
        of them, or `{"text_features": ...}` (precomputed tower outputs).
        """
        self._check_built("encode_text")
        batch_size = v.check_positive_int("batch_size", batch_size)
        if isinstance(texts, dict) and TEXT_FEATURES in texts:
            features = texts[TEXT_FEATURES]
        else:
            features = self.text_features(texts, batch_size, verbose)
        out = self._embedder("features").predict(
            features, batch_size=batch_size, verbose=0
        )
        return np.asarray(ops.convert_to_numpy(out), np.float32)

    # ------------------------------------------------------------ saving

    def get_config(self):
        config = super().get_config()
        config["loss"] = self.loss_name
        return config


class _RawTower(keras.Model):
    """A layer as a model (for `predict`), in inference mode."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs, training=False):
        return self.layer(inputs, training=False)


class _FixedLengthTokenizer:
    """`encoder.tokenize(texts, sequence_length=L)`: one shape for every batch."""

    def __init__(self, encoder, length):
        self.encoder, self.length = encoder, length

    def __call__(self, texts):
        return self.encoder.tokenize(texts, sequence_length=self.length)
