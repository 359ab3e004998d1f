"""SimSiam (Chen & He 2021): BYOL without the momentum network."""

import keras

from keras_contrastive.layers import PredictionHead, ProjectionHead
from keras_contrastive.models.predictor import PredictorModel


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SimSiam(PredictorModel):
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
        batch_norm_views: `"per_view"` (default, one network call per view)
            or `"joint"` (one call on both views); see `PredictorModel`.

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import SimSiam

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = SimSiam(encoder)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    ```
    """

    def __init__(
        self,
        encoder,
        projection_head=None,
        prediction_head=None,
        augmenter=None,
        batch_norm_views="per_view",
        **kwargs,
    ):
        super().__init__(
            encoder,
            projection_head,
            augmenter,
            prediction_head=prediction_head,
            batch_norm_views=batch_norm_views,
            **kwargs,
        )

    def default_projection_head(self, feature_dim):
        # SimSiam's projector ends with batch norm (Chen & He 2021, sec. 4.1).
        return ProjectionHead(
            hidden_dims=(feature_dim,), output_dim=128, output_batch_norm=True
        )

    def default_prediction_head(self, feature_dim, projection_dim):
        # A bottleneck, as the paper's 512 for a 2048-d projection.
        return PredictionHead(
            hidden_dims=(max(projection_dim // 4, 1),), output_dim=projection_dim
        )

    def targets(self, views, z, training):
        return z
