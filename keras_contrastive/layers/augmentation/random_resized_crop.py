"""RandomResizedCrop: a random box per sample, resized to a fixed size."""

import keras

from keras_contrastive._validation import (
    check_bool,
    check_pair,
    check_positive_int,
    fail,
)
from keras_contrastive.layers.augmentation import geometry
from keras_contrastive.layers.augmentation.base import ImageAugmentationLayer


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomResizedCrop(ImageAugmentationLayer):
    """Crops a random box of each image and resizes it to `(height, width)`.

    Per sample (torchvision / SimCLR sampler): the box covers a fraction of the
    image area drawn uniformly from `scale`, with an aspect ratio (width / height)
    drawn log-uniformly from `ratio`; the first of 10 candidates that fits inside
    the image is used, else the largest centred box of an allowed aspect ratio.
    Box sizes and offsets are continuous; the crop and the bilinear resize are one
    per-sample resampling (two batched matmuls), so any input size works. In
    inference (`training=False`) the whole image is resized to `(height, width)`
    (a no-op when it already has that size), so both modes give the same shape.

    Args:
        height, width: output size.
        scale: `(low, high)` range of the box's area fraction, in (0, 1].
        ratio: `(low, high)` range of the box's aspect ratio (width / height).
        horizontal_flip: also mirror each sample left-right with probability 0.5,
            for free inside the same resampling (default False).
        value_range: `(low, high)` pixel range of inputs and outputs (the layer is
            linear and needs it only for a uniform interface).
        seed: optional int for reproducible crops.
        **kwargs: standard layer arguments.

    Input: `(batch, H, W, C)` or a single `(H, W, C)` image, any real dtype.
    Output: `(batch, height, width, C)` in the compute dtype.

    Example:

    >>> import numpy as np
    >>> images = np.random.randint(0, 256, (4, 32, 32, 3), dtype="uint8")
    >>> layer = RandomResizedCrop(24, 24, scale=(0.2, 1.0), seed=0)
    >>> tuple(layer(images).shape)
    (4, 24, 24, 3)
    """

    attempts = 10

    def __init__(
        self,
        height,
        width,
        scale=(0.08, 1.0),
        ratio=(3.0 / 4.0, 4.0 / 3.0),
        horizontal_flip=False,
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.height = check_positive_int("height", height)
        self.width = check_positive_int("width", width)
        self.scale = check_area_fractions("scale", scale)
        self.ratio = check_pair("ratio", ratio)
        if self.ratio[0] <= 0.0:
            fail(
                "ratio",
                "a pair with low > 0",
                ratio,
                detail="Aspect ratios (width / height) are positive",
            )
        self.horizontal_flip = check_bool("horizontal_flip", horizontal_flip)

    @property
    def size(self):
        return (self.height, self.width)

    num_uniforms = 2 * attempts + 3  # boxes, then the flip

    def transform(self, images, u):
        b = self.backend
        shape = tuple(b.core.shape(images))
        boxes = geometry.sample_crop_boxes(
            u[:, : 2 * self.attempts + 2],
            shape[1],
            shape[2],
            self.scale,
            self.ratio,
            attempts=self.attempts,
            backend=b,
        )
        flip = u[:, -1] < 0.5 if self.horizontal_flip else None
        return geometry.crop_and_resize(images, boxes, self.size, flip, backend=b)

    def passthrough(self, images):
        return resize(self.backend, images, self.size)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return input_shape[:-3] + (self.height, self.width, input_shape[-1])

    def augmentation_config(self):
        config = super().augmentation_config()
        config.update(
            {
                "height": self.height,
                "width": self.width,
                "scale": list(self.scale),
                "ratio": list(self.ratio),
                "horizontal_flip": self.horizontal_flip,
            }
        )
        return config


def check_area_fractions(name, value):
    """Returns a `(low, high)` range of crop areas, fractions in (0, 1]."""
    low, high = check_pair(name, value, maximum=1.0)
    if low <= 0.0:
        fail(name, "a pair with low > 0", value, detail="Area fractions are in (0, 1]")
    return (low, high)


def resize(backend, images, size):
    """Bilinear resize of the whole image (identity when the size already matches)."""
    shape = tuple(backend.core.shape(images))
    if tuple(shape[1:3]) == tuple(size) and all(isinstance(d, int) for d in shape[1:3]):
        return images
    boxes = whole_image_boxes(backend, images)
    return geometry.crop_and_resize(images, boxes, size, backend=backend)


def whole_image_boxes(backend, images):
    shape = tuple(backend.core.shape(images))
    dtype = geometry.dtype_of(images)
    ones = backend.numpy.ones((shape[0],), dtype=dtype)
    zeros = ones * 0.0
    h = ones * backend.core.cast(shape[1], dtype)
    w = ones * backend.core.cast(shape[2], dtype)
    return backend.numpy.stack([zeros, zeros, h, w], axis=1)
