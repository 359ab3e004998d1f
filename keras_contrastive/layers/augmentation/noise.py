"""RandomGaussianNoise: additive Gaussian noise with a per-sample level."""

import keras

from keras_contrastive._validation import check_pair, check_probability
from keras_contrastive.layers.augmentation.base import ImageAugmentationLayer


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomGaussianNoise(ImageAugmentationLayer):
    """Adds pixel-wise Gaussian noise to a random subset of samples.

    Each selected sample draws a noise level uniformly from `stddev`, expressed as
    a fraction of the value range's width (so 0.05 means 12.75 for (0, 255) and
    0.05 for (0, 1)); the result is clipped to `value_range`. Unlike
    `keras.layers.GaussianNoise` the level varies per sample, `rate` picks which
    samples are noised, and the layer also runs inside `tf.data`.

    Args:
        stddev: noise standard deviation as a fraction of the value range, a
            number or a `(low, high)` range. Default 0.05.
        rate: probability that a sample receives noise. Default 1.0.
        value_range: `(low, high)` pixel range.
        seed: optional int for reproducible draws.
        **kwargs: standard layer arguments.

    Example:

    >>> import numpy as np
    >>> images = np.full((2, 8, 8, 3), 128, dtype="uint8")
    >>> out = RandomGaussianNoise(stddev=(0.01, 0.1), seed=0)(images)
    >>> tuple(out.shape)
    (2, 8, 8, 3)
    """

    def __init__(
        self, stddev=0.05, rate=1.0, value_range=(0, 255), seed=None, **kwargs
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.stddev = check_pair("stddev", stddev, minimum=0.0, allow_scalar=True)
        self.rate = check_probability("rate", rate)

    num_random_ops = 2

    def draw(self, images, seeds):
        b = self.backend
        u = self.uniform(self.batch_size(images), 2, seeds[0])
        noise = b.random.normal(
            tuple(b.core.shape(images)), dtype=self.work_dtype, seed=seeds[1]
        )
        return u, noise

    def transform(self, images, params):
        b = self.backend
        u, noise = params
        low, high = self.value_range
        level = self.stddev[0] + u[:, 0] * (self.stddev[1] - self.stddev[0])
        level = b.numpy.where(u[:, 1] < self.rate, level, b.numpy.zeros_like(level))
        noisy = images + noise * ((high - low) * level)[:, None, None, None]
        return b.numpy.clip(noisy, low, high)

    def augmentation_config(self):
        config = super().augmentation_config()
        config.update({"stddev": list(self.stddev), "rate": self.rate})
        return config
