"""SimCLRAugmenter: the SimCLR image augmentation recipe as one layer."""

import keras

from keras_contrastive._validation import check_bool, check_probability, check_size
from keras_contrastive.layers.augmentation import color, geometry
from keras_contrastive.layers.augmentation.base import ImageAugmentationLayer
from keras_contrastive.layers.augmentation.color_distortion import check_strength
from keras_contrastive.layers.augmentation.random_resized_crop import (
    RandomResizedCrop,
    check_area_fractions,
    resize,
)

#: SimCLR's blur sigma range, in pixels at its 224x224 resolution.
SIMCLR_BLUR_SIGMA = (0.1, 2.0)
SIMCLR_RESOLUTION = 224


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SimCLRAugmenter(ImageAugmentationLayer):
    """SimCLR's augmentation (Chen et al. 2020, appendix A), every draw per sample.

    In order: random resized crop to `image_size` (area fraction in `crop_scale`,
    aspect ratio in [3/4, 4/3]) with a random horizontal flip; colour distortion of
    strength `color_strength` (brightness, contrast, saturation and hue in random
    order with probability `jitter_rate`, then grayscale with probability
    `grayscale_rate`); optionally Gaussian blur with probability `blur_rate`, with a
    kernel of about 10% of the image side and a sigma drawn from
    `[0.1, 2.0] * side / 224` (SimCLR's range at 224 px, scaled so the blur is the
    same fraction of the image at any size).

    All draws of a call come from one random op and the whole recipe is a handful
    of batched matmuls (crop + flip, four colour stages, blur), so it is cheap
    inside a jit-compiled train step. The flip and the grayscale are folded into
    the crop and colour matrices instead of calling `keras.layers.RandomFlip` and
    `keras.layers.RandomGrayscale`, which would each add a pass over the images.
    In inference the images are only resized to `image_size`.

    Args:
        image_size: output size, an int or `(height, width)`.
        crop_scale: `(low, high)` range of the crop's area fraction.
        color_strength: colour distortion strength (SimCLR: 1.0 on ImageNet, 0.5
            on CIFAR-10).
        blur: whether to apply the Gaussian blur (SimCLR uses it on ImageNet and
            not on CIFAR-10).
        flip: whether to flip horizontally with probability 0.5.
        jitter_rate, grayscale_rate, blur_rate: per-sample probabilities.
        value_range: `(low, high)` pixel range of inputs and outputs.
        seed: optional int for reproducible views.
        **kwargs: standard layer arguments.

    Input: `(batch, H, W, 3)` or `(H, W, 3)` RGB in `value_range`, any real dtype.
    Output: `(batch, height, width, 3)` in the compute dtype, within
    `value_range`.

    Example:

    >>> import numpy as np
    >>> images = np.random.randint(0, 256, (8, 32, 32, 3), dtype="uint8")
    >>> augmenter = SimCLRAugmenter(32, blur=False, seed=0)
    >>> view_1, view_2 = augmenter(images), augmenter(images)
    >>> tuple(view_1.shape)
    (8, 32, 32, 3)

    The papers' two recipes by name:

    >>> SimCLRAugmenter.cifar10().blur, SimCLRAugmenter.imagenet(96).color_strength
    (False, 1.0)
    """

    requires_rgb = True

    def __init__(
        self,
        image_size,
        crop_scale=(0.08, 1.0),
        color_strength=0.5,
        blur=True,
        flip=True,
        jitter_rate=0.8,
        grayscale_rate=0.2,
        blur_rate=0.5,
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.image_size = check_size("image_size", image_size)
        self.crop_scale = check_area_fractions("crop_scale", crop_scale)
        self.color_strength = check_strength("color_strength", color_strength)
        self.blur = check_bool("blur", blur)
        self.flip = check_bool("flip", flip)
        self.jitter_rate = check_probability("jitter_rate", jitter_rate)
        self.grayscale_rate = check_probability("grayscale_rate", grayscale_rate)
        self.blur_rate = check_probability("blur_rate", blur_rate)

    # Columns: crop boxes | flip | colour | blur sigma, blur apply.
    num_uniforms = RandomResizedCrop.num_uniforms + color.COLOR_UNIFORMS + 2

    def transform(self, images, u):
        b = self.backend
        shape = tuple(b.core.shape(images))
        n = RandomResizedCrop.attempts
        crop_columns = 2 * n + 2
        boxes = geometry.sample_crop_boxes(
            u[:, :crop_columns],
            shape[1],
            shape[2],
            self.crop_scale,
            (3.0 / 4.0, 4.0 / 3.0),
            attempts=n,
            backend=b,
        )
        flip = u[:, crop_columns] < 0.5 if self.flip else None
        # One layout change in and one out: every step below works on planes.
        x = geometry.to_planes(images, b)
        x = geometry.crop_and_resize_planes(x, boxes, self.image_size, flip, b)

        # Clipped first, as in RandomColorDistortion (no overflow to NaN).
        x = b.numpy.clip(self.to_unit(x), 0.0, 1.0)
        start = crop_columns + 1
        params = color.sample_color_params(
            u[:, start : start + color.COLOR_UNIFORMS],
            self.color_strength,
            self.jitter_rate,
            self.grayscale_rate,
            backend=b,
        )
        x = color.color_distort_planes(x, backend=b, **params)

        if self.blur:
            x = self._blur(x, u[:, -2], u[:, -1])
        return geometry.from_planes(self.from_unit(x), b)

    def _blur(self, planes, u_sigma, u_apply):
        b = self.backend
        lo, hi = SIMCLR_BLUR_SIGMA
        unit_sigma = lo + u_sigma * (hi - lo)
        unit_sigma = b.numpy.where(
            u_apply < self.blur_rate, unit_sigma, b.numpy.zeros_like(unit_sigma)
        )
        height, width = self.image_size
        sigma = (
            unit_sigma * (height / SIMCLR_RESOLUTION),
            unit_sigma * (width / SIMCLR_RESOLUTION),
        )
        radius = (
            geometry.default_blur_radius(height),
            geometry.default_blur_radius(width),
        )
        return geometry.gaussian_blur_planes(planes, sigma, radius, backend=b)

    @classmethod
    def cifar10(cls, image_size=32, **kwargs):
        """SimCLR's CIFAR-10 recipe (Chen et al. 2020, appendix B.9): colour
        strength 0.5, no blur. Other arguments (`seed`, ...) pass through."""
        return cls(image_size, **{"color_strength": 0.5, "blur": False, **kwargs})

    @classmethod
    def imagenet(cls, image_size=224, **kwargs):
        """SimCLR's ImageNet recipe (Chen et al. 2020, appendix A): colour
        strength 1.0, blur with probability 0.5. Other arguments pass through."""
        return cls(image_size, **{"color_strength": 1.0, "blur": True, **kwargs})

    def passthrough(self, images):
        return resize(self.backend, images, self.image_size)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return input_shape[:-3] + tuple(self.image_size) + (input_shape[-1],)

    def augmentation_config(self):
        config = super().augmentation_config()
        config.update(
            {
                "image_size": list(self.image_size),
                "crop_scale": list(self.crop_scale),
                "color_strength": self.color_strength,
                "blur": self.blur,
                "flip": self.flip,
                "jitter_rate": self.jitter_rate,
                "grayscale_rate": self.grayscale_rate,
                "blur_rate": self.blur_rate,
            }
        )
        return config
