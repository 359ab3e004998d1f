"""SimCLR (Chen et al. 2020): two augmented views, one encoder, NT-Xent."""

import keras
from keras import ops

from keras_contrastive._validation import check_positive_number
from keras_contrastive.losses import nt_xent
from keras_contrastive.models.image_model import (
    ImageContrastiveModel,
    check_batch_norm_views,
    global_view_pairs,
    map_views,
)
from keras_contrastive.models.monitoring import embedding_std, nt_xent_accuracy


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SimCLR(ImageContrastiveModel):
    """SimCLR: a simple framework for contrastive learning of visual representations.

    Each training batch of raw images is augmented twice (`augmenter`), both views
    go through the `encoder` and the `projection_head`, and NT-Xent
    (`keras_contrastive.losses.NTXent`) pulls each pair of views together against the
    other 2N - 2 views of the batch. After training, `model.encoder` is the
    representation (the features before the head, as in the paper).

    Args:
        encoder: a Keras model or layer from images (as the augmenter returns them, in
            `value_range` (0, 255) by default) to 2-D features (batch, dim).
        projection_head: the MLP between features and the loss. Default:
            `ProjectionHead(hidden_dims=(dim,), output_dim=128)` sized to the encoder.
        augmenter: the random view generator. Default: a `SimCLRAugmenter` sized to the
            input images. A `MultiCrop` gives more than two views (Caron et al.
            2020): the loss is then NT-Xent averaged over every pair of a global
            view with another view (global or local); local views are not
            compared with each other. Two views give SimCLR's loss exactly.
        temperature: NT-Xent's temperature.
        batch_norm_views: `"per_view"` (default): one encoder call per view, so
            batch norm normalises each view with its own statistics (as
            lightly and solo-learn); `"joint"`: one call on both views
            concatenated, batch norm over all 2N images. Per view learned
            better on the CIFAR-10 recipe (docs/methods.md, "Conventions"). See
            `keras_contrastive.models.image_model.map_views`.

    `fit(x)` takes unlabeled image batches (uint8 or float, channels last); labels are
    ignored. Logs `loss`, `contrastive_accuracy` (is the other view the most similar
    of the 2N - 1 candidates) and `embedding_std` (collapse monitor).

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import SimCLR

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = SimCLR(encoder, temperature=0.5)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    features = model.encoder.predict(images, verbose=0)  # (64, 16)
    ```
    """

    #: Both views of a row depend on that row only (without batch norm).
    supports_gradient_cache = True
    supports_multi_view = True
    config_attributes = ("temperature", "batch_norm_views")

    def __init__(
        self,
        encoder,
        projection_head=None,
        augmenter=None,
        temperature=0.5,
        batch_norm_views="per_view",
        **kwargs,
    ):
        super().__init__(encoder, projection_head, augmenter, **kwargs)
        self.temperature = check_positive_number("temperature", temperature)
        self.batch_norm_views = check_batch_norm_views(batch_norm_views)

    def forward_pass(self, x, training=False):
        def features_and_projection(view):
            features = self.encode(view, training)
            return features, self.projection_head(features, training=training)

        encoded = map_views(
            features_and_projection, self.augment(x), self.batch_norm_views
        )
        z = [projection for _, projection in encoded]
        global_features = [f for f, _ in encoded[: self.num_global_views]]
        outputs = {
            "z_a": z[0],
            "z_b": z[1],
            "features": ops.concatenate(global_features, 0),
        }
        if len(z) > 2:
            outputs["z_more"] = tuple(z[2:])
        return outputs

    def compute_contrastive_loss(self, outputs):
        z = [outputs["z_a"], outputs["z_b"], *outputs.get("z_more", ())]
        pairs = global_view_pairs(len(z), self.num_global_views)
        losses = [
            ops.mean(nt_xent(z[i], z[j], temperature=self.temperature))
            for i, j in pairs
        ]
        return ops.mean(ops.stack(losses))

    def compute_contrastive_stats(self, outputs):
        return {
            "contrastive_accuracy": nt_xent_accuracy(outputs["z_a"], outputs["z_b"]),
            "embedding_std": embedding_std(outputs["z_a"]),
        }
