"""MultiView and MultiCrop: several independently augmented views of one batch."""

import keras

from keras_contrastive._validation import (
    check_bool,
    check_int,
    check_layer,
    check_positive_int,
    check_seed,
    fail,
)
from keras_contrastive.layers.augmentation.base import DataLayer
from keras_contrastive.layers.augmentation.random_resized_crop import (
    check_area_fractions,
)
from keras_contrastive.layers.augmentation.simclr import SimCLRAugmenter


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

    @property
    def num_global(self):
        """Every view is a full-size ("global") view."""
        return self.num_views

    @property
    def value_range(self):
        return getattr(self.augmenter, "value_range", None)

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


#: Caron et al. 2020 (SwAV, sec. 4 and appendix): global crops cover 14-100% of the
#: image, local crops 5-14%.
MULTI_CROP_SCALES = ((0.14, 1.0), (0.05, 0.14))


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MultiCrop(DataLayer):
    """Multi-crop views: a few large crops and several small ones (Caron et al. 2020).

    Returns `num_global` views at `global_size` followed by `num_local` views at
    `local_size` (Caron et al. 2020, sec. 3.2: "two standard resolution crops and
    V additional low resolution crops that cover only small parts of the image").
    Each view is SimCLR's augmentation (`SimCLRAugmenter`: random resized crop with
    flip, colour distortion, optional blur) with the crop area drawn from
    `scales[0]` for global views and `scales[1]` for local ones; every view draws
    its own randomness. The small views add positives at a fraction of the cost of
    full-size ones: a 16 x 16 view costs about a quarter of a 32 x 32 one in a
    convolutional encoder.

    `SimCLR` and `BYOL` take it as their `augmenter`: they compare every global
    view with every other view (global or local), as SwAV and DINO pair a view
    only with the global views' targets. The encoder must accept both sizes
    (convolutions and global pooling, e.g. `keras.Input((None, None, 3))`).

    Args:
        global_size: size of the global views, an int or `(height, width)`.
        local_size: size of the local views, an int or `(height, width)`.
        num_global: number of global views (at least 2: the methods pair them).
        num_local: number of local views (0 or more).
        scales: `((global_low, global_high), (local_low, local_high))` ranges of
            the crops' area fractions.
        color_strength: colour distortion strength of every view (SimCLR: 0.5 on
            CIFAR-10, 1.0 on ImageNet).
        blur: whether the views are blurred with probability 0.5 (SimCLR's blur).
        value_range: `(low, high)` pixel range of inputs and outputs.
        seed: optional int for reproducible views.
        **kwargs: standard layer arguments.

    Output: a tuple of `num_global + num_local` image batches.

    Example:

    >>> import numpy as np
    >>> images = np.random.randint(0, 256, (4, 32, 32, 3), dtype="uint8")
    >>> views = MultiCrop(32, 16, num_global=2, num_local=3, blur=False)(images)
    >>> [tuple(view.shape) for view in views]
    [(4, 32, 32, 3), (4, 32, 32, 3), (4, 16, 16, 3), (4, 16, 16, 3), (4, 16, 16, 3)]
    """

    def __init__(
        self,
        global_size,
        local_size,
        num_global=2,
        num_local=6,
        scales=MULTI_CROP_SCALES,
        color_strength=0.5,
        blur=True,
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_global = check_int("num_global", num_global, minimum=2)
        self.num_local = check_int("num_local", num_local, minimum=0)
        if not isinstance(scales, (tuple, list)) or len(scales) != 2:
            fail(
                "scales",
                "a pair of area-fraction ranges ((global_low, global_high), "
                "(local_low, local_high))",
                scales,
            )
        self.scales = tuple(
            check_area_fractions(f"scales[{i}]", scale)
            for i, scale in enumerate(scales)
        )
        self.blur = check_bool("blur", blur)
        self.seed = check_seed("seed", seed)
        self.color_strength = color_strength
        self.global_size = global_size
        self.local_size = local_size

        def augmenter(size, scale, offset):
            return SimCLRAugmenter(
                size,
                crop_scale=scale,
                color_strength=color_strength,
                blur=blur,
                value_range=value_range,
                seed=None if seed is None else seed + offset,
                name=f"{self.name}_{'global' if offset == 0 else 'local'}",
            )

        # Both validate their own sizes and colour strength.
        self.global_augmenter = augmenter(global_size, self.scales[0], 0)
        self.local_augmenter = augmenter(local_size, self.scales[1], 1)
        self.value_range = self.global_augmenter.value_range

    @property
    def num_views(self):
        return self.num_global + self.num_local

    def _augmenters(self):
        return [self.global_augmenter] * self.num_global + [
            self.local_augmenter
        ] * self.num_local

    def call(self, images, training=True):
        return tuple(
            augmenter(images, training=training) for augmenter in self._augmenters()
        )

    def compute_output_spec(self, images, training=True):
        return tuple(
            augmenter.compute_output_spec(images, training=training)
            for augmenter in self._augmenters()
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "global_size": self.global_size,
                "local_size": self.local_size,
                "num_global": self.num_global,
                "num_local": self.num_local,
                "scales": [list(scale) for scale in self.scales],
                "color_strength": self.color_strength,
                "blur": self.blur,
                "value_range": list(self.value_range),
                "seed": self.seed,
            }
        )
        return config


def multi_view_augmenter(augmenter):
    """`augmenter` itself if it returns several views (MultiView, MultiCrop)."""
    return augmenter if isinstance(augmenter, (MultiView, MultiCrop)) else None
