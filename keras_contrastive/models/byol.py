"""BYOL (Grill et al. 2020): bootstrap your own latent with a momentum target."""

import keras

from keras_contrastive.models.momentum import MomentumModel
from keras_contrastive.models.predictor import PredictorModel


@keras.saving.register_keras_serializable(package="keras_contrastive")
class BYOL(MomentumModel, PredictorModel):
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
            projection's. For budgets of a few hundred steps, a linear predictor
            that starts as the identity (`PredictionHead(hidden_dims=(),
            output_dim=<projection size>, kernel_initializer="identity")`;
            Tian et al. 2021 show a linear predictor suffices) loses less of
            the random encoder's effective rank in the first steps than the
            randomly initialised MLP (docs/methods.md, short runs).
        augmenter: default: a `SimCLRAugmenter` sized to the input images. A
            `MultiCrop` gives more views; only its global views have targets
            (see `PredictorModel`).
        momentum: m of the target update, in [0, 1] (the schedule's start value
            when a `MomentumSchedule` is used).
        batch_norm_views: `"per_view"` (default): one call of each network per
            view, as the BYOL code and lightly; `"joint"`: one call on both
            views concatenated (batch norm sees 2N images). See
            `PredictorModel`.

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
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = BYOL(encoder, momentum=0.99)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=2, verbose=0,
              callbacks=[MomentumSchedule(start=0.99, end=1.0)])
    ```
    """

    config_attributes = ("momentum", "batch_norm_views")
    supports_multi_view = True
    momentum_networks = {
        "target_encoder": "encoder",
        "target_head": "projection_head",
    }

    def __init__(
        self,
        encoder,
        projection_head=None,
        prediction_head=None,
        augmenter=None,
        momentum=0.996,
        batch_norm_views="per_view",
        **kwargs,
    ):
        super().__init__(
            encoder,
            projection_head,
            augmenter,
            prediction_head=prediction_head,
            momentum=momentum,
            batch_norm_views=batch_norm_views,
            **kwargs,
        )

    def targets(self, views, z, training):
        features = self.target_encoder(views, training=training)
        return self.target_head(features, training=training)
