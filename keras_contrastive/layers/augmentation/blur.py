"""RandomGaussianBlur: Gaussian blur with a sigma drawn per sample."""

import keras

from keras_contrastive._validation import check_pair, check_probability, fail, is_int
from keras_contrastive.layers.augmentation import geometry
from keras_contrastive.layers.augmentation.base import ImageAugmentationLayer


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomGaussianBlur(ImageAugmentationLayer):
    """Blurs a random subset of samples, each with its own sigma.

    Unlike `keras.layers.RandomGaussianBlur` (one sigma per batch), every selected
    sample draws its sigma uniformly from `sigma`. The blur is separable with
    reflected borders, written as two per-sample matrix products.

    Args:
        sigma: standard deviation in pixels, a number or a `(low, high)` range
            (SimCLR: (0.1, 2.0) at 224x224).
        kernel_size: odd int or `(height, width)` odd ints; `None` (default) uses
            about 10% of each image side, as SimCLR (at least 3 taps).
        rate: probability that a sample is blurred.
        value_range: `(low, high)` pixel range (blur is a convex combination of
            pixels, so outputs stay inside it).
        seed: optional int for reproducible draws.
        **kwargs: standard layer arguments.

    Example:

    >>> import numpy as np
    >>> images = np.random.uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    >>> tuple(RandomGaussianBlur(sigma=(0.1, 2.0), rate=0.5, seed=0)(images).shape)
    (4, 16, 16, 3)
    """

    def __init__(
        self,
        sigma=(0.1, 2.0),
        kernel_size=None,
        rate=0.5,
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.sigma = check_pair("sigma", sigma, minimum=0.0, allow_scalar=True)
        self.kernel_size = check_kernel_size("kernel_size", kernel_size)
        self.rate = check_probability("rate", rate)

    def radii(self, images):
        shape = tuple(self.backend.core.shape(images))
        if self.kernel_size is not None:
            return tuple(k // 2 for k in self.kernel_size)
        if not all(isinstance(d, int) for d in shape[1:3]):
            fail(
                "images.shape",
                "(batch, height, width, channels) with a known height and width "
                "when `kernel_size` is None",
                shape,
                detail="RandomGaussianBlur sizes its kernel from the image; pass "
                "`kernel_size` for images of unknown size",
            )
        return (
            geometry.default_blur_radius(shape[1]),
            geometry.default_blur_radius(shape[2]),
        )

    num_uniforms = 2

    def transform(self, images, u):
        b = self.backend
        sigma = self.sigma[0] + u[:, 0] * (self.sigma[1] - self.sigma[0])
        sigma = b.numpy.where(u[:, 1] < self.rate, sigma, b.numpy.zeros_like(sigma))
        return geometry.gaussian_blur(images, sigma, self.radii(images), backend=b)

    def augmentation_config(self):
        config = super().augmentation_config()
        config.update(
            {
                "sigma": list(self.sigma),
                "kernel_size": (
                    None if self.kernel_size is None else list(self.kernel_size)
                ),
                "rate": self.rate,
            }
        )
        return config


def check_kernel_size(name, value):
    """Returns None or `(height, width)` odd ints >= 1 (from an int or a pair).

    Odd, so that the kernel has a centre tap.
    """
    if value is None:
        return None
    expectation = "None, a positive odd int or a pair of them"
    sizes = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if not all(is_int(k) for k in sizes):
        fail(name, expectation, value, TypeError)
    if len(sizes) != 2 or not all(k >= 1 and k % 2 == 1 for k in sizes):
        fail(name, expectation, value)
    return (int(sizes[0]), int(sizes[1]))
