"""MoCo v2 (He et al. 2020; Chen et al. 2020b): a momentum key encoder and a queue."""

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import (
    check_bool,
    check_instance,
    check_positive_int,
    check_positive_number,
    check_seed,
    fail,
)
from keras_contrastive.layers.state import FeatureQueue, l2_normalize
from keras_contrastive.losses import info_nce, mix_hard_negatives
from keras_contrastive.models.batch_norm_groups import encode_in_groups
from keras_contrastive.models.image_model import ImageContrastiveModel
from keras_contrastive.models.mochi import MoCHi
from keras_contrastive.models.momentum import MomentumModel
from keras_contrastive.models.monitoring import (
    embedding_std,
    global_row_index,
    top1_accuracy,
)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MoCo(MomentumModel, ImageContrastiveModel):
    """MoCo v2: momentum contrast with a queue of negatives (He et al. 2020).

    Each batch of raw images is augmented twice. The query view goes through the
    `encoder` and `projection_head`; the key view through their *momentum copies*
    (a key encoder and key head, non-trainable), updated after every optimizer
    step as theta_k <- m theta_k + (1 - m) theta_q (He et al. 2020, eq. 2). The loss is
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
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = MoCo(encoder, queue_size=256, momentum=0.99)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    features = model.encoder.predict(images, verbose=0)  # (64, 16)
    ```
    """

    momentum_networks = {"key_encoder": "encoder", "key_head": "projection_head"}
    nested_config = (*ImageContrastiveModel.nested_config, "hard_negative_mixing")
    config_attributes = (
        "queue_size",
        "momentum",
        "temperature",
        "symmetric",
        "batch_norm_groups",
        "seed",
    )

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
        super().__init__(
            encoder, projection_head, augmenter, momentum=momentum, **kwargs
        )
        self.queue_size = check_positive_int("queue_size", queue_size)
        self.temperature = check_positive_number("temperature", temperature)
        self.symmetric = check_bool("symmetric", symmetric)
        self.batch_norm_groups = check_positive_int(
            "batch_norm_groups", batch_norm_groups
        )
        if hard_negative_mixing is not None:
            check_instance(
                "hard_negative_mixing",
                hard_negative_mixing,
                MoCHi,
                "None or MoCHi(...)",
            )
            if hard_negative_mixing.num_hard > queue_size:
                fail(
                    "hard_negative_mixing",
                    f"MoCHi(...) with `num_hard` <= queue_size ({queue_size})",
                    hard_negative_mixing,
                )
        self.hard_negative_mixing = hard_negative_mixing
        self.seed = check_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.queue = None
        # The smallest batch a step is defined for: batch norm on every group.
        self.min_batch_size = 2 * self.batch_norm_groups

    def build(self, input_shape):
        super().build(input_shape)
        self.queue = FeatureQueue(self.queue_size, self.projection_dim, name="queue")

    # ------------------------------------------------------------------ forward

    def _queries(self, view, training):
        groups = self.batch_norm_groups
        features = encode_in_groups(self.encode, view, groups, training)
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
        view_q, view_k = self.augment(x)
        outputs = {
            "query": self._queries(view_q, training),
            "keys": self._keys(view_k, training),
        }
        if self.symmetric:
            outputs["query_b"] = self._queries(view_k, training)
            outputs["keys_a"] = self._keys(view_q, training)
        mixing = self.hard_negative_mixing
        if training and mixing and mixing.num_synthetic + mixing.num_query_mixes:
            for query, synthetic in (
                ("query", "synthetic"),
                ("query_b", "synthetic_b"),
            ):
                if query in outputs:
                    outputs[synthetic] = self._synthetic_negatives(outputs[query])
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

    # --------------------------------------------------------------------- loss

    def _direction_loss(self, query, keys, synthetic):
        negatives = [self.queue.keys] + ([] if synthetic is None else [synthetic])
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
        return {
            "contrastive_accuracy": top1_accuracy(similarity, global_row_index(query)),
            "embedding_std": embedding_std(outputs["query"]),
        }

    def post_step(self, outputs):
        super().post_step(outputs)  # the key networks' moving average
        # Every replica enqueues every replica's keys: the queues stay identical.
        self.queue.enqueue(distribute.gather(outputs["keys"]))
