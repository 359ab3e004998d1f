"""Learning without negatives: BYOL (Grill et al. 2020) and SimSiam (Chen & He 2021)."""

import keras
from keras import ops

from keras_contrastive.layers import (
    MultiView,
    PredictionHead,
    ProjectionHead,
    SimCLRAugmenter,
)
from keras_contrastive.losses import byol_loss
from keras_contrastive.models.contrastive_model import (
    ContrastiveModel,
    embedding_std,
    view_pair_accuracy,
)
from keras_contrastive.models.momentum import (
    MomentumPairs,
    MomentumState,
    momentum_copy,
)
from keras_contrastive.models.simclr import check_features, check_image_batch


class _PredictorModel(ContrastiveModel):
    """An online network with a predictor regressing a target network's projection.

    Shared by BYOL and SimSiam, which differ only in their target network
    (`_targets`) and its post-step update.
    """

    nested_config = ("encoder", "projection_head", "prediction_head", "augmenter")

    def __init__(
        self,
        encoder,
        projection_head=None,
        prediction_head=None,
        augmenter=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not callable(encoder):
            raise TypeError(
                f"`encoder` must be a Keras layer or model; got {type(encoder)}."
            )
        self.encoder = encoder
        self.projection_head = projection_head
        self.prediction_head = prediction_head
        self.augmenter = augmenter
        self.views = None

    def _default_projection_head(self, feature_dim):
        return ProjectionHead(hidden_dims=(feature_dim,), output_dim=128)

    def _default_prediction_head(self, feature_dim, projection_dim):
        return PredictionHead(hidden_dims=(feature_dim,), output_dim=projection_dim)

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
            self.projection_head = self._default_projection_head(features.shape[-1])
        z = self.projection_head(features, training=False)
        if self.prediction_head is None:
            self.prediction_head = self._default_prediction_head(
                features.shape[-1], z.shape[-1]
            )
        p = self.prediction_head(z, training=False)
        if p.shape[-1] != z.shape[-1]:
            raise ValueError(
                "`prediction_head` must output vectors of the projection's size "
                f"({z.shape[-1]}), which it regresses; it outputs {p.shape[-1]}."
            )
        self._build_target(view)
        self.built = True

    def _build_target(self, view):
        pass

    def _before_forward(self):
        pass

    def forward_pass(self, x, training=False):
        check_image_batch(x.shape, channels=3 if self._default_augmenter else None)
        # Views are always random; `training` switches batch norm / dropout. Both
        # views go through each network in one call (batch norm sees 2N images).
        self._before_forward()
        view_a, view_b = self.views(x, training=True)
        views = ops.concatenate([view_a, view_b], axis=0)
        features = self.encoder(views, training=training)
        check_features(features, self.encoder)
        z = self.projection_head(features, training=training)
        p = self.prediction_head(z, training=training)
        target = ops.stop_gradient(self._targets(views, z, training))
        n = ops.shape(view_a)[0]
        return {
            "p_a": p[:n],
            "p_b": p[n:],
            "target_a": target[:n],
            "target_b": target[n:],
            "z_a": z[:n],
        }

    def _targets(self, views, z, training):
        raise NotImplementedError

    @property
    def _default_augmenter(self):
        return isinstance(self.augmenter, SimCLRAugmenter)

    def compute_contrastive_loss(self, outputs):
        # Symmetrised: each view's prediction regresses the other view's target.
        loss_ab = byol_loss(outputs["p_a"], outputs["target_b"])
        loss_ba = byol_loss(outputs["p_b"], outputs["target_a"])
        return 0.5 * (ops.mean(loss_ab) + ops.mean(loss_ba))

    def compute_contrastive_stats(self, outputs):
        return {
            # Is the other view's target the closest of the batch's targets?
            "contrastive_accuracy": view_pair_accuracy(
                outputs["p_a"], outputs["target_b"]
            ),
            # Collapse monitor on the online projection (SimSiam, fig. 2).
            "embedding_std": embedding_std(outputs["z_a"]),
        }


@keras.saving.register_keras_serializable(package="keras_contrastive")
class BYOL(_PredictorModel):
    """BYOL: bootstrap your own latent (Grill et al. 2020).

    Each batch of raw images is augmented twice. The *online* network (`encoder`,
    `projection_head`, `prediction_head`) predicts, from each view, the projection
    of the other view by the *target* network: a momentum copy of the online
    encoder and projection head (non-trainable), updated after every optimizer
    step as theta_t <- m theta_t + (1 - m) theta_online. The loss is BYOL's
    regression loss (`keras_contrastive.losses.byol_loss`, 2 - 2 cos) of each
    prediction against the stop-gradient target of the other view, symmetrised:
    loss = (mean_i l(p_a,i, t_b,i) + mean_i l(p_b,i, t_a,i)) / 2, in [0, 4] (the
    paper sums the two terms; the mean keeps `BYOLLoss`'s scale). No negatives.

    `keras_contrastive.callbacks.MomentumSchedule(start, end=1.0)` gives BYOL's
    cosine schedule m_k = 1 - (1 - m_0)(cos(pi k / K) + 1) / 2; the momentum is
    computed inside the step from a step counter saved with the model, so
    `model.save` / `load_model` and `keras.callbacks.BackupAndRestore` resume
    exactly, target network included.

    Args:
        encoder: a Keras model or layer from images (as the augmenter returns them,
            in (0, 255) by default) to 2-D features (batch, dim).
        projection_head: default `ProjectionHead(hidden_dims=(dim,), output_dim=128)`.
        prediction_head: default `PredictionHead(hidden_dims=(dim,),
            output_dim=<projection size>)`; its output size must equal the
            projection's.
        augmenter: default: a `SimCLRAugmenter` sized to the input images.
        momentum: m of the target update, in [0, 1] (the schedule's start value
            when a `MomentumSchedule` is used).

    Logs `loss`, `contrastive_accuracy` (is the other view's target the closest
    of the batch's targets to the prediction) and `embedding_std` of the online
    projection (it falls towards 0 if the representation collapses).

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.callbacks import MomentumSchedule
    from keras_contrastive.models import BYOL

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = BYOL(encoder, momentum=0.99)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=2, verbose=0,
              callbacks=[MomentumSchedule(start=0.99, end=1.0)])
    ```
    """

    def __init__(
        self,
        encoder,
        projection_head=None,
        prediction_head=None,
        augmenter=None,
        momentum=0.996,
        **kwargs,
    ):
        super().__init__(
            encoder,
            projection_head=projection_head,
            prediction_head=prediction_head,
            augmenter=augmenter,
            **kwargs,
        )
        self.momentum_state = MomentumState(momentum, name="momentum_state")
        self.target_encoder = None
        self.target_head = None
        self._momentum_pairs = []

    @property
    def momentum(self):
        """The momentum given at construction (a schedule may override it)."""
        return self.momentum_state.momentum

    def _build_target(self, view):
        self.target_encoder = momentum_copy(self.encoder)
        self.target_head = momentum_copy(self.projection_head)
        self.target_head(self.target_encoder(view, training=False), training=False)
        self._momentum_pairs = [
            MomentumPairs(self.encoder, self.target_encoder),
            MomentumPairs(self.projection_head, self.target_head),
        ]

    def _before_forward(self):
        self.momentum_state.sync_once(self._momentum_pairs)

    def _targets(self, views, z, training):
        return self.target_head(
            self.target_encoder(views, training=training), training=training
        )

    def post_step(self, outputs):
        momentum = self.momentum_state.current()
        for pairs in self._momentum_pairs:
            pairs.update(momentum)
        self.momentum_state.advance()

    def set_momentum_schedule(self, start, end, total_steps, schedule="cosine"):
        """Anneals the target's momentum from `start` to `end` over `total_steps`
        optimizer steps (see `MomentumState.set_schedule`)."""
        self.momentum_state.set_schedule(start, end, total_steps, schedule)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SimSiam(_PredictorModel):
    """SimSiam: BYOL without the momentum network (Chen & He 2021).

    As `BYOL`, but the target of each view is the online network's own projection
    under stop-gradient: no momentum copy, no extra forward pass. The stop-gradient
    and the predictor are what prevents collapse; watch `embedding_std`.

    Args:
        encoder: a Keras model or layer from images to 2-D features (batch, dim).
        projection_head: default (SimSiam's projector ends with batch norm):
            `ProjectionHead(hidden_dims=(dim,), output_dim=128,
            output_batch_norm=True)`.
        prediction_head: default: a bottleneck `PredictionHead(hidden_dims=(p/4,),
            output_dim=p)` for a projection of size p, as the paper's 512 for 2048.
        augmenter: default: a `SimCLRAugmenter` sized to the input images.

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import SimSiam

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = SimSiam(encoder)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    ```
    """

    def _default_projection_head(self, feature_dim):
        return ProjectionHead(
            hidden_dims=(feature_dim,), output_dim=128, output_batch_norm=True
        )

    def _default_prediction_head(self, feature_dim, projection_dim):
        return PredictionHead(
            hidden_dims=(max(projection_dim // 4, 1),), output_dim=projection_dim
        )

    def _targets(self, views, z, training):
        return z
