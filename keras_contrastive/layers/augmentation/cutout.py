"""RandomCutout: masks one random rectangle per sample (DeVries & Taylor 2017)."""

import keras

from keras_contrastive._validation import check_pair, check_probability, fail, is_number
from keras_contrastive.layers.augmentation import geometry
from keras_contrastive.layers.augmentation.base import ImageAugmentationLayer


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomCutout(ImageAugmentationLayer):
    """Fills one rectangle per selected sample with a constant.

    The rectangle's centre is uniform over the image and it may be cut by the
    border (as in Cutout); its height and width are `size` times the image's, with
    `size` fixed or drawn per sample from a `(low, high)` range.

    Why not `keras.layers.RandomErasing` (Zhong et al. 2020, in Keras 3.15): it
    is a different augmentation. Cutout's patch has a set size and its centre is
    uniform over the image, so it is often cut by the border; Keras' draws the
    patch's width and height fractions independently (square roots of uniform
    draws in `scale`), fills it with Gaussian noise by default, and a single
    `factor` f makes the per-image probability itself uniform in [0, f] (mean
    f / 2), where `rate` here is the probability. This layer also draws its
    randomness per replica like the other image layers of this package.

    Args:
        size: side of the rectangle as a fraction of the image side, a number in
            (0, 1] or a `(low, high)` range. Default 0.5 (Cutout's CIFAR setting,
            16 px on 32 px images).
        rate: probability that a sample gets a cutout. Default 1.0.
        fill_value: the fill, in pixel units; `None` (default) uses the middle of
            `value_range` (zero after mean normalisation, as in the paper).
        value_range: `(low, high)` pixel range.
        seed: optional int for reproducible draws.
        **kwargs: standard layer arguments.

    Example:

    >>> import numpy as np
    >>> images = np.random.randint(0, 256, (4, 16, 16, 3), dtype="uint8")
    >>> tuple(RandomCutout(size=0.25, seed=0)(images).shape)
    (4, 16, 16, 3)
    """

    def __init__(
        self,
        size=0.5,
        rate=1.0,
        fill_value=None,
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.size = check_pair(
            "size", size, minimum=0.0, maximum=1.0, allow_scalar=True
        )
        self.rate = check_probability("rate", rate)
        if fill_value is not None and not is_number(fill_value):
            fail("fill_value", "a number or None", fill_value, TypeError)
        self.fill_value = None if fill_value is None else float(fill_value)

    num_uniforms = 4

    def transform(self, images, u):
        b = self.backend
        dtype = self.work_dtype
        shape = tuple(b.core.shape(images))
        h = b.core.cast(shape[1], dtype)
        w = b.core.cast(shape[2], dtype)
        fraction = self.size[0] + u[:, 2] * (self.size[1] - self.size[0])
        centers = b.numpy.stack([u[:, 0] * h, u[:, 1] * w], axis=1)
        sizes = b.numpy.stack([fraction * h, fraction * w], axis=1)
        mask = geometry.cutout_mask(centers, sizes, shape[1], shape[2], dtype, b)
        mask = b.numpy.logical_and(mask, (u[:, 3] < self.rate)[:, None, None, None])
        fill = self.fill_value
        if fill is None:
            fill = 0.5 * (self.value_range[0] + self.value_range[1])
        return b.numpy.where(mask, b.numpy.full_like(images, fill), images)

    def augmentation_config(self):
        config = super().augmentation_config()
        config.update(
            {"size": list(self.size), "rate": self.rate, "fill_value": self.fill_value}
        )
        return config
