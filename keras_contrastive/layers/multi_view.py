"""MultiView: several independently augmented views of one batch."""

import keras

from keras_contrastive._validation import check_layer, check_positive_int
from keras_contrastive.layers.augmentation.base import DataLayer


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MultiView(DataLayer):
    """Returns `num_views` augmentations of the same batch, as a tuple.

    Each view is a separate call of `augmenter`, which therefore draws fresh
    randomness for every view (and every call). With the per-sample augmenters of
    this package the views of one image are independent. Like the augmenters it
    runs inside a model on every backend and inside `tf.data` (returning a tuple,
    which `tf.data` keeps as a tuple).

    Args:
        augmenter: a Keras layer mapping an image batch to an augmented batch,
            e.g. `SimCLRAugmenter`.
        num_views: number of views (at least 1).
        **kwargs: standard layer arguments.

    Example:

    >>> import numpy as np
    >>> from keras_contrastive.layers import SimCLRAugmenter
    >>> images = np.random.randint(0, 256, (4, 16, 16, 3), dtype="uint8")
    >>> views = MultiView(SimCLRAugmenter(16, blur=False, seed=0))(images)
    >>> len(views), tuple(views[0].shape)
    (2, (4, 16, 16, 3))
    """

    def __init__(self, augmenter, num_views=2, **kwargs):
        super().__init__(**kwargs)
        self.augmenter = check_layer("augmenter", augmenter)
        self.num_views = check_positive_int("num_views", num_views)

    def call(self, images, training=True):
        return tuple(
            self.augmenter(images, training=training) for _ in range(self.num_views)
        )

    def compute_output_spec(self, images, training=True):
        spec = self.augmenter.compute_output_spec(images, training=training)
        return tuple(spec for _ in range(self.num_views))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "augmenter": keras.saving.serialize_keras_object(self.augmenter),
                "num_views": self.num_views,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["augmenter"] = keras.saving.deserialize_keras_object(config["augmenter"])
        return cls(**config)
