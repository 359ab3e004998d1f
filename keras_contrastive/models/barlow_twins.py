"""Barlow Twins (Zbontar et al. 2021): redundancy reduction between two views."""

import keras

from keras_contrastive._validation import check_number, check_positive_number
from keras_contrastive.layers import ProjectionHead
from keras_contrastive.losses import barlow_twins_loss
from keras_contrastive.models.image_model import ImageContrastiveModel
from keras_contrastive.models.monitoring import view_pair_stats


@keras.saving.register_keras_serializable(package="keras_contrastive")
class BarlowTwins(ImageContrastiveModel):
    """Barlow Twins: self-supervised learning via redundancy reduction.

    Each batch of raw images is augmented twice; each view goes through the
    `encoder` and the `projection_head` in its own call (batch norm sees one view
    at a time, as in the paper's code), and the cross-correlation matrix C of the
    two views' batch-standardised projections is pushed towards the identity
    (`keras_contrastive.losses.barlow_twins_loss`, Zbontar et al. 2021, eq. 1):
    sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2. No negatives, no momentum
    network, no predictor; a large projection (the paper: 8192) helps. Under
    `tf.distribute` and JAX `DataParallel`, C uses the global batch's statistics.

    Args:
        encoder: a Keras model or layer from images to 2-D features (batch, dim).
        projection_head: default `ProjectionHead(hidden_dims=(2048, 2048),
            output_dim=2048)` (the paper: three layers of 8192 units).
        augmenter: default: a `SimCLRAugmenter` sized to the input images.
        redundancy_weight: lambda, the weight of the off-diagonal terms (the
            paper's 5e-3).
        scale_loss: a factor on the whole loss (the paper's code: 1/32 or 0.024).

    Logs `loss`, `contrastive_accuracy` (is the other view the closest of the
    batch's) and `embedding_std`.

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.layers import ProjectionHead
    from keras_contrastive.models import BarlowTwins

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    head = ProjectionHead(hidden_dims=(64,), output_dim=64)
    model = BarlowTwins(encoder, projection_head=head)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    ```
    """

    #: Each row's projections depend on that row only (without batch norm).
    supports_gradient_cache = True
    config_attributes = ("redundancy_weight", "scale_loss")

    def __init__(
        self,
        encoder,
        projection_head=None,
        augmenter=None,
        redundancy_weight=5e-3,
        scale_loss=1.0,
        **kwargs,
    ):
        super().__init__(encoder, projection_head, augmenter, **kwargs)
        self.redundancy_weight = check_number(
            "redundancy_weight", redundancy_weight, minimum=0
        )
        self.scale_loss = check_positive_number("scale_loss", scale_loss)

    def default_projection_head(self, feature_dim):
        return ProjectionHead(hidden_dims=(2048, 2048), output_dim=2048)

    def forward_pass(self, x, training=False):
        view_a, view_b = self.augment(x)
        return {
            "z_a": self.project(view_a, training),
            "z_b": self.project(view_b, training),
        }

    def compute_contrastive_loss(self, outputs):
        return barlow_twins_loss(
            outputs["z_a"],
            outputs["z_b"],
            redundancy_weight=self.redundancy_weight,
            scale_loss=self.scale_loss,
        )

    def compute_contrastive_stats(self, outputs):
        return view_pair_stats(outputs["z_a"], outputs["z_b"])
