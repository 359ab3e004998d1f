"""SimCLR (Chen et al. 2020): two augmented views, one encoder, NT-Xent."""

import keras
from keras import ops

from keras_contrastive.layers import MultiView, ProjectionHead, SimCLRAugmenter
from keras_contrastive.losses import nt_xent
from keras_contrastive.losses._common import mask_columns_logits
from keras_contrastive.losses.view_pair import nt_xent_logits
from keras_contrastive.models.contrastive_model import (
    ContrastiveModel,
    embedding_std,
    example_batch,
    top1_accuracy,
)


def check_image_batch(shape, channels=None):
    """Raises a ValueError unless `shape` is (batch, height, width, channels)."""
    if len(shape) != 4:
        raise ValueError(
            "Expected a batch of images of shape (batch, height, width, channels); "
            f"got an input of rank {len(shape)} with shape {tuple(shape)}."
        )
    if channels is not None and shape[-1] is not None and shape[-1] != channels:
        raise ValueError(
            f"Expected images with {channels} channels (RGB, channels last); got "
            f"shape {tuple(shape)} with {shape[-1]} channels."
        )


def check_features(features, encoder):
    if len(features.shape) != 2:
        raise ValueError(
            "`encoder` must return a 2-D (batch, features) tensor; "
            f"{getattr(encoder, 'name', encoder)!r} returned shape "
            f"{tuple(features.shape)}. End it with a pooling layer such as "
            "keras.layers.GlobalAveragePooling2D()."
        )


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SimCLR(ContrastiveModel):
    """SimCLR: a simple framework for contrastive learning of visual representations.

    Each training batch of raw images is augmented twice (`augmenter`), both views
    go through the `encoder` (one call on the concatenated views, so batch norm sees
    all 2N images as in the paper) and the `projection_head`, and NT-Xent
    (`keras_contrastive.losses.NTXent`) pulls each pair of views together against the
    other 2N - 2 views of the batch. After training, `model.encoder` is the
    representation (the features before the head, as in the paper).

    Args:
        encoder: a Keras model or layer from images (as the augmenter returns them, in
            `value_range` (0, 255) by default) to 2-D features (batch, dim).
        projection_head: the MLP between features and the loss. Default:
            `ProjectionHead(hidden_dims=(dim,), output_dim=128)` sized to the encoder.
        augmenter: the random view generator. Default: a `SimCLRAugmenter` sized to the
            input images.
        temperature: NT-Xent's temperature.

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
        keras.layers.Rescaling(1 / 255),
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

    nested_config = ("encoder", "projection_head", "augmenter")

    def __init__(
        self, encoder, projection_head=None, augmenter=None, temperature=0.5, **kwargs
    ):
        super().__init__(**kwargs)
        if not callable(encoder):
            raise TypeError(
                f"`encoder` must be a Keras layer or model; got {type(encoder)}."
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; got {temperature}.")
        self.encoder = encoder
        self.projection_head = projection_head
        self.augmenter = augmenter
        self.temperature = float(temperature)
        self.views = None

    def build(self, input_shape):
        check_image_batch(input_shape)
        if self.augmenter is None:
            self.augmenter = SimCLRAugmenter(image_size=tuple(input_shape[1:3]))
        self.views = MultiView(self.augmenter, num_views=2)
        if self.projection_head is None:
            views = self.augmenter(example_batch(input_shape), training=False)
            features = self.encoder(views, training=False)
            self.projection_head = ProjectionHead(
                hidden_dims=(features.shape[-1],), output_dim=128
            )
        super().build(input_shape)

    def forward_pass(self, x, training=False):
        check_image_batch(x.shape, channels=3 if self._default_augmenter else None)
        # The views are always random (they are what the loss compares); `training`
        # only switches the networks (batch norm, dropout) between modes.
        view_a, view_b = self.views(x, training=True)
        features = self.encoder(
            ops.concatenate([view_a, view_b], axis=0), training=training
        )
        check_features(features, self.encoder)
        z = self.projection_head(features, training=training)
        n = ops.shape(view_a)[0]
        return {"z_a": z[:n], "z_b": z[n:], "features": features}

    @property
    def _default_augmenter(self):
        return isinstance(self.augmenter, SimCLRAugmenter)

    def compute_contrastive_loss(self, outputs):
        return ops.mean(
            nt_xent(outputs["z_a"], outputs["z_b"], temperature=self.temperature)
        )

    def compute_contrastive_stats(self, outputs):
        # NT-Xent's candidates: every other view (of every replica); the positive
        # is the twin view. The temperature does not change the argmax.
        logits, _, twin, self_index = nt_xent_logits(
            outputs["z_a"], outputs["z_b"], temperature=1.0
        )
        return {
            "contrastive_accuracy": top1_accuracy(
                mask_columns_logits(logits, self_index), twin
            ),
            "embedding_std": embedding_std(outputs["z_a"]),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            temperature=self.temperature,
        )
        return config
