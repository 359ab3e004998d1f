"""Instance discrimination with an offline memory bank (Wu et al. 2018)."""

import math

import keras
import numpy as np
from keras import ops

from keras_contrastive import distribute
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models.contrastive_model import (
    ContrastiveModel,
    embedding_std,
    top1_accuracy,
)
from keras_contrastive.models.momentum import (
    check_momentum,
    check_saved_shape,
    l2_normalize,
    unit_rows,
)
from keras_contrastive.models.peek import first_input
from keras_contrastive.models.simclr import check_features, check_image_batch

#: Added to masked logits: exp(-BIG) is exactly 0 yet everything stays finite.
_BIG = 1e9

LOSSES = ("info_nce", "nce")

_PAIR_HINT = (
    "Pass example ids with the images: `fit((ids, images))` with arrays, or a "
    "dataset yielding `{'ids': ids, 'images': images}` dicts (a dataset yielding "
    "`(ids, images)` pairs is read by Keras as (x, y); yield `((ids, images),)`)."
)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MemoryBank(keras.layers.Layer):
    """One L2-normalised feature per training example, indexed by example id.

    State (non-trainable, saved with the model): `entries`, float32
    (num_examples, dim), initialised with random unit vectors (as Wu et al.'s
    code), and `invalid_ids`, an int32 count of out-of-range ids met by `update`.
    The bank is never back-propagated through.

    Args:
        num_examples: number of entries (ids run from 0 to num_examples - 1).
        dim: feature dimension.
        momentum: proximal momentum of `update`: v <- normalize(m v + (1 - m) f);
            0 overwrites.

    Loading weights saved with a different `num_examples` or `dim` raises a
    ValueError.
    """

    def __init__(self, num_examples, dim, momentum=0.5, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_examples", num_examples), ("dim", dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
        self.num_examples = num_examples
        self.dim = dim
        self.momentum = check_momentum(momentum, "bank_momentum")
        self.entries = self.add_weight(
            shape=(num_examples, dim),
            dtype="float32",
            initializer=unit_rows,
            trainable=False,
            name="entries",
        )
        self.invalid_ids = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            name="invalid_ids",
        )
        self.built = True

    def valid(self, ids):
        return ops.logical_and(ids >= 0, ids < self.num_examples)

    def lookup(self, ids):
        """The entries of `ids` (out-of-range ids read the nearest valid entry)."""
        ids = ops.clip(ids, 0, self.num_examples - 1)
        return ops.take(self.entries, ids, axis=0)

    def update(self, ids, features):
        """Proximal update of the entries of `ids` with `features` (normalised).

        Out-of-range ids cannot raise inside a compiled step on every backend:
        they leave the bank untouched and are counted in `invalid_ids`.
        """
        ids = ops.cast(ids, "int32")
        valid = self.valid(ids)
        clipped = ops.clip(ids, 0, self.num_examples - 1)
        old = ops.take(self.entries, clipped, axis=0)
        new = l2_normalize(
            self.momentum * old + (1.0 - self.momentum) * l2_normalize(features)
        )
        new = ops.where(valid[:, None], new, old)
        self.entries.assign(ops.scatter_update(self.entries, clipped[:, None], new))
        invalid = ops.sum(ops.cast(ops.logical_not(valid), "int32"))
        self.invalid_ids.assign(self.invalid_ids + invalid)

    def check_ids(self, ids, where="ids"):
        """Raises a ValueError if the NumPy `ids` are not all in range."""
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_examples):
            bad = ids[(ids < 0) | (ids >= self.num_examples)]
            raise ValueError(
                f"Example ids must lie in [0, num_examples - 1] = [0, "
                f"{self.num_examples - 1}]; {where} holds {bad.size} out-of-range "
                f"id(s), e.g. {int(bad.flat[0])}."
            )

    def load_own_variables(self, store):
        check_saved_shape(
            self,
            store,
            (self.num_examples, self.dim),
            lambda shape: (
                f"The saved memory bank {self.name!r} has shape {shape} "
                f"(num_examples, dim), but this model's bank is "
                f"({self.num_examples}, {self.dim}). Rebuild the model with the "
                "`num_examples` and head `output_dim` it was saved with."
            ),
        )
        super().load_own_variables(store)

    def get_config(self):
        return {
            **super().get_config(),
            "num_examples": self.num_examples,
            "dim": self.dim,
            "momentum": self.momentum,
        }


def split_ids_and_images(x):
    """(ids, images) from a `(ids, images)` pair or an `{"ids", "images"}` dict."""
    if isinstance(x, dict):
        if set(x) >= {"ids", "images"}:
            return x["ids"], x["images"]
        raise ValueError(
            f"A dict input needs the keys 'ids' and 'images'; got {sorted(x)}."
        )
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return x[0], x[1]
    shape = getattr(x, "shape", None)
    raise ValueError(
        "MemoryBankModel needs each example's id with its image; got a single "
        f"input of shape {None if shape is None else tuple(shape)}. {_PAIR_HINT}"
    )


def _shape_pair(input_shape):
    """(ids shape, images shape) from a build `input_shape` structure."""
    if isinstance(input_shape, dict):
        if set(input_shape) >= {"ids", "images"}:
            return tuple(input_shape["ids"]), tuple(input_shape["images"])
        raise ValueError(
            "A dict input needs the keys 'ids' and 'images'; got "
            f"{sorted(input_shape)}."
        )
    if (
        isinstance(input_shape, (tuple, list))
        and len(input_shape) == 2
        and all(isinstance(s, (tuple, list)) for s in input_shape)
    ):
        return tuple(input_shape[0]), tuple(input_shape[1])
    raise ValueError(
        "MemoryBankModel needs each example's id with its image; got a single "
        f"input of shape {tuple(input_shape)}. {_PAIR_HINT}"
    )


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MemoryBankModel(ContrastiveModel):
    """Instance discrimination with a memory bank (Wu et al. 2018, seed sec. 6.2).

    Every training example is its own class. A bank (`MemoryBank`) keeps one
    L2-normalised feature per example, indexed by the example's id, which the input
    pipeline supplies with the images. Each step encodes an augmented view of each
    image, f_i = normalize(head(encoder(aug(x_i)))), and contrasts it with its own
    bank entry v_i (the positive) and `num_negatives` entries drawn uniformly at
    random from the bank, never the anchor's own (a draw that hits it is masked
    out); the bank is never back-propagated through. After the optimizer step the
    batch's entries move towards the new features with a proximal momentum:
    v_i <- normalize(m v_i + (1 - m) f_i) (`bank_momentum` m; 0 overwrites).
    `keras_contrastive.callbacks.MemoryBankRefresh` recomputes the whole bank with
    the current encoder at the end of an epoch.

    Losses (s = cos / temperature):

    - `"info_nce"`: l_i = -log [exp(s_i,pos) / (exp(s_i,pos) + sum_k exp(s_i,k))];
    - `"nce"`: Wu et al.'s noise-contrastive estimation, with P(i|f) = exp(s)/Z,
      uniform noise P_n = 1/n and m = `num_negatives`, h = P / (P + m P_n),
      l_i = -log h(pos) - sum_k log(1 - h(k)); the normaliser Z is estimated on
      each batch as n * mean_k exp(s_k) (no gradient; Wu et al. fix it once).

    The negatives of a step are one draw shared by the batch (memory O(K d), not
    O(N K d)).

    Inputs: `fit((ids, images))` with NumPy arrays (ids: integers in
    [0, num_examples)), or datasets yielding `{"ids": ids, "images": images}` or
    `((ids, images),)`. Ids out of range raise a ValueError before training when
    they are visible (arrays: all ids; `tf.data` datasets and `PyDataset`s: the
    first batch). Inside the compiled step an out-of-range id cannot raise on
    every backend: its row reads a clipped entry, is not written, and is counted;
    `fit` then raises a ValueError at the end of that epoch.

    Args:
        encoder: a Keras model or layer from images to 2-D features.
        num_examples: number of training examples n (the bank's rows).
        projection_head: default (Wu et al.): a linear 128-d head,
            `ProjectionHead(hidden_dims=(), output_dim=128)`.
        augmenter: default: a `SimCLRAugmenter` sized to the images.
        num_negatives: K, bank entries drawn per step.
        temperature: tau (Wu et al.: 0.07).
        bank_momentum: m of the bank update, in [0, 1).
        loss: "info_nce" or "nce".
        seed: optional int seeding the negative sampling.

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import MemoryBankModel

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    ids = np.arange(64)
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = MemoryBankModel(encoder, num_examples=64, num_negatives=32)
    model.compile(optimizer="adam")
    model.fit((ids, images), batch_size=16, epochs=1, verbose=0)
    ```
    """

    nested_config = ("encoder", "projection_head", "augmenter")

    def __init__(
        self,
        encoder,
        num_examples,
        projection_head=None,
        augmenter=None,
        num_negatives=4096,
        temperature=0.07,
        bank_momentum=0.5,
        loss="info_nce",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not callable(encoder):
            raise TypeError(
                f"`encoder` must be a Keras layer or model; got {type(encoder)}."
            )
        for name, value in (
            ("num_examples", num_examples),
            ("num_negatives", num_negatives),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
        if num_examples < 2:
            raise ValueError(
                f"`num_examples` must be at least 2 (an example needs a negative); "
                f"got {num_examples}."
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; got {temperature}.")
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}; got {loss!r}.")
        bank_momentum = check_momentum(bank_momentum, "bank_momentum")
        if bank_momentum == 1.0:
            raise ValueError("`bank_momentum` must be < 1 (1 never updates the bank).")
        self.encoder = encoder
        self.num_examples = num_examples
        self.projection_head = projection_head
        self.augmenter = augmenter
        self.num_negatives = num_negatives
        self.temperature = float(temperature)
        self.bank_momentum = bank_momentum
        self.loss_type = loss
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.memory_bank = None

    def build(self, input_shape):
        ids_shape, image_shape = _shape_pair(input_shape)
        if len(ids_shape) not in (1, 2) or (len(ids_shape) == 2 and ids_shape[1] != 1):
            raise ValueError(
                "`ids` must be a (batch,) vector of example ids; got shape "
                f"{ids_shape}."
            )
        check_image_batch(image_shape)
        if self.augmenter is None:
            self.augmenter = SimCLRAugmenter(image_size=tuple(image_shape[1:3]))
        view = keras.KerasTensor(
            (2,) + tuple(self.augmenter.compute_output_shape(image_shape)[1:])
        )
        features = self.encoder(view, training=False)
        check_features(features, self.encoder)
        if self.projection_head is None:
            self.projection_head = ProjectionHead(
                hidden_dims=(), output_dim=128, batch_norm=False
            )
        z = self.projection_head(features, training=False)
        self.memory_bank = MemoryBank(
            self.num_examples,
            z.shape[-1],
            momentum=self.bank_momentum,
            name="memory_bank",
        )
        self.built = True

    # ------------------------------------------------------------------ forward

    def embed(self, images, training=False):
        """normalize(head(encoder(images))): the features the bank stores."""
        features = self.encoder(images, training=training)
        check_features(features, self.encoder)
        return l2_normalize(self.projection_head(features, training=training))

    def sample_negatives(self, ids):
        """(negative_ids (K,), valid (N, K)): K uniform draws from the bank and a
        mask that is False where a draw is the anchor's own entry."""
        negative_ids = keras.random.randint(
            (self.num_negatives,),
            0,
            self.num_examples,
            dtype="int32",
            seed=self.seed_generator,
        )
        valid = ops.not_equal(negative_ids[None, :], ids[:, None])
        return negative_ids, valid

    def forward_pass(self, x, training=False):
        ids, images = split_ids_and_images(x)
        ids = ops.reshape(ops.cast(ids, "int32"), (-1,))
        check_image_batch(images.shape, channels=3 if self._default_augmenter else None)
        # The view is always random (as in SimCLR); `training` switches the networks.
        view = self.augmenter(images, training=True)
        features = self.embed(view, training=training)
        negative_ids, valid = self.sample_negatives(ids)
        return {
            "features": features,
            "ids": ids,
            "positives": ops.stop_gradient(self.memory_bank.lookup(ids)),
            "negatives": ops.stop_gradient(
                ops.take(self.memory_bank.entries, negative_ids, axis=0)
            ),
            "negative_ids": negative_ids,
            "negative_mask": valid,
        }

    @property
    def _default_augmenter(self):
        return isinstance(self.augmenter, SimCLRAugmenter)

    def call(self, inputs, training=False):
        """The representation `encoder(images)`; `inputs` may also carry ids."""
        if isinstance(inputs, (dict, tuple, list)):
            _, inputs = split_ids_and_images(inputs)
        elif len(inputs.shape) < 3:
            split_ids_and_images(inputs)  # raises the "ids with images" error
        return self.encoder(inputs, training=training)

    # --------------------------------------------------------------------- loss

    def _logits(self, outputs):
        """(positive logits (N,), negative logits (N, K) masked, mask (N, K))."""
        inv_tau = 1.0 / self.temperature
        f = outputs["features"]
        positive = ops.sum(f * outputs["positives"], axis=-1) * inv_tau
        negative = ops.matmul(f, ops.transpose(outputs["negatives"])) * inv_tau
        valid = outputs["negative_mask"]
        return positive, ops.where(valid, negative, -_BIG), valid

    def compute_contrastive_loss(self, outputs):
        positive, negative, valid = self._logits(outputs)
        if self.loss_type == "info_nce":
            all_logits = ops.concatenate([positive[:, None], negative], axis=1)
            return ops.mean(ops.logsumexp(all_logits, axis=1) - positive)
        return ops.mean(self._nce(positive, negative, valid))

    def _nce(self, positive, negative, valid):
        valid_f = ops.cast(valid, "float32")
        # log Z = log n + log mean_k exp(s_k) over the valid draws of the whole
        # (every replica's) batch, no gradient.
        all_negative = ops.stop_gradient(distribute.gather(negative))
        all_valid = distribute.gather(valid_f)
        count = ops.maximum(ops.sum(all_valid), 1.0)
        shift = ops.max(all_negative)
        mean_exp = ops.sum(ops.exp(all_negative - shift) * all_valid) / count
        log_z = ops.stop_gradient(
            math.log(self.num_examples) + shift + ops.log(mean_exp)
        )
        log_noise = math.log(self.num_negatives / self.num_examples)  # log(m P_n)
        log_p_pos = positive - log_z
        log_p_neg = negative - log_z
        log_h_pos = log_p_pos - ops.logaddexp(log_p_pos, log_noise)
        log_one_minus_h = log_noise - ops.logaddexp(log_p_neg, log_noise)
        return -log_h_pos - ops.sum(log_one_minus_h * valid_f, axis=1)

    def compute_contrastive_stats(self, outputs):
        positive, negative, _ = self._logits(outputs)
        logits = ops.concatenate([positive[:, None], negative], axis=1)
        n = ops.shape(positive)[0]
        return {
            "contrastive_accuracy": top1_accuracy(logits, ops.zeros((n,), "int32")),
            "embedding_std": embedding_std(outputs["features"]),
        }

    # --------------------------------------------------------------- post step

    def post_step(self, outputs):
        # Every replica writes every replica's rows: the banks stay identical.
        self.memory_bank.update(
            distribute.gather(outputs["ids"]), distribute.gather(outputs["features"])
        )

    # --------------------------------------------------------------- refresh

    def refresh_memory_bank(self, data, batch_size=256, verbose=1):
        """Recomputes the bank entries of every example in `data`.

        Each entry becomes normalize(head(encoder(images))) with the current
        networks in inference mode (the augmenter only resizes). Shows a progress
        bar when `verbose`.

        Args:
            data: `(ids, images)` arrays, an `{"ids", "images"}` dict of arrays, or
                an iterable of such batches (e.g. a `tf.data.Dataset`).
            batch_size: batch size when `data` holds arrays.
            verbose: 0 (silent) or 1 (progress bar).

        Returns:
            The NumPy array of the ids written.
        """
        if not self.built:
            raise ValueError(
                "Build the model (e.g. fit it for a step) before refreshing its bank."
            )
        embedder = _BankEmbedding(self.augmenter, self.encoder, self.projection_head)
        bank = np.array(ops.convert_to_numpy(self.memory_bank.entries))
        if _holds_arrays(data):
            ids, images = split_ids_and_images(data)
            ids = np.asarray(ids).reshape(-1).astype("int64")
            self.memory_bank.check_ids(ids, where="the refresh data")
            # `predict` compiles the embedding once and shows its progress bar.
            bank[ids] = embedder.predict(images, batch_size=batch_size, verbose=verbose)
            written = [ids]
        else:
            count = len(data) if hasattr(data, "__len__") else None
            bar = keras.utils.Progbar(count, verbose=verbose, unit_name="batch")
            written = []
            for index, batch in enumerate(data):
                if isinstance(batch, (tuple, list)) and len(batch) == 1:
                    batch = batch[0]
                ids, images = split_ids_and_images(batch)
                ids = np.asarray(ops.convert_to_numpy(ids)).reshape(-1).astype("int64")
                self.memory_bank.check_ids(ids, where="the refresh data")
                bank[ids] = ops.convert_to_numpy(embedder.predict_on_batch(images))
                written.append(ids)
                bar.update(index + 1)
        self.memory_bank.entries.assign(bank)
        return np.concatenate(written) if written else np.zeros((0,), "int64")

    # -------------------------------------------------------------------- fit

    def _check_inputs(self, x):
        """Checks the inputs Python can see before Keras compiles the step.

        An error raised inside the first compiled step would leave a JAX model
        without its variables, so every visible mistake is caught here: inputs
        without ids, dataset `(ids, images)` pairs that Keras would read as
        `(x, y)`, and out-of-range ids (all ids of arrays, the first batch's of
        datasets).
        """
        if isinstance(x, np.ndarray):
            split_ids_and_images(x)  # raises: images without ids
        if isinstance(x, (dict, tuple, list)):
            ids, _ = split_ids_and_images(x)
            if isinstance(ids, (np.ndarray, list, range)) and self.memory_bank:
                self.memory_bank.check_ids(ids, where="`x`")
            return
        batch = first_input(x, raw=True)
        if batch is None:
            return
        if isinstance(batch, (tuple, list)) and len(batch) == 1:
            batch = batch[0]
        elif (
            isinstance(batch, (tuple, list))
            and len(batch) in (2, 3)
            and len(np.shape(batch[0])) == 1
        ):
            raise ValueError(
                "The dataset yields (ids, images) pairs, which Keras reads as "
                f"(x, y), so the images would never reach the model. {_PAIR_HINT}"
            )
        elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            batch = batch[0]  # (x, y[, sample_weight]): labels are ignored
        ids, _ = split_ids_and_images(batch)
        if self.memory_bank is not None:
            self.memory_bank.check_ids(
                ops.convert_to_numpy(ids), where="the first batch of `x`"
            )

    def fit(self, x=None, y=None, batch_size=None, callbacks=None, **kwargs):
        self._check_inputs(x)
        self._build_from(x)
        self._check_inputs(x)  # the ids, now that the bank exists
        callbacks = list(callbacks or []) + [_InvalidIdGuard()]
        return super().fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        self._check_inputs(x)
        self._build_from(x)
        self._check_inputs(x)
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    # ------------------------------------------------------------ serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            num_examples=self.num_examples,
            num_negatives=self.num_negatives,
            temperature=self.temperature,
            bank_momentum=self.bank_momentum,
            loss=self.loss_type,
            seed=self.seed,
        )
        return config


def _holds_arrays(data):
    """True for `(ids, images)` / `{"ids", "images"}` made of NumPy arrays."""
    if isinstance(data, dict) or (isinstance(data, (tuple, list)) and len(data) == 2):
        ids, images = split_ids_and_images(data)
        return isinstance(ids, (np.ndarray, list, range)) and isinstance(
            images, np.ndarray
        )
    return False


class _BankEmbedding(keras.Model):
    """normalize(head(encoder(augmenter(images)))) in inference mode, as a model
    whose `predict` is compiled; it shares the layers of the memory bank model."""

    def __init__(self, augmenter, encoder, head):
        super().__init__(name="bank_embedding")
        self.augmenter = augmenter
        self.encoder = encoder
        self.head = head
        self.built = True

    def call(self, images, training=False):
        view = self.augmenter(images, training=False)
        features = self.encoder(view, training=False)
        return l2_normalize(self.head(features, training=False))


class _InvalidIdGuard(keras.callbacks.Callback):
    """Raises at the end of an epoch in which the step met out-of-range ids."""

    def on_train_begin(self, logs=None):
        if self.model.memory_bank is not None:
            self.model.memory_bank.invalid_ids.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        bank = self.model.memory_bank
        if bank is None:
            return
        count = int(ops.convert_to_numpy(bank.invalid_ids))
        if count:
            raise ValueError(
                f"{count} example id(s) outside [0, num_examples - 1] = [0, "
                f"{bank.num_examples - 1}] reached the training step in epoch "
                f"{epoch + 1}; their bank entries were not updated. Check the ids "
                "your input pipeline yields."
            )
