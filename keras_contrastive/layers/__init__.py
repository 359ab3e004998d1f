"""keras_contrastive.layers: projection / prediction heads, image augmentation and
multi-view batching."""

from keras_contrastive.layers.augmentation import (
    ImageAugmentationLayer,
    RandomApply,
    RandomColorDistortion,
    RandomCutout,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomResizedCrop,
    SimCLRAugmenter,
)
from keras_contrastive.layers.heads import MLPHead, PredictionHead, ProjectionHead
from keras_contrastive.layers.multi_view import MultiCrop, MultiView

__all__ = [
    "ImageAugmentationLayer",
    "MLPHead",
    "MultiCrop",
    "MultiView",
    "PredictionHead",
    "ProjectionHead",
    "RandomApply",
    "RandomColorDistortion",
    "RandomCutout",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomResizedCrop",
    "SimCLRAugmenter",
]
