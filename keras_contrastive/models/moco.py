"""MoCo v2 (He et al. 2020; Chen et al. 2020b): a momentum key encoder and a queue."""

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive.layers import MultiView, ProjectionHead, SimCLRAugmenter
from keras_contrastive.losses import info_nce, mix_hard_negatives
from keras_contrastive.models.contrastive_model import (
    ContrastiveModel,
    embedding_std,
    top1_accuracy,
)
from keras_contrastive.models.momentum import (
    FeatureQueue,
    MomentumPairs,
    MomentumState,
    l2_normalize,
    momentum_copy,
)
from keras_contrastive.models.simclr import check_features, check_image_batch


def _check_positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    return value


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MoCHi:
    """MoCHi's hard negative mixing (Kalantidis et al. 2020), as a MoCo option.

    For each query, the `num_hard` queue entries most similar to it are its hard
    negatives; `num_synthetic` synthetic negatives are mixes of pairs of them and
    `num_query_mixes` more mix the query itself into one of them (with a weight
    below 0.5, so they stay negatives). They are normalised, carry no gradient and
    join the queue as extra per-query negatives of the loss (training only). See
    `keras_contrastive.losses.mix_hard_negatives`.

    Args:
        num_hard: N, hard negatives considered per query (at most the queue size).
        num_synthetic: s, synthetic negatives mixed from two hard negatives.
        num_query_mixes: s', synthetic negatives mixed from the query and one hard
            negative.

    Example:

    >>> mixing = MoCHi(num_hard=1024, num_synthetic=1024, num_query_mixes=256)
    """

    def __init__(self, num_hard=1024, num_synthetic=1024, num_query_mixes=256):
        self.num_hard = _check_positive_int(num_hard, "num_hard")
        for name, value in (
            ("num_synthetic", num_synthetic),
            ("num_query_mixes", num_query_mixes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"`{name}` must be an int >= 0; got {value!r}.")
        if num_synthetic > 0 and num_hard < 2:
            raise ValueError(
                "MoCHi's `num_synthetic` mixes pairs of hard negatives: it needs "
                f"`num_hard` >= 2; got num_hard={num_hard}."
            )
        self.num_synthetic = num_synthetic
        self.num_query_mixes = num_query_mixes

    def get_config(self):
        return {
            "num_hard": self.num_hard,
            "num_synthetic": self.num_synthetic,
            "num_query_mixes": self.num_query_mixes,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"MoCHi(num_hard={self.num_hard}, num_synthetic={self.num_synthetic}, "
            f"num_query_mixes={self.num_query_mixes})"
        )


def _chunk_bounds(n, groups):
    """Boundaries of `groups` contiguous chunks of n rows (sizes differ by <= 1)."""
    return [(i * n) // groups for i in range(groups + 1)]


def encode_in_groups(network, x, groups, training, permutation=None):
    """`network(x)` with batch-norm statistics computed per group of rows.

    The batch (optionally reordered by `permutation`) is cut into `groups`
    contiguous chunks, each a separate call, and the results are put back in the
    original order. One device then behaves like `groups` devices with per-device
    batch norm: the single-device equivalent of MoCo's shuffled BN.
    """
    if groups == 1:
        return network(x, training=training)
    if permutation is not None:
        x = ops.take(x, permutation, axis=0)
    # A tensor when the batch size is dynamic (TensorFlow graphs): slicing works.
    bounds = _chunk_bounds(ops.shape(x)[0], groups)
    parts = [
        network(x[bounds[i] : bounds[i + 1]], training=training) for i in range(groups)
    ]
    out = ops.concatenate(parts, axis=0)
    if permutation is not None:
        out = ops.take(out, ops.argsort(permutation), axis=0)
    return out


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MoCo(ContrastiveModel):
    """MoCo v2: momentum contrast with a queue of negatives (He et al. 2020).

    Each batch of raw images is augmented twice. The query view goes through the
    `encoder` and `projection_head`; the key view through their *momentum copies*
    (a key encoder and key head, non-trainable), updated after every optimizer
    step as theta_k <- m theta_k + (1 - m) theta_q (seed eq. 10). The loss is
    InfoNCE (`keras_contrastive.losses.info_nce`) of each query against its key,
    the other keys of the batch and the `queue_size` keys of past batches kept in
    a FIFO queue (`FeatureQueue`); this step's keys are enqueued after the
    optimizer step, replacing the oldest. The queue works with any batch size,
    including one that does not divide `queue_size` and a final partial batch.

    The momentum, the key networks, the queue, its pointer and the momentum
    schedule's position are model variables: `model.save` / `load_model` and
    `keras.callbacks.BackupAndRestore` resume training exactly.
    `keras_contrastive.callbacks.MomentumSchedule` anneals the momentum (computed
    inside the step from a step counter, so no per-batch callback runs).

    Batch-norm leakage (sec. 3.3 of the paper): with `batch_norm_groups=G > 1` the
    queries are encoded in G chunks and the keys in G chunks of a random
    permutation of the batch, so a query and its key rarely share batch-norm
    statistics: the single-device equivalent of MoCo's shuffled BN (it costs G
    smaller calls instead of one). The batch must hold at least 2 G images.

    Args:
        encoder: a Keras model or layer from images (as the augmenter returns them,
            in (0, 255) by default) to 2-D features (batch, dim).
        projection_head: the MLP between features and the loss. Default (MoCo v2):
            `ProjectionHead(hidden_dims=(dim,), output_dim=128)`.
        augmenter: the random view generator. Default: a `SimCLRAugmenter` sized
            to the input images (MoCo v2's augmentation is SimCLR's).
        queue_size: number of past keys used as negatives.
        momentum: m of the key networks' update, in [0, 1].
        temperature: InfoNCE's temperature.
        hard_negative_mixing: optional `MoCHi(...)` to add MoCHi's synthetic
            hard negatives.
        symmetric: if True, also contrast the key view's query against the query
            view's key and average the two losses (MoCo v3 style); only the key
            view's keys are enqueued either way.
        batch_norm_groups: G >= 1, see above.

    `fit(x)` takes unlabeled image batches (labels are ignored). Logs `loss`,
    `contrastive_accuracy` (is the query's own key the most similar of all keys
    and queue entries) and `embedding_std` (collapse monitor).

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import MoCo

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = MoCo(encoder, queue_size=256, momentum=0.99)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    features = model.encoder.predict(images, verbose=0)  # (64, 16)
    ```
    """

    nested_config = ("encoder", "projection_head", "augmenter", "hard_negative_mixing")

    def __init__(
        self,
        encoder,
        projection_head=None,
        augmenter=None,
        queue_size=65536,
        momentum=0.999,
        temperature=0.2,
        hard_negative_mixing=None,
        symmetric=False,
        batch_norm_groups=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not callable(encoder):
            raise TypeError(
                f"`encoder` must be a Keras layer or model; got {type(encoder)}."
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; got {temperature}.")
        self.queue_size = _check_positive_int(queue_size, "queue_size")
        self.batch_norm_groups = _check_positive_int(
            batch_norm_groups, "batch_norm_groups"
        )
        if hard_negative_mixing is not None and not isinstance(
            hard_negative_mixing, MoCHi
        ):
            raise TypeError(
                "`hard_negative_mixing` must be None or a MoCHi(...) instance; got "
                f"{hard_negative_mixing!r}."
            )
        if hard_negative_mixing is not None and hard_negative_mixing.num_hard > (
            queue_size
        ):
            raise ValueError(
                f"MoCHi's `num_hard` ({hard_negative_mixing.num_hard}) cannot exceed "
                f"`queue_size` ({queue_size})."
            )
        self.encoder = encoder
        self.projection_head = projection_head
        self.augmenter = augmenter
        self.temperature = float(temperature)
        self.hard_negative_mixing = hard_negative_mixing
        self.symmetric = bool(symmetric)
        self.seed = seed
        self.momentum_state = MomentumState(momentum, name="momentum_state")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.views = None
        self.key_encoder = None
        self.key_head = None
        self.queue = None
        self._momentum_pairs = []
        # The smallest batch a step is defined for: batch norm on every group.
        self.min_batch_size = 2 * self.batch_norm_groups

    @property
    def momentum(self):
        """The momentum given at construction (a schedule may override it)."""
        return self.momentum_state.momentum

    def build(self, input_shape):
        check_image_batch(input_shape)
        if self.augmenter is None:
            self.augmenter = SimCLRAugmenter(image_size=tuple(input_shape[1:3]))
        self.views = MultiView(self.augmenter, num_views=2)
        # Every network is built by one symbolic call (a KerasTensor batch of 2).
        view = keras.KerasTensor(
            (2,) + tuple(self.augmenter.compute_output_shape(input_shape)[1:])
        )
        features = self.encoder(view, training=False)
        check_features(features, self.encoder)
        if self.projection_head is None:
            self.projection_head = ProjectionHead(
                hidden_dims=(features.shape[-1],), output_dim=128
            )
        z = self.projection_head(features, training=False)
        self.queue = FeatureQueue(self.queue_size, z.shape[-1], name="queue")
        self.key_encoder = momentum_copy(self.encoder)
        self.key_head = momentum_copy(self.projection_head)
        self.key_head(self.key_encoder(view, training=False), training=False)
        self._momentum_pairs = [
            MomentumPairs(self.encoder, self.key_encoder),
            MomentumPairs(self.projection_head, self.key_head),
        ]
        self.built = True

    # ------------------------------------------------------------------ forward

    def _queries(self, view, training):
        features = encode_in_groups(
            self.encoder, view, self.batch_norm_groups, training
        )
        check_features(features, self.encoder)
        return self.projection_head(features, training=training)

    def _keys(self, view, training):
        permutation = None
        if self.batch_norm_groups > 1:
            permutation = keras.random.shuffle(
                ops.arange(ops.shape(view)[0]),
                seed=distribute.replica_seed(self.seed_generator),
            )
        features = encode_in_groups(
            self.key_encoder, view, self.batch_norm_groups, training, permutation
        )
        keys = self.key_head(features, training=training)
        return ops.stop_gradient(l2_normalize(keys))

    def forward_pass(self, x, training=False):
        check_image_batch(x.shape, channels=3 if self._default_augmenter else None)
        n = x.shape[0]
        if n is not None and n < self.min_batch_size:
            raise ValueError(
                f"MoCo with batch_norm_groups={self.batch_norm_groups} needs at "
                f"least {self.min_batch_size} images per batch; got {n}."
            )
        self.momentum_state.sync_once(self._momentum_pairs)
        # Views are always random; `training` switches batch norm / dropout.
        view_q, view_k = self.views(x, training=True)
        outputs = {
            "query": self._queries(view_q, training),
            "keys": self._keys(view_k, training),
        }
        if self.symmetric:
            outputs["query_b"] = self._queries(view_k, training)
            outputs["keys_a"] = self._keys(view_q, training)
        mixing = self.hard_negative_mixing
        if (
            training
            and mixing is not None
            and mixing.num_synthetic + mixing.num_query_mixes > 0
        ):
            outputs["synthetic"] = self._synthetic_negatives(outputs["query"])
            if self.symmetric:
                outputs["synthetic_b"] = self._synthetic_negatives(outputs["query_b"])
        return outputs

    def _synthetic_negatives(self, query):
        mixing = self.hard_negative_mixing
        synthetic = mix_hard_negatives(
            ops.stop_gradient(l2_normalize(query)),
            self.queue.keys,
            num_hard=mixing.num_hard,
            num_synthetic=mixing.num_synthetic,
            num_query_mixes=mixing.num_query_mixes,
            seed=distribute.replica_seed(self.seed_generator),
        )
        return ops.stop_gradient(synthetic)

    @property
    def _default_augmenter(self):
        return isinstance(self.augmenter, SimCLRAugmenter)

    # --------------------------------------------------------------------- loss

    def _direction_loss(self, query, keys, synthetic):
        negatives = [self.queue.keys]
        if synthetic is not None:
            negatives.append(synthetic)
        return ops.mean(
            info_nce(query, keys, negatives=negatives, temperature=self.temperature)
        )

    def compute_contrastive_loss(self, outputs):
        loss = self._direction_loss(
            outputs["query"], outputs["keys"], outputs.get("synthetic")
        )
        if self.symmetric:
            other = self._direction_loss(
                outputs["query_b"], outputs["keys_a"], outputs.get("synthetic_b")
            )
            loss = 0.5 * (loss + other)
        return loss

    def compute_contrastive_stats(self, outputs):
        # The loss's candidates for query i: every key of the batch and the queue.
        query = l2_normalize(outputs["query"])
        keys = distribute.gather(outputs["keys"])
        candidates = ops.concatenate([keys, self.queue.keys], axis=0)
        similarity = ops.matmul(query, ops.transpose(candidates))
        n = ops.shape(query)[0]
        positive = ops.arange(n, dtype="int32") + distribute.replica_offset(n)
        return {
            "contrastive_accuracy": top1_accuracy(similarity, positive),
            "embedding_std": embedding_std(outputs["query"]),
        }

    # --------------------------------------------------------------- post step

    def post_step(self, outputs):
        momentum = self.momentum_state.current()
        for pairs in self._momentum_pairs:
            pairs.update(momentum)
        self.momentum_state.advance()
        # Every replica enqueues every replica's keys: the queues stay identical.
        self.queue.enqueue(distribute.gather(outputs["keys"]))

    def set_momentum_schedule(self, start, end, total_steps, schedule="cosine"):
        """Anneals the key networks' momentum from `start` to `end` over
        `total_steps` optimizer steps (see `MomentumState.set_schedule`)."""
        self.momentum_state.set_schedule(start, end, total_steps, schedule)

    # ------------------------------------------------------------ serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            queue_size=self.queue_size,
            momentum=self.momentum,
            temperature=self.temperature,
            symmetric=self.symmetric,
            batch_norm_groups=self.batch_norm_groups,
            seed=self.seed,
        )
        return config
