"""Instance discrimination with an offline memory bank (Wu et al. 2018)."""

import math

import keras
import numpy as np
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import (
    check_int,
    check_one_of,
    check_positive_int,
    check_positive_number,
    check_probability,
    check_seed,
    fail,
)
from keras_contrastive.layers import ProjectionHead
from keras_contrastive.layers.state import MemoryBank, l2_normalize
from keras_contrastive.models.example_ids import ExampleIdsInput
from keras_contrastive.models.image_model import ImageContrastiveModel
from keras_contrastive.models.monitoring import embedding_std, top1_accuracy

#: Added to masked logits: exp(-BIG) is exactly 0 yet everything stays finite.
_BIG = 1e9

LOSSES = ("info_nce", "nce")


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MemoryBankModel(ExampleIdsInput, ImageContrastiveModel):
    """Instance discrimination with a memory bank (Wu et al. 2018).

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

    Inputs follow `keras_contrastive.models.example_ids`: `fit((ids, images))` with
    NumPy arrays (ids: integers in [0, num_examples)), or datasets yielding `{"ids":
    ids, "images": images}` or `((ids, images),)`. Ids out of range raise a
    ValueError before training when they are visible (arrays: all ids; `tf.data`
    datasets and `PyDataset`s: the first batch). Inside the compiled step an out-of-
    range id cannot raise on every backend: its row reads a clipped entry, is not
    written, and is counted; `fit` then raises a ValueError at the end of that
    epoch.

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
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = MemoryBankModel(encoder, num_examples=64, num_negatives=32)
    model.compile(optimizer="adam")
    model.fit((ids, images), batch_size=16, epochs=1, verbose=0)
    ```
    """

    num_views = 1
    config_attributes = (
        "num_examples",
        "num_negatives",
        "temperature",
        "bank_momentum",
        "seed",
    )

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
        super().__init__(encoder, projection_head, augmenter, **kwargs)
        # An example needs at least one other example as its negative.
        self.num_examples = check_int("num_examples", num_examples, minimum=2)
        self.num_negatives = check_positive_int("num_negatives", num_negatives)
        self.temperature = check_positive_number("temperature", temperature)
        self.bank_momentum = check_probability("bank_momentum", bank_momentum)
        if self.bank_momentum == 1.0:
            fail("bank_momentum", "< 1 (1 never updates the bank)", bank_momentum)
        # Not `self.loss`: `compile` sets that attribute of a Keras model.
        self.loss_type = check_one_of("loss", loss, LOSSES)
        self.seed = check_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.memory_bank = None

    def default_projection_head(self, feature_dim):
        # Wu et al.: a linear map to 128 dimensions.
        return ProjectionHead(hidden_dims=(), output_dim=128, batch_norm=False)

    def build(self, input_shape):
        super().build(input_shape)
        self.memory_bank = MemoryBank(
            self.num_examples,
            self.projection_dim,
            momentum=self.bank_momentum,
            name="memory_bank",
        )

    def check_ids(self, ids, where):
        n = self.num_examples
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            bad = ids[(ids < 0) | (ids >= n)]
            raise ValueError(
                f"{where} must hold example ids in [0, num_examples - 1] = [0, "
                f"{n - 1}]. Received: {bad.size} out-of-range id(s), e.g. "
                f"{int(bad.flat[0])}"
            )

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_type}

    def training_callbacks(self):
        return [*super().training_callbacks(), _InvalidIdGuard()]

    # ------------------------------------------------------------------ forward

    def embed(self, images, training=False):
        """normalize(head(encoder(images))): the features the bank stores."""
        return l2_normalize(self.project(images, training))

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
        ids, images = self.split_input(x)
        (view,) = self.augment(images)
        features = self.embed(view, training=training)
        negative_ids, valid = self.sample_negatives(ids)
        bank = self.memory_bank
        return {
            "features": features,
            "ids": ids,
            "positives": ops.stop_gradient(bank.lookup(ids)),
            "negatives": ops.stop_gradient(ops.take(bank.entries, negative_ids, 0)),
            "negative_ids": negative_ids,
            "negative_mask": valid,
        }

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
            fail("model", "built (fit it for a step) before a refresh", self.name)
        embedder = _BankEmbedding(self.augmenter, self.encoder, self.projection_head)
        bank = np.array(ops.convert_to_numpy(self.memory_bank.entries))
        arrays = self.id_arrays(data)
        written = []
        if arrays is not None:
            ids, images = arrays
            self.check_ids(ids, where="the refresh data")
            # `predict` compiles the embedding once and shows its progress bar.
            features = embedder.predict(images, batch_size=batch_size, verbose=verbose)
            MemoryBank.write_finite_rows(bank, ids, features)
            written.append(ids)
        else:
            count = len(data) if hasattr(data, "__len__") else None
            bar = keras.utils.Progbar(count, verbose=verbose, unit_name="batch")
            for index, (ids, images) in enumerate(self.id_batches(data)):
                self.check_ids(ids, where="the refresh data")
                features = ops.convert_to_numpy(embedder.predict_on_batch(images))
                MemoryBank.write_finite_rows(bank, ids, features)
                written.append(ids)
                bar.update(index + 1)
        self.memory_bank.entries.assign(bank)
        return np.concatenate(written) if written else np.zeros((0,), "int64")


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
