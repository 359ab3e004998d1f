"""RandomColorDistortion: SimCLR's colour jitter in random order, then grayscale."""

import keras

from keras_contrastive._validation import check_number, check_probability
from keras_contrastive.layers.augmentation import color
from keras_contrastive.layers.augmentation.base import ImageAugmentationLayer

#: Hue shifts are up to 0.2 * strength turns: beyond 2.5, more than half a turn.
MAX_STRENGTH = 2.5


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomColorDistortion(ImageAugmentationLayer):
    """SimCLR's colour distortion, with per-sample parameters and order.

    With probability `jitter_rate` a sample gets brightness, contrast and
    saturation factors drawn from `[max(0, 1 - 0.8 s), 1 + 0.8 s]` and a hue shift
    from `[-0.2 s, 0.2 s]` turns (`s = strength`), applied in a random order with
    clipping to the value range after each; then, with probability
    `grayscale_rate`, it is turned to grayscale (Chen et al. 2020, appendix A). The
    formulas are torchvision's functional ops, in
    `keras_contrastive.layers.augmentation.color` (hue: the HSV hue shift).

    Args:
        strength: colour distortion strength `s >= 0` (SimCLR: 1.0 on ImageNet,
            0.5 on CIFAR-10). At most 2.5 (hue shifts beyond half a turn).
        jitter_rate: probability of the colour jitter per sample.
        grayscale_rate: probability of grayscale per sample.
        value_range: `(low, high)` pixel range of inputs and outputs.
        seed: optional int for reproducible draws.
        **kwargs: standard layer arguments.

    Input: `(batch, H, W, 3)` or `(H, W, 3)` RGB, any real dtype.
    Output: same shape, compute dtype, within `value_range` in training;
    unchanged (cast) in inference.

    Example:

    >>> import numpy as np
    >>> images = np.random.randint(0, 256, (4, 8, 8, 3), dtype="uint8")
    >>> out = RandomColorDistortion(strength=0.5, seed=0)(images)
    >>> tuple(out.shape)
    (4, 8, 8, 3)
    """

    requires_rgb = True

    def __init__(
        self,
        strength=0.5,
        jitter_rate=0.8,
        grayscale_rate=0.2,
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.strength = check_strength("strength", strength)
        self.jitter_rate = check_probability("jitter_rate", jitter_rate)
        self.grayscale_rate = check_probability("grayscale_rate", grayscale_rate)

    num_uniforms = color.COLOR_UNIFORMS

    def transform(self, images, u):
        b = self.backend
        params = color.sample_color_params(
            u, self.strength, self.jitter_rate, self.grayscale_rate, backend=b
        )
        # Clipped first: the colour maths of values far outside the range (1e37
        # under (0, 1)) would overflow to inf - inf = NaN.
        x = b.numpy.clip(self.to_unit(images), 0.0, 1.0)
        x = color.color_distort(x, backend=b, **params)
        return self.from_unit(x)

    def augmentation_config(self):
        config = super().augmentation_config()
        config.update(
            {
                "strength": self.strength,
                "jitter_rate": self.jitter_rate,
                "grayscale_rate": self.grayscale_rate,
            }
        )
        return config


def check_strength(name, value):
    """Returns a colour distortion strength in [0, MAX_STRENGTH] as a float."""
    return check_number(name, value, 0.0, MAX_STRENGTH)
