"""Image augmentation layers with per-sample randomness (see docs/augmentation.md).

The pure maths with given parameters lives in `geometry` and `color`; the layers
draw the parameters and call it. `check_images_against_value_range` checks NumPy
images against a `value_range` (16-bit images under (0, 255), uint8 under (0, 1),
[0, 1] floats under (0, 255)); the layers run it when called on a NumPy batch.
"""

from keras_contrastive.layers.augmentation.base import ImageAugmentationLayer
from keras_contrastive.layers.augmentation.blur import RandomGaussianBlur
from keras_contrastive.layers.augmentation.color_distortion import (
    RandomColorDistortion,
)
from keras_contrastive.layers.augmentation.cutout import RandomCutout
from keras_contrastive.layers.augmentation.noise import RandomGaussianNoise
from keras_contrastive.layers.augmentation.random_apply import RandomApply
from keras_contrastive.layers.augmentation.random_resized_crop import (
    RandomResizedCrop,
)
from keras_contrastive.layers.augmentation.simclr import SimCLRAugmenter
from keras_contrastive.layers.augmentation.value_range import (
    check_images_against_value_range,
)

__all__ = [
    "ImageAugmentationLayer",
    "RandomApply",
    "RandomColorDistortion",
    "RandomCutout",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomResizedCrop",
    "SimCLRAugmenter",
    "check_images_against_value_range",
]
